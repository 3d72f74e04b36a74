"""Dependency audit against PyPI's advisory data (`make audit`).

pip-audit asks PyPI for `/pypi/<name>/<version>/json`, which the registry mirror these machines
reach does not serve; `/pypi/<name>/json` is served, and its `vulnerabilities` list holds the
advisories (from the PyPA/OSV database) that affect the project's LATEST release. So every locked
package that is at its latest release is audited for real; any other is reported as not
auditable here (with its latest version), never passed silently. Exits 1 on a known vulnerability.
Known, accepted exceptions go in ACCEPTED with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

INDEX = "https://pypi.org/pypi/{name}/json"
ACCEPTED: dict[str, str] = {}  # advisory id -> why it does not apply to this project


def locked_requirements() -> list[tuple[str, str]]:
    # python3 from PATH runs uv, as the Makefile does
    out = subprocess.run(  # noqa: S603
        [  # noqa: S607
            "python3",
            "-m",
            "uv",
            "export",
            "--all-packages",
            "--no-hashes",
            "--no-emit-workspace",
            "--format",
            "requirements-txt",
            "-q",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = []
    for line in out.splitlines():
        line = line.split(";")[0].strip()
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins.append((name.strip(), version.strip()))
    return pins


def project_data(name: str) -> dict | None:
    try:
        with urllib.request.urlopen(INDEX.format(name=name), timeout=30) as resp:  # noqa: S310 - PyPI only
            return json.load(resp)
    except (urllib.error.URLError, TimeoutError, ValueError):
        return None


def audit(pin: tuple[str, str]) -> tuple[str, str, str, list[dict]]:
    name, version = pin
    data = project_data(name)
    if data is None:
        return name, version, "unreachable", []
    latest = data["info"]["version"]
    if latest != version:
        return name, version, f"not auditable here (latest is {latest})", []
    vulns = [v for v in data.get("vulnerabilities") or [] if v.get("id") not in ACCEPTED]
    return name, version, "audited", vulns


def main() -> None:
    pins = locked_requirements()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(audit, pins))
    audited = [r for r in results if r[2] == "audited"]
    found = [(n, v, x) for n, v, _, vulns in audited for x in vulns]
    for name, version, state, _ in results:
        if state != "audited":
            print(f"{name}=={version}: {state}")
    for name, version, vuln in found:
        print(
            f"VULNERABLE {name}=={version}: {vuln.get('id')} {vuln.get('aliases')} fixed in {vuln.get('fixed_in')}"
        )
    print(f"{len(audited)} of {len(pins)} locked packages audited, {len(found)} known vulnerabilities")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
