"""A live monitoring worker on the default wall clock crosses the 2021 policy switch: its clock,
injected, moves from 2020-12-20 to 2021-01-10 and on, and every household in the workflow is
carried over to national-2021 by the worker's own deadline tick, with no new event."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from services.platform.localstack.ports import free_port
from services.tools.workers import monitoring_env
from tests.integration.monitoring.test_monitoring_worker import broker_session, codes, send_all
from tests.records import approved, at
from tests.seed_households import general_key_2020, general_key_with_a_bill, zhou_uremia

pytestmark = pytest.mark.integration
RUNNER = Path(__file__).with_name("clock_worker.py")
ROOT = Path(__file__).resolve().parents[3]


def set_clock(path: Path, moment: str) -> None:
    """Move the worker's clock in one step: it reads the file on every event and sweep, and a
    file rewritten in place can be read empty (the worker then dies on an unreadable clock —
    exit 75 in one CI run)."""
    staged = path.with_suffix(".new")
    staged.write_text(moment, encoding="utf-8")
    os.replace(staged, path)


def start(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, str(RUNNER), env["CLOCK_FILE"]],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_a_live_worker_carries_its_households_over_at_the_2021_switch(
    kafka_bootstrap, database_url, tmp_path
):
    prefix = f"switch-{uuid.uuid4().hex[:8]}"
    h = {name: f"{prefix}-{name}" for name in ("key", "bill", "zhou")}
    clock = tmp_path / "now"
    set_clock(clock, "2020-12-20T09:00:00+00:00")
    env = monitoring_env(
        kafka_bootstrap,
        tmp_path,
        f"monitoring-it-{prefix}",
        free_port(),
        DATABASE_URL=database_url,
        SHOUWANG_MONITORING_CLOCK="wall",  # the default: assessments speak for the clock's now
        SHOUWANG_MONITORING_SWEEP_SECONDS="1",
        CLOCK_FILE=str(clock),
    )
    async with broker_session(kafka_bootstrap, prefix, tmp_path) as (producer, watcher, workers):
        workers.append(start(env, tmp_path / "worker-switch.log"))

        def latest(name: str, *fields: str) -> tuple | None:
            a = watcher.latest(h[name])
            return None if a is None else tuple(a[f] for f in fields)

        await send_all(
            producer,
            [
                *general_key_2020(h["key"]),
                *general_key_with_a_bill(h["bill"]),
                *zhou_uremia(h["zhou"]),
                *approved(h["zhou"], at("2020-05-16", 20), "INCLUDE", "UNSTABLE_LIFTED"),
            ],
        )
        before = {
            "key": ("dianjiang-2020", "MONITORED", "GENERAL_KEY"),
            "bill": ("dianjiang-2020", "MONITORED", "GENERAL_KEY"),
            "zhou": ("dianjiang-2020", "MONITORED", "UNSTABLE_LIFTED"),
        }
        fields = ("policy_version", "workflow", "category")
        await watcher.until(
            lambda: (
                all(latest(n, *fields) == want for n, want in before.items())
                and all(watcher.latest(h[n])["as_of"].date().isoformat() == "2020-12-20" for n in h)
            ),
            240,
            "the 2020 assessments",
            workers,
        )
        assert not any("policy_transition" in codes(watcher.latest(h[n])) for n in h)

        set_clock(clock, "2021-01-10T09:00:00+00:00")  # no event is sent
        after = {
            "key": ("national-2021", "MONITORED", "MARGINAL"),
            "bill": ("national-2021", "MONITORED", "SUDDEN_HARDSHIP"),
            "zhou": ("national-2021", "MONITORED", "UNSTABLE_LIFTED"),
        }
        await watcher.until(
            lambda: all(latest(n, *fields) == want for n, want in after.items()),
            120,
            "the carry-over at the switch",
            workers,
        )
        for name in h:
            a = watcher.latest(h[name])
            assert a["as_of"].date().isoformat() == "2021-01-10"
            (transition,) = [r for r in a["reasons"] if r["code"] == "policy_transition"]
            assert transition["message"].startswith("dianjiang-2020 → national-2021 on 2021-01-01")
            assert "invalid_transition" not in codes(a)
        key = watcher.latest(h["key"])
        assert "re-review due by 2021-01-16" in next(
            r["message"] for r in key["reasons"] if r["code"] == "policy_transition"
        )
        assert "decision_overdue" not in key["overdue"]

        # The re-review deadline passes with no decision: the worker ticks the household again.
        set_clock(clock, "2021-01-20T09:00:00+00:00")
        await watcher.until(
            lambda: "decision_overdue" in watcher.latest(h["key"])["overdue"],
            120,
            "the overdue re-review",
            workers,
        )
        assert latest("key", *fields) == after["key"]
