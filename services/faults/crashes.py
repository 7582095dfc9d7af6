"""Scenario "crashes": kill -9 the monitoring worker and the projector at random moments under
a steady simulated load, restart them, and check nothing was lost or doubled (load.py's checks,
then `shouwang replay --verify`).

The support worker is not part of it yet (its faust app was being fixed when this was written).
"""

from __future__ import annotations

import asyncio
import random
import time

from services.kafka.admin import ensure_topics
from services.simulation.parameters import SimulationParameters

from .harness import (
    LAYOUT,
    PrivateStack,
    Result,
    ScenarioFailed,
    monitoring_worker,
    projector_worker,
    run_replay_verify,
)
from .load import Load, check_after

MONITORING_APP = "faults-monitoring"  # one deployment across scenarios: it resumes, not redoes
PROJECTOR_GROUP = "faults-readmodel"


async def run(stack: PrivateStack, quick: bool, seed: int) -> Result:
    result = Result("crashes")
    started = time.monotonic()
    rng = random.Random(seed)
    kills_each = 1 if quick else 3
    await ensure_topics(stack.bootstrap, LAYOUT)
    monitoring, port = monitoring_worker(stack, MONITORING_APP)
    projector = projector_worker(stack, PROJECTOR_GROUP)
    workers = [monitoring, projector]
    load = Load(
        stack,
        SimulationParameters(seed=seed % 10_000 + 1, scale=0.01 if quick else 0.04),
        rate=40.0 if quick else 60.0,
    )
    try:
        for worker in workers:
            worker.start()
        load.start()
        # Kill moments: random, spread over the load, each worker in turn.
        victims = [w for _ in range(kills_each) for w in workers]
        rng.shuffle(victims)
        for victim in victims:
            await asyncio.sleep(rng.uniform(2.0, 6.0 if quick else 12.0))
            if not victim.running:
                raise ScenarioFailed(f"{victim.name} exited by itself; log: {victim.log_path}")
            victim.kill9()
            await asyncio.sleep(rng.uniform(0.0, 2.0))  # down for a moment, as a crash loop is
            victim.start()
        await load.finish()
        result.counts["load"] = f"{len(load.sink.acknowledged)} events at {load.rate:.0f}/s"
        result.counts["kills"] = f"monitoring {monitoring.kills}, projector {projector.kills}"
        await check_after(result, stack, load, port, workers, 240 if quick else 600)
        # The simulated county's households (DJ...): the poison scenario's are impossible on
        # purpose and reported there.
        code, tail = await run_replay_verify(stack, "DJ")
        result.counts["replay_verify_exit"] = code
        result.check(code == 0, f"shouwang replay --verify exited {code}:\n{tail}")
    except AssertionError as exc:
        result.failures.append(str(exc))
    finally:
        if load.task is not None and not load.task.done():
            load.task.cancel()
        for worker in workers:
            worker.stop()
        result.seconds = time.monotonic() - started
    return result
