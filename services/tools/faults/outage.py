"""Scenario "db-outage": stop PostgreSQL (30 s; 10 s in quick mode) under a steady simulated
load, start it again on the same port, and check the projector waited (did not exit) and
caught up with nothing lost or doubled (load.py's checks).

The outage length is the fault itself, so it is the one fixed wait here; everything else waits
on conditions with deadlines.
"""

from __future__ import annotations

import asyncio
import time

from services.platform.kafka.admin import ensure_topics
from services.tools.faults.crashes import MONITORING_APP, PROJECTOR_GROUP
from services.tools.faults.load import Load, check_after, projected_counts
from services.tools.faults.processes import monitoring_worker, projector_worker
from services.tools.faults.stack import LAYOUT, PrivateStack
from services.tools.faults.verdict import Result, wait_for
from services.tools.simulation.parameters import SimulationParameters


async def run(stack: PrivateStack, quick: bool, seed: int) -> Result:
    result = Result("db-outage")
    started = time.monotonic()
    outage_seconds = 10.0 if quick else 30.0
    await ensure_topics(stack.bootstrap, LAYOUT)
    monitoring, port = monitoring_worker(stack, MONITORING_APP)
    projector = projector_worker(stack, PROJECTOR_GROUP)
    workers = [monitoring, projector]
    load = Load(
        stack,
        SimulationParameters(seed=seed % 10_000 + 2, scale=0.01 if quick else 0.04),
        rate=40.0 if quick else 60.0,
    )
    try:
        for worker in workers:
            worker.start()
        load.start()

        before = sum((await projected_counts(stack.database_url) or {}).values())

        async def projecting() -> bool:
            # Rows of this load, so the outage cuts the projector mid-stream, not at start-up.
            return sum((await projected_counts(stack.database_url) or {}).values()) > before + 50

        await wait_for(projecting, 120, "the projector's first rows", 1.0, workers)
        stack.postgres.stop()
        down_at = time.monotonic()
        sent_before = len(load.sink.acknowledged)
        await asyncio.sleep(outage_seconds)  # the fault: PostgreSQL is down this long
        stack.postgres.start(timeout=120)
        result.counts["outage"] = f"{time.monotonic() - down_at:.0f} s"
        result.counts["acknowledged_during_outage"] = len(load.sink.acknowledged) - sent_before
        survived = projector.running
        result.counts["projector_survived"] = survived
        result.check(
            survived,
            f"the projector exited ({projector.returncode}) during the outage instead of "
            f"waiting; log: {projector.log_path}, ending:\n{projector.log_tail()}",
        )
        if not survived:
            projector.start()  # as a supervisor would, to measure loss independently
        await load.finish()
        result.counts["load"] = f"{len(load.sink.acknowledged)} events at {load.rate:.0f}/s"
        await check_after(result, stack, load, port, workers, 240 if quick else 600)
    except AssertionError as exc:
        result.failures.append(str(exc))
    finally:
        load.wind_down(workers)
        if not stack.postgres.is_running:
            stack.postgres.start(timeout=120)
        result.seconds = time.monotonic() - started
    return result
