"""docker-compose.yml describes the same system that `make up` starts."""

import re
from pathlib import Path

import yaml
from compressor.config import Settings as CompressorSettings
from devstack import __main__ as devstack_cli
from devstack import services

from tests.unit.deploy import member_sizing

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


def interpolated(value: str, env: dict[str, str]) -> str:
    """Compose's `${NAME:-default}`: the variable when set and not empty, else the default."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], str(value))


def test_compressor_runs_several_replicas_in_one_group():
    assert int(interpolated(SERVICES["compressor"]["deploy"]["replicas"], {})) >= 2
    assert "COMPRESSOR_GROUP_ID" not in SERVICES["compressor"]["environment"]


def test_compose_up_starts_one_member_per_core_as_make_up_does(monkeypatch, capsys):
    replicas = SERVICES["compressor"]["deploy"]["replicas"]
    assert interpolated(replicas, {"IMGPIPE_COMPRESSOR_MEMBERS": "3"}) == "3"
    recipe = (ROOT / "Makefile").read_text().split("\ncompose-up:", 1)[1].split("\n\n", 1)[0]
    assert "IMGPIPE_COMPRESSOR_MEMBERS=$$($(PY) -m devstack members) docker compose up" in recipe
    monkeypatch.setattr("sys.argv", ["devstack", "members"])
    devstack_cli.main()
    assert capsys.readouterr().out.strip() == str(services.COMPRESSOR_MEMBERS)


def test_compressor_members_keep_pillows_blocks_and_take_their_threads_from_their_cpus():
    env = SERVICES["compressor"]["environment"]
    assert member_sizing.member_env_as_devstack(env)
    assert "COMPRESSOR_POOL_SIZE" not in env  # the default reads the container's CPU quota
    assert "COMPRESSOR_POOL_SIZE" not in COMPOSE["x-env"]


def test_compressor_memory_holds_pillows_blocks_and_the_images_in_flight(monkeypatch):
    env = SERVICES["compressor"]["environment"]
    resources = SERVICES["compressor"]["deploy"]["resources"]
    reserved = member_sizing.compose_bytes(resources["reservations"]["memory"])
    assert reserved >= member_sizing.least_memory(env)
    assert member_sizing.compose_bytes(resources["limits"]["memory"]) > reserved
    monkeypatch.setenv("COMPRESSOR_MAX_INFLIGHT_BYTES", env["COMPRESSOR_MAX_INFLIGHT_BYTES"])
    assert CompressorSettings(_env_file=None).max_inflight_bytes == int(env["COMPRESSOR_MAX_INFLIGHT_BYTES"])


def test_every_built_service_names_a_package_of_this_workspace():
    for name, spec in SERVICES.items():
        if "build" in spec:
            package = spec["build"]["args"]["SERVICE"]
            candidates = [ROOT / "services" / package, ROOT / "tools" / package]
            assert any((c / "pyproject.toml").exists() for c in candidates), name


def test_pipeline_services_wait_for_migrations_and_topics():
    for name in ("ingest", "compressor", "tracker-worker", "tracker-api", "notifier"):
        assert SERVICES[name]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
