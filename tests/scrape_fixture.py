"""The scrape fixture the promtool tests take their input series from, and the series syntax
both use.

deploy/prometheus/tests/scrape.json lists every series a real Prometheus scraped from the real
services in tests/integration/test_alerts.py, as `name{label="value", ...}` with labels sorted,
the `instance` label dropped (a port of the test) and the values of build and interpreter labels
masked as "*" (they change with every commit and Python). `SHOUWANG_RECORD_SCRAPE=1 pytest
tests/integration/test_alerts.py` rewrites it; that test also checks it still matches a live
scrape, and tests/unit/deploy/test_prometheus.py that every promtool input series is in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
SCRAPE_FIXTURE = PROMETHEUS_DIR / "tests" / "scrape.json"
# Label values that name the build or the interpreter, not what the code exports.
MASKED = {"shouwang_build_info": {"version", "revision"},
          "python_info": {"version", "implementation", "major", "minor", "patchlevel"}}  # fmt: skip
# Series of other exporters and of jobs the services are not: not in a services' scrape.
FOREIGN_NAMES = ("kafka_",)
FOREIGN_JOBS = {"kafka-exporter", "prometheus"}
# Labels whose values a test may choose beyond those one scrape saw, and what they must look
# like: an HTTP status the scenario never caused (503 needs a broker outage).
FREE_VALUES = {"status": re.compile(r"^[1-5][0-9][0-9]$")}


def as_selector(labels: dict[str, str]) -> str:
    """`name{a="x", b="y"}` with labels sorted, the instance dropped and volatile values masked."""
    name = labels["__name__"]
    masked = MASKED.get(name, set())
    pairs = sorted((k, "*" if k in masked else v) for k, v in labels.items()
                   if k not in ("__name__", "instance"))  # fmt: skip
    inner = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in pairs)
    return f"{name}{{{inner}}}"


SELECTOR = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}$")
PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_selector(text: str) -> dict[str, str]:
    """The labels (with __name__) of `name{a="x", ...}` as promtool input series write it."""
    match = SELECTOR.match(text.strip())
    assert match, f"not a series: {text!r}"
    labels = {"__name__": match.group(1)}
    for key, raw in PAIR.findall(match.group(2)):
        labels[key] = json.loads(f'"{raw}"')
    return labels


def signature(selector: str) -> tuple[str, frozenset[str]]:
    labels = parse_selector(selector)
    return labels.pop("__name__"), frozenset(labels)


def promtool_input_series() -> set[str]:
    """Every input series of deploy/prometheus/tests/*.yml from a Shouwang service, normalised
    as the fixture is (other exporters' and jobs' series left out)."""
    found = set()
    for path in sorted((PROMETHEUS_DIR / "tests").glob("*.yml")):
        for test in yaml.safe_load(path.read_text("utf-8"))["tests"]:
            for series in test.get("input_series", []):
                labels = parse_selector(series["series"])
                if labels["__name__"].startswith(FOREIGN_NAMES):
                    continue
                if labels.get("job") in FOREIGN_JOBS:
                    continue
                found.add(as_selector(labels))
    return found


def unknown_series(series: Iterable[str], scraped: Iterable[str]) -> list[str]:
    """Those of `series` a scrape could not have produced: a name with label names no
    `scraped` series has, or a label value no `scraped` series of the name has (FREE_VALUES
    aside)."""
    signatures = {signature(s) for s in scraped}
    values: dict[tuple[str, str], set[str]] = {}
    for s in scraped:
        labels = parse_selector(s)
        for key, value in labels.items():
            values.setdefault((labels["__name__"], key), set()).add(value)
    unknown = []
    for s in sorted(series):
        labels = parse_selector(s)
        name = labels["__name__"]
        bad = [f"{k}={v!r}" for k, v in labels.items()
               if v not in values.get((name, k), set())
               and not (k in FREE_VALUES and FREE_VALUES[k].match(v))]  # fmt: skip
        if signature(s) not in signatures or bad:
            unknown.append(f"{s}: " + (", ".join(bad) or "no scraped series has these labels"))
    return unknown


def recorded() -> list[str]:
    return json.loads(SCRAPE_FIXTURE.read_text("utf-8"))
