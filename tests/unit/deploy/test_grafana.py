"""The Grafana dashboard is valid JSON with its four sections, and provisioning finds it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

GRAFANA = Path(__file__).resolve().parents[3] / "deploy" / "grafana"


def test_the_dashboard_has_overview_drill_down_pipeline_health_and_procedure():
    dashboard = json.loads((GRAFANA / "dashboards" / "shouwang-county.json").read_text("utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert [r.split(" (")[0] for r in rows] == [
        "County overview",
        "Township drill-down",
        "Pipeline health",
        "Entry and exit procedure",
    ]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert "township" in variables
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "shouwang-prometheus"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def test_provisioning_points_at_the_dashboards_and_the_prometheus_data_source():
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text("utf-8")
    )
    [source] = datasources["datasources"]
    assert source["uid"] == "shouwang-prometheus" and source["type"] == "prometheus"
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "shouwang.yml").read_text("utf-8")
    )
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
