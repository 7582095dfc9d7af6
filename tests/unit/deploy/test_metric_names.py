"""The alert rules and the dashboard query metrics the services really export.

Names come from each service's `metrics.py`. The monitoring service's metrics did not exist when
the rules were written; the names below are the ones assumed for it (documented in
deploy/README.md). When its metrics.py lands, these assumptions are checked against it too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
ASSUMED_MONITORING = {
    "shouwang_monitoring_households",  # gauge {category, workflow, township}
    "shouwang_monitoring_overdue_households",  # gauge {kind=decision|visit, township}
    "shouwang_monitoring_dead_letters_total",  # counter {kind}
}
EXTERNAL = {"up", "kafka_consumergroup_lag"}  # Prometheus itself; kafka-exporter
NAME = re.compile(r"\b(shouwang_[a-z0-9_]+|kafka_[a-z0-9_]+|up)\b")


def exported() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "services").glob("*/metrics.py"):
        for name in re.findall(r'"(shouwang_[a-z0-9_]+)"', path.read_text("utf-8")):
            names.add(name)
            # Histograms and counters expose derived series.
            names |= {name + suffix for suffix in ("_bucket", "_sum", "_count", "_created")}
    return names


def monitoring_exports() -> bool:
    return (ROOT / "services" / "monitoring" / "metrics.py").exists()


def queried(text: str) -> set[str]:
    found = set(NAME.findall(text))
    # `{__name__=~"shouwang_.+_dead_letters_total"}` is a pattern, not a name.
    return {n for n in found if not n.endswith("_")}


def known() -> set[str]:
    names = exported() | EXTERNAL
    if not monitoring_exports():
        names |= ASSUMED_MONITORING
    return names


def test_alert_rules_use_exported_metric_names():
    text = (DEPLOY / "prometheus" / "rules" / "shouwang.rules.yml").read_text("utf-8")
    exprs = "\n".join(re.findall(r"expr: (?:>-\n)?((?:.+\n)+?)\s+(?:for|labels):", text))
    assert exprs
    assert queried(exprs) - known() == set()


def test_dashboard_queries_use_exported_metric_names():
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "shouwang-county.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    assert queried("\n".join(exprs)) - known() == set()
