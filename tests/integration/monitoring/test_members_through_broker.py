"""Issue #17 item 2 through the real broker and a monitoring worker: a medical bill below last
year's income flags nothing (v1 and v2 reports alike), and a household with members and a
diagnosis gets its special-attention reason and its members' ages on the event's date."""

from __future__ import annotations

import uuid

import pytest

from services.platform.localstack.ports import free_port
from tests.integration.monitoring.test_monitoring_worker import (
    broker_session,
    codes,
    send_all,
    start_worker,
)
from tests.records import at, diagnosis, expense, hardship, member, registry

pytestmark = pytest.mark.integration


def couple(household_id: str, head: str, spouse_labour: str = "FULL"):
    return registry(
        household_id,
        at("2019-12-31"),
        people=[
            member("1", head),
            member("2", "1957-02", relation="SPOUSE", sex="FEMALE", labour=spouse_labour),
        ],
        baseline=(2019, 9000),  # 18,000 yuan for the household
    )


async def test_bills_diagnoses_and_ages_through_the_broker(kafka_bootstrap, database_url, tmp_path):
    prefix = f"mem-{uuid.uuid4().hex[:8]}"
    bill, diagnosed = f"{prefix}-bill", f"{prefix}-diagnosed"
    records = [
        couple(bill, "1975-05"),
        # the example: a 10,000-yuan medical bill against 18,000 of last year's income,
        # reported in v1 then updated in v2 (one case)
        hardship(bill, at("2020-05-14"), "ILLNESS", 10000, hardship_id="bill"),
        hardship(
            bill, at("2020-05-20"), "ILLNESS", hardship_id="bill", expense=expense(10000, "MEDICAL")
        ),
        # a head of 64 with full labour, 65 in June: then disabled elderly without labour
        couple(diagnosed, "1955-06", spouse_labour="WEAK"),
        hardship(
            diagnosed,
            at("2020-06-10"),
            "DISABILITY",
            hardship_id="cert",
            expense=expense(20000, "MEDICAL"),
            diagnosis=diagnosis("DISABILITY", "1", grade=2),
        ),
    ]
    expected = {
        bill: lambda a: a["workflow"] == "NOT_FLAGGED" and codes(a) == set(),
        diagnosed: lambda a: (
            codes(a) == {"rigid_expenditure", "disabled_elderly", "no_labour"}
            and (a["workflow"], a["level"], a["category"]) == ("FLAGGED", "HIGH", "UNSTABLE_LIFTED")
        ),
    }
    port = free_port()
    async with broker_session(kafka_bootstrap, prefix, tmp_path) as (producer, watcher, workers):
        app_id = f"members-it-{prefix}"
        workers.append(start_worker(kafka_bootstrap, app_id, tmp_path, port, database_url))
        await send_all(producer, records)

        def all_expected() -> bool:
            return all((a := watcher.latest(k)) is not None and ok(a) for k, ok in expected.items())

        await watcher.until(all_expected, 240, "both households' assessments", workers)
        assert watcher.dead == []
        # never flagged on the way: no assessment of the bill household carried a reason
        assert all(a["reasons"] == [] for a in watcher.assessments[bill])
        reasons = {r["code"]: r for r in watcher.latest(diagnosed)["reasons"]}
        assert "member 1 (head, aged 65)" in reasons["disabled_elderly"]["message"]
        assert "aged 16-64" in reasons["no_labour"]["message"]
        assert "medical 20000" in reasons["rigid_expenditure"]["message"]
        cert = str(records[-1][1]["event_id"])
        assert cert in reasons["disabled_elderly"]["event_ids"]
