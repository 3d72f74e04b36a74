"""docker-compose.yml describes the same system that `make up` starts."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_runs_every_pipeline_service_and_both_servers():
    assert {"kafka", "postgres", "ingest", "compressor", "tracker-worker", "tracker-api", "notifier"} <= set(
        SERVICES
    )


def test_kafka_in_compose_runs_in_kraft_mode_without_auto_created_topics():
    env = SERVICES["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_compressor_runs_several_replicas_in_one_group():
    assert SERVICES["compressor"]["deploy"]["replicas"] >= 2
    assert "COMPRESSOR_GROUP_ID" not in SERVICES["compressor"]["environment"]


def test_every_built_service_names_a_package_of_this_workspace():
    for name, spec in SERVICES.items():
        if "build" in spec:
            package = spec["build"]["args"]["SERVICE"]
            candidates = [ROOT / "services" / package, ROOT / "tools" / package]
            assert any((c / "pyproject.toml").exists() for c in candidates), name


def test_pipeline_services_wait_for_migrations_and_topics():
    for name in ("ingest", "compressor", "tracker-worker", "tracker-api", "notifier"):
        assert SERVICES[name]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
