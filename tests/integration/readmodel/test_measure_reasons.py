"""A measures row's reasons are those of its furthest step, whatever order the steps arrive in:
support's CANCELLED step (the household left, with the reason) may reach the projector before
the pool's late RECOMMENDED step of the same measure (a queue place promoted just before the
release), and the row must keep the cancellation's reason, as its status keeps `cancelled`."""

from __future__ import annotations

import datetime as dt
import json
from collections import namedtuple
from itertools import count

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from services.contract.codec import Codec
from services.readmodel.metrics import ProjectorMetrics
from services.readmodel.projector import Projector, ProjectorConfig
from tests import records
from tests.integration.readmodel.test_projector import NOW, fresh_database

pytestmark = pytest.mark.integration
__all__ = ["fresh_database"]
Record = namedtuple("Record", "topic partition offset value timestamp")
CODEC = Codec.default()
POOL = "township:鹤游镇:public-welfare-jobs"
DAY = dt.timedelta(days=1)


def step(household_id: str, step: str, days: int, reasons: list[str], **fields) -> bytes:
    return CODEC.encode(*records.measure(
        household_id, NOW + days * DAY, f"{household_id}-m", step, "PUBLIC_WELFARE_JOB",
        "employment.public-welfare-job", label=f"{step}/{days}/{fields}", pool=POOL,
        reasons=reasons, **fields))  # fmt: skip


@pytest.mark.parametrize("cancelled_first", [True, False])
async def test_a_late_recommendation_does_not_replace_the_cancellations_reason(
    fresh_database: str, cancelled_first: bool
):
    hid = f"reasons-{cancelled_first}"
    waiting = step(hid, "RECOMMENDED", 0, ["rule", "waiting"], waiting_for=POOL)
    allocated = step(hid, "RECOMMENDED", 0, ["rule"])
    delivered = step(hid, "DELIVERED", 2, [])
    cancelled = step(hid, "CANCELLED", 30, ["household ELIMINATED as of 2020-06-15"])
    order = [waiting, cancelled, allocated, delivered] if cancelled_first else [
        waiting, allocated, delivered, cancelled]  # fmt: skip
    offsets = count()
    projector = Projector(ProjectorConfig(bootstrap="unused:1", database_url=fresh_database),
                          CODEC, ProjectorMetrics(CollectorRegistry()))  # fmt: skip
    conn = await asyncpg.connect(fresh_database)
    try:
        for value in order:  # one batch each: the statements' guards decide, not batch order
            batch = [Record("support.measures", 0, next(offsets), value, 0)]
            assert await projector.apply(conn, batch) == 1
        row = await conn.fetchrow(
            "SELECT status, reasons, waiting_for FROM measures WHERE measure_id = $1", f"{hid}-m"
        )
    finally:
        await conn.close()
    assert row["status"] == "cancelled" and row["waiting_for"] is None
    assert json.loads(row["reasons"]) == ["household ELIMINATED as of 2020-06-15"]
