"""Session fixtures: the real Kafka broker and PostgreSQL server for integration and e2e tests.

If KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL are set, those servers are used and nothing is
started. Otherwise the `test` profile of devstack starts its own broker and server (on ports
apart from `make up`'s) the first time a test needs them, and stops what it started at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil

import pytest

from tests.support.stack import SERVICE_ENV

# Fixtures shared by the e2e and chaos suites (webhook subscriber); a plugin so both suites see them.
pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture(scope="session")
def test_profile():
    from devstack.profiles import PROFILES

    return PROFILES["test"]


def exit_if_ports_taken(start):
    """Run `start`; a taken port ends the session with its one line (naming the process that
    holds it) instead of every test that needs the stack erroring with it."""
    from devstack.ports import PortsTaken

    try:
        return start()
    except PortsTaken as exc:
        pytest.exit(f"the test stack cannot start: {exc}", returncode=pytest.ExitCode.TESTS_FAILED)


@pytest.fixture(scope="session")
def infrastructure(test_profile):
    """Kafka and PostgreSQL, migrated, with every topic created."""
    from devstack.__main__ import down, infra_up

    exit_if_ports_taken(lambda: infra_up(test_profile))
    yield test_profile
    if not os.environ.get("KEEP_TEST_STACK"):
        down(test_profile)  # everything the session started, by pid: services, servers, extras


@pytest.fixture(scope="session")
def database_url(infrastructure) -> str:
    return infrastructure.database_url


@pytest.fixture(scope="session")
def bootstrap_servers(infrastructure) -> str:
    return infrastructure.bootstrap_servers


@pytest.fixture(scope="session")
def pipeline(infrastructure):
    """Every service of the test profile, started once for the session and stopped after.

    The images the session stored are removed once the services have stopped (no write can come
    after), unless KEEP_TEST_STACK keeps the stack for a look.
    """
    from devstack import services
    from devstack.outputs import outputs_removed

    profile = infrastructure
    shutil.rmtree(profile.run_dir / "tracker-data", ignore_errors=True)
    services.stop_all(profile)  # leftovers of an interrupted run
    keep = bool(os.environ.get("KEEP_TEST_STACK"))
    with contextlib.nullcontext() if keep else outputs_removed(profile.media_dir):
        exit_if_ports_taken(lambda: services.start_all(profile, dict(SERVICE_ENV)))
        try:
            yield profile
        finally:
            if not keep:
                services.stop_all(profile)


@pytest.fixture
def ingest_url(pipeline) -> str:
    return f"http://127.0.0.1:{pipeline.ingest_port}"


@pytest.fixture
def tracker_url(pipeline) -> str:
    return f"http://127.0.0.1:{pipeline.tracker_port}"


@pytest.fixture
def webhook_secret(pipeline) -> str:
    return pipeline.webhook_secret()


@pytest.fixture
def notifier_url(pipeline) -> str:
    return f"http://127.0.0.1:{pipeline.notifier_port}"


@pytest.fixture(scope="module")
def fresh_database_url(infrastructure) -> str:
    """A migrated database of its own, which no running service reads or relays from."""
    import asyncio
    import uuid

    from devstack import postgres
    from devstack.migrate import apply_migrations

    base = infrastructure.database_url.rpartition("/")[0]
    url = f"{base}/imgpipe_it_{uuid.uuid4().hex[:12]}"
    asyncio.run(postgres.create_database(url))
    asyncio.run(apply_migrations(url))
    yield url
    asyncio.run(postgres.drop_database(url))


@pytest.fixture
def api_key(pipeline) -> str:
    """The test stack's bootstrap key: every scope, default tenant."""
    return pipeline.api_key()


@pytest.fixture
def auth_headers(api_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}
