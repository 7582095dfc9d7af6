"""The entry and exit procedure through the broker: seed households' steps produced to the
household topics, a live monitoring worker (event clock: assessed as of each household's latest
event), its RiskAssessed v2 records read back from household.risk."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from services.platform.localstack.ports import free_port
from services.tools.workers import monitoring_env, start_monitoring_worker
from tests.integration.monitoring.test_monitoring_worker import broker_session, codes, send_all
from tests.records import approved, at, review
from tests.seed_households import monitored_then_eliminated, zhou_uremia

pytestmark = pytest.mark.integration
VILLAGE = {"body": "VILLAGE", "approving_level": "VILLAGE"}
COUNTY = {"body": "COUNTY", "approving_level": "COUNTY"}


def opened(household_id: str) -> list:
    """The uremia case (seed), verification started and the village deliberation passed."""
    return [
        *zhou_uremia(household_id),
        review(household_id, at("2020-05-16", 21), "START_VERIFICATION", label="open"),
        review(
            household_id, at("2020-05-17"), "VILLAGE_DELIBERATION", label="delib",
            outcome="PASSED", **VILLAGE,
        ),
    ]  # fmt: skip


def notice(household_id: str, days: int) -> tuple:
    return review(
        household_id, at("2020-05-18"), "NOTICE", label=f"notice-{days}",
        notice_start=dt.date(2020, 5, 18), notice_days=days, **VILLAGE,
    )  # fmt: skip


def note(assessment: dict, code: str) -> str:
    return next(r["message"] for r in assessment["reasons"] if r["code"] == code)


async def test_the_procedure_through_the_broker(kafka_bootstrap, database_url, tmp_path):
    prefix = f"proc-{uuid.uuid4().hex[:8]}"
    names = ("entry", "waiting", "skip", "exception", "short", "exit", "exit-skip")
    h = {name: f"{prefix}-{name}" for name in names}
    env = monitoring_env(
        kafka_bootstrap,
        tmp_path,
        f"monitoring-it-{prefix}",
        free_port(),
        DATABASE_URL=database_url,
        SHOUWANG_MONITORING_CLOCK="event",
    )
    objection = review(
        h["waiting"], at("2020-05-20"), "OBJECTION", label="objection",
        reason="a neighbour says the family owns a truck", **VILLAGE,
    )  # fmt: skip
    township = review(
        h["waiting"], at("2020-05-23"), "TOWNSHIP_REVIEW", label="township", outcome="PASSED",
        body="TOWNSHIP", approving_level="TOWNSHIP",
    )  # fmt: skip
    why = "uremia, dialysis three times a week: the county includes him at once"
    async with broker_session(kafka_bootstrap, prefix, tmp_path) as (producer, watcher, workers):
        workers.append(start_monitoring_worker(env, tmp_path / "worker-procedure.log"))
        await send_all(
            producer,
            [
                *zhou_uremia(h["entry"]),
                *approved(h["entry"], at("2020-05-24"), "INCLUDE", "UNSTABLE_LIFTED"),
                *opened(h["waiting"]),
                notice(h["waiting"], 5),
                objection,
                township,
                *opened(h["skip"]),
                review(h["skip"], at("2020-05-24"), "INCLUDE", "UNSTABLE_LIFTED", **COUNTY),
                *zhou_uremia(h["exception"]),
                review(h["exception"], at("2020-05-16", 20), "START_VERIFICATION", label="o"),
                review(
                    h["exception"], at("2020-05-16", 21), "INCLUDE", "UNSTABLE_LIFTED",
                    exception=True, reason=why, **COUNTY,
                ),
                *opened(h["short"]),
                notice(h["short"], 3),
                *monitored_then_eliminated(h["exit"]),
                *monitored_then_eliminated(h["exit-skip"])[:-5],  # no exit procedure
                review(h["exit-skip"], at("2020-11-25"), "ELIMINATE", **COUNTY),
            ],
        )  # fmt: skip

        def settled() -> bool:
            latest = {n: watcher.latest(h[n]) for n in names}
            if any(a is None for a in latest.values()):
                return False
            waiting = latest["waiting"]["procedure"]
            return (
                latest["entry"]["workflow"] == "MONITORED"
                and waiting is not None
                and waiting["awaiting"] == "COUNTY_APPROVAL"
                and "invalid_transition" in codes(latest["skip"])
                and latest["exception"]["workflow"] == "MONITORED"
                and "invalid_transition" in codes(latest["short"])
                and latest["exit"]["workflow"] == "ELIMINATED"
                and "invalid_transition" in codes(latest["exit-skip"])
            )

        await watcher.until(settled, 240, "every procedure's assessment", workers)
        entry = watcher.latest(h["entry"])
        assert entry["procedure"] is None and "invalid_transition" not in codes(entry)
        # The worker assesses a household once per batch, so the steps may arrive in one batch
        # and no assessment in between be emitted; any that was saw the steps in order.
        awaited = [
            a["procedure"]["awaiting"] for a in watcher.assessments[h["entry"]] if a["procedure"]
        ]
        assert not awaited or awaited[-1] == "COUNTY_APPROVAL"

        waiting = watcher.latest(h["waiting"])
        p = waiting["procedure"]
        assert (waiting["workflow"], p["direction"], p["objections"]) == ("VERIFYING", "ENTRY", 1)
        assert (p["notice_start"], p["notice_ends"]) == (dt.date(2020, 5, 18), dt.date(2020, 5, 22))
        assert p["due"] == dt.date(2020, 5, 25)  # county approval within 2 days
        assert str(objection[1]["event_id"]) in p["steps"]
        assert str(township[1]["event_id"]) == p["steps"][-1]

        skip = watcher.latest(h["skip"])
        assert skip["workflow"] == "VERIFYING" and skip["procedure"]["awaiting"] == "NOTICE"
        assert "missing step NOTICE" in note(skip, "invalid_transition")

        excepted = watcher.latest(h["exception"])
        assert excepted["procedure"] is None
        assert "skipping VILLAGE_DELIBERATION" in note(excepted, "procedure_exception")
        assert why in note(excepted, "procedure_exception")

        short = watcher.latest(h["short"])
        assert short["procedure"]["awaiting"] == "NOTICE"
        assert "shorter than the policy's minimum of 5 days" in note(short, "invalid_transition")

        out = watcher.latest(h["exit"])
        assert out["procedure"] is None and "invalid_transition" not in codes(out)
        exits = [a["procedure"] for a in watcher.assessments[h["exit"]] if a["procedure"]]
        # Its inclusion, then the exit procedure; assessed once per batch, the worker may emit
        # none in between, but never one out of order.
        directions = [p["direction"] for p in exits]
        assert directions == sorted(directions, key=("ENTRY", "EXIT").index)

        kept = watcher.latest(h["exit-skip"])
        assert kept["workflow"] == "MONITORED"
        assert "missing step VILLAGE_DELIBERATION" in note(kept, "invalid_transition")
