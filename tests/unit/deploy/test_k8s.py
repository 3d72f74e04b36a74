"""deploy/k8s: valid against the Kubernetes API schemas (kubeconform), and shaped as operations needs."""

from __future__ import annotations

import shutil

import pytest
import yaml
from compressor.config import Settings as CompressorSettings
from pipeline_schemas import TOPICS

from tests.unit.deploy import k8s_tools, member_sizing

SERVICES = {"ingest", "compressor", "tracker-worker", "tracker-api", "notifier"}
SECRET_WORDS = ("PASSWORD", "SECRET", "API_KEY", "SECRETS_KEY", "ACCESS_KEY")

pytestmark = pytest.mark.skipif(
    shutil.which("go") is None, reason="kubeconform is installed with `go install` (Go toolchain missing)"
)


@pytest.fixture(scope="module")
def rendered() -> str:
    return k8s_tools.render()


@pytest.fixture(scope="module")
def objects(rendered) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_every_manifest_is_valid_against_the_kubernetes_api_schemas(rendered, objects):
    report = k8s_tools.validate(rendered)
    checked = [o for o in objects if o["kind"] != "ScaledObject"]  # a KEDA CRD: no schema here
    assert report["summary"]["invalid"] == 0, report["resources"]
    assert report["summary"]["errors"] == 0, report["resources"]
    assert report["summary"]["valid"] == len(checked) >= 17


def test_the_validator_rejects_a_wrong_type_and_an_unknown_field(objects):
    deployment = dict(of_kind(objects, "Deployment")["ingest"])
    deployment["spec"] = {**deployment["spec"], "replicas": "two", "replica": 2}
    report = k8s_tools.validate(yaml.safe_dump(deployment))
    assert report["summary"]["invalid"] == 1, report
    message = report["resources"][0]["msg"]
    assert "replicas" in message


def test_each_service_has_probes_resources_and_a_disruption_budget(objects):
    deployments = of_kind(objects, "Deployment")
    budgets = of_kind(objects, "PodDisruptionBudget")
    assert set(deployments) == SERVICES
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"], name
        assert container["livenessProbe"]["httpGet"]["path"], name
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), (name, bound)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = budgets[name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), name
        spec = budgets[name]["spec"]
        assert spec.get("maxUnavailable") == 1 or spec.get("minAvailable") == 1, name
        assert deployment["spec"]["replicas"] >= 2, name  # a budget of one pod blocks every drain


def test_settings_come_from_the_configmap_and_secrets_from_the_secret(objects):
    settings = of_kind(objects, "ConfigMap")["imgpipe-settings"]["data"]
    secret = of_kind(objects, "Secret")["imgpipe-secrets"]["stringData"]
    assert not [k for k in settings if any(word in k for word in SECRET_WORDS)]
    assert {"DATABASE_URL", "AWS_SECRET_ACCESS_KEY", "NOTIFIER_SIGNING_SECRET"} <= set(secret)
    assert settings["KAFKA_REPLICATION_FACTOR"] == "3"
    assert settings["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    for name, deployment in of_kind(objects, "Deployment").items():
        sources = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert {"configMapRef": {"name": "imgpipe-settings"}} in sources, name
        assert {"secretRef": {"name": "imgpipe-secrets"}} in sources, name


def test_the_compressor_scales_on_its_consumer_lag_up_to_one_member_per_partition(objects):
    scaled = of_kind(objects, "ScaledObject")["compressor"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "compressor"
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka"
    partitions = TOPICS["image.requested"].partitions
    assert trigger["metadata"]["topic"] == "image.requested"
    assert trigger["metadata"]["consumerGroup"] == CompressorSettings.model_fields["group_id"].default
    assert 2 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= partitions
    assert int(trigger["metadata"]["lagThreshold"]) > 0


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="KEDA's schema comes as an npm package's validators (node and npm missing)",
)
def test_the_scaled_object_is_valid_against_kedas_schema_and_a_wrong_one_is_not(objects):
    scaled = of_kind(objects, "ScaledObject")["compressor"]
    assert k8s_tools.validate_scaled_object(scaled) == "valid"
    broken = {**scaled, "spec": {**scaled["spec"], "minReplicaCount": "two"}}
    assert "minReplicaCount must be integer" in k8s_tools.validate_scaled_object(broken)


def compressor_container(objects: list[dict]) -> dict:
    (container,) = of_kind(objects, "Deployment")["compressor"]["spec"]["template"]["spec"]["containers"]
    return container


def test_compressor_threads_come_from_its_cpu_limit_through_the_downward_api(objects, monkeypatch):
    container = compressor_container(objects)
    (pool,) = [e for e in container["env"] if e["name"] == "COMPRESSOR_POOL_SIZE"]
    field = pool["valueFrom"]["resourceFieldRef"]
    assert field["resource"] == "limits.cpu"
    assert field.get("containerName", container["name"]) == container["name"]
    assert str(field.get("divisor", "1")) == "1"  # whole CPUs, rounded up: at least one thread
    # the integer the kubelet writes for a limit of "2" is a pool size the member accepts
    limit = container["resources"]["limits"]["cpu"]
    monkeypatch.setenv("COMPRESSOR_POOL_SIZE", str(limit))
    assert CompressorSettings(_env_file=None).pool_size == int(limit) >= 1


def test_compressor_memory_request_holds_pillows_blocks_and_the_images_in_flight(objects, monkeypatch):
    container = compressor_container(objects)
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert member_sizing.member_env_as_devstack(env)
    requested = member_sizing.k8s_bytes(container["resources"]["requests"]["memory"])
    assert requested >= member_sizing.least_memory(env)
    assert member_sizing.k8s_bytes(container["resources"]["limits"]["memory"]) > requested
    monkeypatch.setenv("COMPRESSOR_MAX_INFLIGHT_BYTES", env["COMPRESSOR_MAX_INFLIGHT_BYTES"])
    assert CompressorSettings(_env_file=None).max_inflight_bytes == int(env["COMPRESSOR_MAX_INFLIGHT_BYTES"])
