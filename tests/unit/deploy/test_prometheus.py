"""Prometheus config and alert rules: `promtool check` and `promtool test rules` must pass.

promtool comes from Debian's `prometheus` package (`apt-get install -y prometheus`); .ci/run
installs it. Without it these tests fail and say so: they are never skipped.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found: install it with `apt-get install -y prometheus` "
            "(Debian's package provides promtool and the server)"
        )
    return path


def run(promtool: str, *args: str) -> str:
    done = subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_the_scrape_config_and_its_rule_files_are_valid(promtool):
    output = run(promtool, "check", "config", "prometheus.yml")
    assert "SUCCESS" in output


def test_the_alert_rules_are_valid(promtool):
    assert "SUCCESS" in run(promtool, "check", "rules", "rules/shouwang.rules.yml")


def test_the_alert_rules_unit_tests_pass(promtool):
    tests = sorted(str(p.relative_to(PROMETHEUS)) for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests
    assert "SUCCESS" in run(promtool, "test", "rules", *tests)


def test_every_alert_has_a_unit_test():
    import yaml

    rules = yaml.safe_load((PROMETHEUS / "rules" / "shouwang.rules.yml").read_text("utf-8"))
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tested = set()
    for path in (PROMETHEUS / "tests").glob("*.yml"):
        for test in yaml.safe_load(path.read_text("utf-8"))["tests"]:
            tested |= {
                t["alertname"] for t in test.get("alert_rule_test", []) if t.get("exp_alerts")
            }
    assert alerts - tested == set()


def test_every_promtool_input_series_is_one_a_real_scrape_has():
    from tests.scrape_fixture import promtool_input_series, recorded, unknown_series

    series = promtool_input_series()
    assert series
    assert unknown_series(series, recorded()) == []
