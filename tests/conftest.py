"""Session fixtures: the real Kafka broker and PostgreSQL server for integration and e2e tests.

If KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL are set, those servers are used and nothing is
started. Otherwise the `test` profile of devstack starts its own broker and server (on ports
apart from `make up`'s) the first time a test needs them, and stops what it started at the end.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def test_profile():
    from devstack.profiles import PROFILES

    return PROFILES["test"]


@pytest.fixture(scope="session")
def infrastructure(test_profile):
    """Kafka and PostgreSQL, migrated, with every topic created."""
    from devstack import kafka, postgres
    from devstack.__main__ import infra_up

    started_kafka = test_profile.external_kafka is None
    started_postgres = test_profile.external_database is None
    infra_up(test_profile)
    yield test_profile
    if os.environ.get("KEEP_TEST_STACK"):
        return
    if started_kafka:
        kafka.stop(test_profile)
    if started_postgres:
        postgres.stop(test_profile)


@pytest.fixture(scope="session")
def database_url(infrastructure) -> str:
    return infrastructure.database_url


@pytest.fixture(scope="session")
def bootstrap_servers(infrastructure) -> str:
    return infrastructure.bootstrap_servers
