"""The Prometheus and Grafana files describe metrics the services really export."""

import json
import re
from pathlib import Path

import yaml
from pipeline_runtime.metrics import declared_metrics

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = json.loads((ROOT / "deploy/grafana/imgpipe-dashboard.json").read_text())
ALERTS = yaml.safe_load((ROOT / "deploy/alerts.yml").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def exported_names() -> set[str]:
    names = set()
    for exposed, kind, _, _ in declared_metrics():
        name = exposed.removesuffix("_total") if kind == "counter" else exposed
        names |= {name, f"{name}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return names


def metric_names_in(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:imgpipe|http)_[a-z_]+)\b", expr))


def test_every_dashboard_query_uses_exported_metrics():
    used = {n for p in DASHBOARD["panels"] for t in p["targets"] for n in metric_names_in(t["expr"])}
    assert used
    assert used <= exported_names()


def test_every_alert_uses_exported_metrics():
    used = {n for g in ALERTS["groups"] for r in g["rules"] for n in metric_names_in(r["expr"])}
    assert used
    assert used <= exported_names()


def test_the_observability_profile_runs_prometheus_and_grafana():
    services = COMPOSE["services"]
    assert services["prometheus"]["profiles"] == ["observability"]
    assert services["grafana"]["profiles"] == ["observability"]


def test_dashboard_panels_do_not_overlap():
    cells = set()
    for panel in DASHBOARD["panels"]:
        pos = panel["gridPos"]
        area = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & area, panel["title"]
        cells |= area
