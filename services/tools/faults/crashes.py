"""Scenario "crashes": kill -9 the monitoring worker and the projector at random moments under
a steady simulated load, restart them, and check nothing was lost or doubled (load.py's checks,
then `shouwang replay --verify`).

The support worker is killed too; afterwards its steps are checked: every copy of a step id
identical (recommendations, and the cancellations of measures whose household left the served
states), and no pool instance holding more households than its capacity.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Iterable

from services.contract.catalogue import Catalogue, load_catalogue
from services.contract.errors import ContractError
from services.contract.inputs import SUPPORT_INPUTS
from services.contract.topics import CADRES, MEASURES, RISK, SUPPORT_MEASURES
from services.platform.kafka.admin import ensure_topics
from services.support.adapters.avro_translation import ACTOR as SUPPORT_ACTOR
from services.support.entrypoints.app import pool_commands_topic
from services.tools.faults.load import Load, check_after
from services.tools.faults.observe import CODEC, end_offsets, read_topics, wait_committed
from services.tools.faults.processes import (
    monitoring_worker,
    projector_worker,
    run_replay_verify,
    support_worker,
)
from services.tools.faults.stack import LAYOUT, PrivateStack
from services.tools.faults.verdict import Result, ScenarioFailed, wait_for
from services.tools.simulation.parameters import SimulationParameters

MONITORING_APP = "faults-monitoring"  # one deployment across scenarios: it resumes, not redoes
PROJECTOR_GROUP = "faults-readmodel"
SUPPORT_APP = "faults-support"


async def run(stack: PrivateStack, quick: bool, seed: int) -> Result:
    result = Result("crashes")
    started = time.monotonic()
    rng = random.Random(seed)
    kills_each = 1 if quick else 3
    await ensure_topics(stack.bootstrap, LAYOUT)
    monitoring, port = monitoring_worker(stack, MONITORING_APP)
    projector = projector_worker(stack, PROJECTOR_GROUP)
    support = support_worker(stack, SUPPORT_APP)
    workers = [monitoring, projector, support]
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
                raise ScenarioFailed(
                    f"{victim.name} exited by itself; log: {victim.log_path}, ending:\n"
                    f"{victim.log_tail()}"
                )
            victim.kill9()
            await asyncio.sleep(rng.uniform(0.0, 2.0))  # down for a moment, as a crash loop is
            victim.start()
        await load.finish()
        result.counts["load"] = f"{len(load.sink.acknowledged)} events at {load.rate:.0f}/s"
        result.counts["kills"] = ", ".join(f"{w.name} {w.kills}" for w in workers)
        # Monitoring and support feed each other (assessments → recommendations → measures):
        # let both stop writing before the log is compared with the state (which re-reads
        # the log on every poll anyway: a restarted worker may rejoin late and write more).
        await settle(stack, workers, 240 if quick else 600)
        await check_after(result, stack, load, port, workers, 240 if quick else 600)
        support_inputs = [
            *(t.name for t in SUPPORT_INPUTS),
            CADRES.name,
            pool_commands_topic(SUPPORT_APP),
        ]

        await wait_committed(
            stack.bootstrap, {SUPPORT_APP: support_inputs}, 240 if quick else 600, workers
        )
        await check_support(result, stack)
        # The simulated county's households (DJ...): the poison scenario's are impossible on
        # purpose and reported there.
        code, tail = await run_replay_verify(stack, "DJ")
        result.counts["replay_verify_exit"] = code
        result.check(code == 0, f"shouwang replay --verify exited {code}:\n{tail}")
    except AssertionError as exc:
        result.failures.append(str(exc))
    finally:
        load.wind_down(workers)
        result.seconds = time.monotonic() - started
    return result


async def settle(stack: PrivateStack, workers: list, seconds: float) -> None:
    """Until household.risk and support.measures stop growing (three polls, 3 s apart)."""
    last: list[int] = []

    async def quiet() -> bool:
        last.append(await end_offsets(stack.bootstrap, [RISK.name, SUPPORT_MEASURES.name]))
        return len(last) >= 3 and len(set(last[-3:])) == 1

    await wait_for(quiet, seconds, "monitoring and support to settle", 3.0, workers)


async def check_support(result: Result, stack: PrivateStack) -> None:
    """Support's steps after the support worker's kill -9: one record per step id (copies
    identical but for recorded_at), and no pool instance over its capacity (`support_verdict`).
    """
    steps = []
    for record in await read_topics(stack.bootstrap, [SUPPORT_MEASURES.name, MEASURES.name]):
        try:
            steps.append(
                (record.topic, CODEC.decode(record.value, expected=MEASURES.event_type).record)
            )
        except ContractError:
            continue  # the poison scenario's garbage: dead-lettered, checked there
    by_id, differing, over, held = support_verdict(steps, load_catalogue())
    result.counts["support_steps"] = len(by_id)
    result.counts["support_resent_copies"] = sum(len(items) - 1 for items in by_id.values())
    result.counts["support_slots_held"] = held
    result.counts["support_cancellations"] = sum(
        1 for items in by_id.values() if items[0]["step"] == "CANCELLED"
    )
    result.check(bool(by_id), "the support worker recommended nothing")
    result.check(not differing, f"support step ids carry different records: {differing[:3]}")
    result.check(not over, f"pool instances over capacity (held, capacity): {over}")


def support_verdict(
    steps: Iterable[tuple[str, dict]], catalogue: Catalogue
) -> tuple[dict[str, list[dict]], list[str], dict[str, tuple[int, int]], int]:
    """From (topic, MeasureStepRecorded) pairs of support.measures and household.measures:
    support's steps by event id, the ids whose copies differ (but for recorded_at), the pool
    instances holding more slots than their capacity (held, capacity), and the slots held.

    A slot stays held until its measure is closed: by a COMPLETED or CANCELLED step someone
    recorded (household.measures) or by support's own CANCELLED step when the household left
    the served states. A closed slot went to the next in the queue, so the allocations of a
    pool over the whole run may exceed its capacity; those still held may not.
    """
    by_id: dict[str, list[dict]] = defaultdict(list)
    closed: set[str] = set()
    for topic, step in steps:
        if step["step"] in ("COMPLETED", "CANCELLED"):
            closed.add(step["measure_id"])
        if topic == SUPPORT_MEASURES.name and step["actor"] == SUPPORT_ACTOR:
            by_id[str(step["event_id"])].append(step)
    differing = [
        i
        for i, items in by_id.items()
        if any({**s, "recorded_at": None} != {**items[0], "recorded_at": None} for s in items)
    ]
    holders: dict[str, set[str]] = defaultdict(set)
    for items in by_id.values():
        step = items[0]
        if step["step"] == "RECOMMENDED" and step["pool"] and not step["waiting_for"]:
            if step["cadre_id"] is None and step["measure_id"] not in closed:
                holders[step["pool"]].add(step["measure_id"])  # a slot (cadres bound theirs)
    over = {
        pool: (len(measures), capacity)
        for pool, measures in holders.items()
        if (capacity := catalogue.capacity(pool)) is not None and len(measures) > capacity
    }
    return dict(by_id), differing, over, sum(len(m) for m in holders.values())
