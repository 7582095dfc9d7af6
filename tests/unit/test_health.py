"""platform/health.py: the readiness answer from the checks' results (the processes' own
checks are tested against the running services in tests/integration/deploy/)."""

from __future__ import annotations

import asyncio

from services.platform import health


async def test_ready_when_every_check_passes_else_the_reasons_of_those_that_do_not(monkeypatch):
    async def passes() -> None:
        return None

    async def behind() -> str:
        return health.lag_reason(12, 10) or ""

    async def raises() -> None:
        raise ConnectionRefusedError("10.0.0.5:5432")

    async def hangs() -> None:
        await asyncio.Event().wait()

    ready, body = await health.readiness({"kafka": passes, "database": passes})
    assert ready and body == {"status": "ready", "checks": ["kafka", "database"]}
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.05)
    ready, body = await health.readiness(
        {"kafka": passes, "lag": behind, "database": raises, "broker": hangs}
    )
    assert not ready
    assert body["type"] == "urn:shouwang:problem:not_ready" and body["status"] == 503
    assert body["reasons"] == {
        "lag": "12 records behind, over the budget of 10 (SHOUWANG_READY_MAX_LAG)",
        "database": "failed: ConnectionRefusedError",  # no host in an open answer
        "broker": "no answer within 0.05 s",
    }
    assert "lag: 12 records behind" in body["detail"]


def test_lag_counts_each_partition_from_the_next_record_to_apply():
    ends = {("t", 0): 100, ("t", 1): 50, ("t", 2): 7}
    assert health.consumer_lag(ends, {("t", 0): 90, ("t", 1): 50, ("t", 2): 0}) == 17
    assert health.consumer_lag(ends, {("t", 0): 120}) == 0  # never negative; unknown = none
    assert health.lag_reason(10, 10) is None
