"""The validator of deploy/k8s: kubeconform (Go module proxy) with the Kubernetes JSON schemas that
the PyPI package kubernetes-validate carries (kubeconform's own schemas come from GitHub, which is
not reachable here). Both are fetched once into the imgpipe cache, through the ordinary clients."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from devstack.profiles import CACHE_DIR, REPO_ROOT

KUBECONFORM = "github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0"
SCHEMA_PACKAGE = "kubernetes-validate==1.37.0"
KUBERNETES_VERSION = "1.33.0"
INSTALL_TIMEOUT = 600
K8S_DIR = REPO_ROOT / "deploy" / "k8s"


def kubeconform() -> Path:
    binary = CACHE_DIR / "bin" / "kubeconform"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603 - go from PATH, a pinned module
            ["go", "install", KUBECONFORM],  # noqa: S607
            env={**os.environ, "GOBIN": str(binary.parent)},
            check=True,
            timeout=INSTALL_TIMEOUT,
        )
    return binary


def schema_dir() -> Path:
    """The package's schemas for KUBERNETES_VERSION, laid out as kubeconform expects.

    The package's files say `$id: https://kubernetes.io/api/...` and refer to
    `/api/_definitions.json`; both are rewritten to the local definitions file, so nothing is
    looked up on the network. The schemas themselves are unchanged.
    """
    target = CACHE_DIR / "k8s-schemas" / f"v{KUBERNETES_VERSION}"
    if (target / ".complete").exists():
        return target
    package = CACHE_DIR / "k8s-schemas" / "package"
    if not package.exists():
        subprocess.run(  # noqa: S603 - pip of this interpreter, a pinned package
            [
                shutil.which("python3") or sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(package),
                SCHEMA_PACKAGE,
            ],
            check=True,
            timeout=INSTALL_TIMEOUT,
        )
    source = (
        package / "kubernetes_validate" / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}-local-strict"
    )
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for file in source.glob("*.json"):
        schema = json.loads(file.read_text().replace('"/api/_definitions.json#', '"_definitions.json#'))
        schema.pop("$id", None)
        (target / file.name).write_text(json.dumps(schema))
    (target / ".complete").touch()
    return target


def render() -> str:
    """`kubectl kustomize deploy/k8s` where kubectl is installed, else the resources as listed."""
    if shutil.which("kubectl"):
        return subprocess.run(  # noqa: S603
            ["kubectl", "kustomize", str(K8S_DIR)],  # noqa: S607
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    import yaml

    listed = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())["resources"]
    return "\n---\n".join((K8S_DIR / name).read_text() for name in listed)


def validate(manifests: str, *, skip: str = "ScaledObject") -> dict:
    """kubeconform's JSON report of `manifests` (strict: unknown fields are errors)."""
    template = f"{schema_dir().parent}/{{{{ .NormalizedKubernetesVersion }}}}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json"
    result = subprocess.run(  # noqa: S603
        [
            str(kubeconform()),
            "-strict",
            "-summary",
            "-output",
            "json",
            "-kubernetes-version",
            KUBERNETES_VERSION,
            "-schema-location",
            template,
            "-skip",
            skip,
            "-",
        ],
        input=manifests,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(result.stdout)


KEDA_MODELS = "@kubernetes-models/keda@2.0.0"
KEDA_CHECK = """
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { readFileSync } from "node:fs";
try { new ScaledObject(JSON.parse(readFileSync(0, "utf8"))).validate(); console.log("valid"); }
catch (error) { console.log("invalid: " + error.message); }
"""


def validate_scaled_object(scaled_object: dict) -> str:
    """`valid`, or `invalid: why`, by the validators that @kubernetes-models/keda (npm) generates
    from KEDA's CRD schema: kubeconform has no KEDA schema here."""
    home = CACHE_DIR / "k8s-keda"
    if not (home / "node_modules" / "@kubernetes-models" / "keda").exists():
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run(  # noqa: S603 - npm from PATH, a pinned package
            ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(home), KEDA_MODELS],  # noqa: S607
            check=True,
            timeout=INSTALL_TIMEOUT,
        )
    return subprocess.run(  # noqa: S603
        ["node", "--input-type=module", "-e", KEDA_CHECK],  # noqa: S607
        input=json.dumps(scaled_object),
        cwd=home,  # bare imports resolve from here
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
