"""The alert rules and the dashboards query metrics, labels and label values the services
really export.

Names and label names come from the scrape fixture a real Prometheus recorded from the real
services (tests/scrape_fixture.py; tests/integration/test_alerts.py checks it still matches a
live scrape); a name is also checked against the services' `metrics.py`, so a metric renamed in
code fails here before the fixture is recorded again. Label values in `{label="value"}`
matchers must be values a scrape showed (the bug this guards against: `kind="decision"` when
the service exports `kind="decision_overdue"`), or match the matcher of a label whose values
the workload never produced all of (FREE_VALUES).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.scrape_fixture import FREE_VALUES, parse_selector, recorded

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
EXTERNAL = {"up", "kafka_consumergroup_lag"}  # Prometheus itself; kafka-exporter
NAME = re.compile(r"\b(shouwang_[a-z0-9_]+|kafka_[a-z0-9_]+|up|process_[a-z_]+|python_[a-z_]+)\b")
MATCHER = re.compile(r'\b([a-z_][a-z0-9_]*)\s*(=~|=|!=|!~)\s*"([^"]*)"')
SELECTOR = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\{([^}]*)\}")


def coded() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "services").glob("**/metrics.py"):
        for name in re.findall(r'"(shouwang_[a-z0-9_]+)"', path.read_text("utf-8")):
            names.add(name)
            # Histograms, counters and infos expose derived series.
            names |= {name + s for s in ("_bucket", "_sum", "_count", "_created", "_info")}
    return names


def scraped() -> dict[str, dict[str, set[str]]]:
    """name → label → values, from the fixture."""
    out: dict[str, dict[str, set[str]]] = {}
    for series in recorded():
        labels = parse_selector(series)
        name = labels.pop("__name__")
        for key, value in labels.items():
            out.setdefault(name, {}).setdefault(key, set()).add(value)
        out.setdefault(name, {})
    return out


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "shouwang.rules.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    exprs = []
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text("utf-8"))["panels"]:
            exprs += [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
    return exprs


def problems(exprs: list[str]) -> list[str]:
    known = scraped()
    found = []
    for expr in exprs:
        for name in set(NAME.findall(expr)) - EXTERNAL:
            if name.startswith("shouwang_") and name not in coded():
                found.append(f"{name}: no services/*/metrics.py registers it ({expr})")
            elif name not in known:
                found.append(f"{name}: not in a real scrape ({expr})")
        for name, matchers in SELECTOR.findall(expr):
            if name in EXTERNAL or name not in known:
                continue
            for label, op, value in MATCHER.findall(matchers):
                value = value.replace("$township", ".*")  # the variable's All, its default
                values = known[name].get(label)
                if values is None:
                    found.append(f"{name} has no label {label} ({expr})")
                    continue
                pattern = re.compile(value) if op in ("=~", "!~") else None
                free = label in FREE_VALUES
                if op == "=" and value not in values and not free:
                    found.append(f'{name}{{{label}="{value}"}}: scraped values {sorted(values)}')
                if op == "=~" and not any(pattern.fullmatch(v) for v in values) and not free:
                    found.append(f"{name}{{{label}=~{value!r}}} matches none of {sorted(values)}")
    return found


def test_alert_rules_use_exported_metric_names_labels_and_values():
    exprs = rule_exprs()
    assert exprs
    assert problems(exprs) == []


def test_dashboard_queries_use_exported_metric_names_labels_and_values():
    exprs = dashboard_exprs()
    assert exprs
    assert problems(exprs) == []


def test_the_checks_catch_an_invented_label_value():
    assert problems(['sum(shouwang_monitoring_overdue_households{kind="decision"})']) != []
    assert problems(['shouwang_monitoring_households{workflow=~"MONITOR"}']) != []
    assert problems(["shouwang_monitoring_no_such_metric"]) != []
