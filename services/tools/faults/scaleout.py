"""Scenario "scale-out": workers join and leave their groups under load, one is killed (-9)
while its group rebalances and started again once its session has expired; afterwards the
groups commit to the end and the state is the one a single worker makes of the same log.

Under a steady simulated load: monitoring workers 1 → 2, support workers 1 → 2, monitoring
2 → 3 with a `kill -9` of a monitoring worker while that join's rebalance is in progress, the
killed worker started again once the group has dropped it (its session expired), support
2 → 1, monitoring 3 → 2 → 1 (graceful leaves). Each step waits until the group is Stable with
the members it should have. The deployment is the harness's one (`crashes`'s app
ids): it resumes where the earlier scenarios left it.

Checks, within deadlines after the load stops: every input partition of both groups committed
to its end; every household's row in the monitoring table (its changelog, the state the
workers hand each other) equal, in state and hash chain, to the row one worker folding the
same log in order makes (`one_worker_rows`: the worker's own `read_input` and `apply_record`);
no pool instance over capacity and every copy of a recommendation identical (`crashes`); no
assessment id with two different contents. The quick form shortens the consumer session (faust's
`BROKER_SESSION_TIMEOUT`, 10 s instead of 60 s) so that the dead worker is dropped sooner; the
full form keeps faust's default.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError

from services.contract.inputs import MONITORING_INPUTS, SUPPORT_INPUTS
from services.contract.topics import CADRES
from services.monitoring.adapters.policy_files import policies_in
from services.monitoring.adapters.table_codec import load_row
from services.monitoring.domain.fold import NotApplicable
from services.monitoring.domain.row import Row
from services.monitoring.entrypoints.app import changelog_topics, ticks_topic
from services.monitoring.service import Position, Refusal, apply_record, read_input
from services.platform.kafka import clients as kafka_clients
from services.platform.kafka.admin import ensure_topics
from services.support.entrypoints.app import pool_commands_topic
from services.tools.faults.crashes import MONITORING_APP, SUPPORT_APP, check_support, settle
from services.tools.faults.load import Load, check_assessments
from services.tools.faults.observe import CODEC, read_topics, wait_committed
from services.tools.faults.processes import Worker, monitoring_worker, support_worker
from services.tools.faults.stack import LAYOUT, PrivateStack
from services.tools.faults.verdict import Result, ScenarioFailed, wait_for
from services.tools.simulation.parameters import SimulationParameters

QUICK_SESSION_SECONDS = "10"  # faust's BROKER_SESSION_TIMEOUT in the quick form (default 60)
MONITORING_TOPICS = [t.name for t in MONITORING_INPUTS]
REBALANCING = ("PreparingRebalance", "CompletingRebalance")


async def group_state(bootstrap: str, group: str) -> tuple[str, int]:
    """The group's state (Stable, PreparingRebalance, ...) and its number of members;
    ("Unknown", 0) while the broker cannot tell."""
    admin = kafka_clients.admin(bootstrap, client_id="faults")
    try:
        await admin.start()
        (described,) = await admin.describe_consumer_groups([group])
    except KafkaError:
        return "Unknown", 0
    finally:
        await admin.close()
    _, _, state, _, _, members, *_ = described.groups[0]
    return str(state), len(members)


async def stable_with(
    bootstrap: str, group: str, members: int, seconds: float, workers: Iterable[Worker]
) -> None:
    """Until `group` is Stable with `members` members (a join or leave has settled)."""

    async def settled() -> bool:
        return await group_state(bootstrap, group) == ("Stable", members)

    await wait_for(settled, seconds, f"{group} stable with {members} members", 0.5, workers)


async def kill_during_rebalance(
    bootstrap: str, group: str, victim: Worker, seconds: float, workers: list[Worker]
) -> str:
    """Kill -9 `victim` as soon as `group` is seen rebalancing; the state it was killed in.

    If the rebalance has already settled when first looked at (a quick one), the victim is
    killed anyway and the state says so: the check that follows is the same.
    """
    deadline = time.monotonic() + seconds
    while True:
        state, _ = await group_state(bootstrap, group)
        if state in REBALANCING or time.monotonic() > deadline:
            victim.kill9()
            return state
        for worker in workers:
            if not worker.running:
                raise ScenarioFailed(
                    f"{worker.name} exited; log: {worker.log_path}, ending:\n{worker.log_tail()}"
                )


def one_worker_rows(records: Iterable[Any], now: datetime) -> dict[str, Row]:
    """The rows one monitoring worker (event clock, shipped policies) makes of `records`,
    applied in the order given (each partition's in offset order): the worker's own steps,
    refused records skipped as it dead-letters them."""
    policies = policies_in(None)
    rows: dict[str, Row] = {}
    for r in records:
        read = read_input(CODEC, r.topic, r.key, r.value)
        if isinstance(read, Refusal):
            continue
        household = read.event.household_id
        position = Position(r.topic, r.partition, r.offset)
        try:
            outcome = apply_record(
                rows.get(household), read.event, position, bytes(r.value), policies, now,
                None, True,
            )  # fmt: skip
        except (NotApplicable, LookupError):
            continue
        rows[household] = outcome.row
    return rows


def table_rows(records: Iterable[Any]) -> dict[str, Row]:
    """The households table as its changelog leaves it: the last value of each key."""
    raw: dict[bytes, bytes | None] = {}
    for r in records:
        raw[r.key] = r.value
    return {k.decode(): load_row(v) for k, v in raw.items() if v is not None}


async def check_state(result: Result, bootstrap: str, app_id: str) -> None:
    """Every household's row (state, hash chain) equals the one-worker row of the same log."""
    inputs = await read_topics(bootstrap, MONITORING_TOPICS)
    want = one_worker_rows(inputs, datetime.now(UTC))
    have = table_rows(await read_topics(bootstrap, changelog_topics(app_id)[:1]))
    differing = sorted(
        h
        for h in want.keys() | have.keys()
        if h not in want
        or h not in have
        or (want[h].state, want[h].chain) != (have[h].state, have[h].chain)
    )
    result.counts["households_compared"] = len(want)
    result.counts["households_differing"] = len(differing)
    if differing:
        examples = []
        for h in differing[:3]:
            w, g = want.get(h), have.get(h)
            examples.append(
                f"{h}: one worker {w.state.version if w else None} events, "
                f"the table {g.state.version if g else None}"
            )
        result.failures.append(
            f"{len(differing)} households differ from the one-worker state: " + "; ".join(examples)
        )


async def run(stack: PrivateStack, quick: bool, seed: int) -> Result:
    result = Result("scale-out")
    started = time.monotonic()
    rng = random.Random(seed)
    await ensure_topics(stack.bootstrap, LAYOUT)
    join = 180.0  # a join or leave settles within this (a dead member: one session more)
    session = {"BROKER_SESSION_TIMEOUT": QUICK_SESSION_SECONDS} if quick else {}

    def monitoring(i: int) -> Worker:
        home = str(stack.run_dir / f"home-monitoring-{i}")
        worker, _ = monitoring_worker(
            stack, MONITORING_APP, name=f"monitoring-{i}", SHOUWANG_HOME=home, **session
        )
        return worker

    def support(i: int) -> Worker:
        home = str(stack.run_dir / f"home-support-{i}")
        return support_worker(stack, SUPPORT_APP, f"support-{i}", SHOUWANG_HOME=home, **session)

    m1, m2, m3 = (monitoring(i) for i in (1, 2, 3))
    s1, s2 = support(1), support(2)
    workers = [m1, m2, m3, s1, s2]
    load = Load(
        stack,
        SimulationParameters(seed=seed % 10_000 + 1, scale=0.01 if quick else 0.04),
        rate=15.0 if quick else 25.0,  # about a minute (quick): most steps fall within it
    )
    steps: list[str] = []

    def step(what: str) -> None:
        steps.append(f"{what}{'' if not load.done else ' (after the load)'}")

    killed: set[str] = set()  # killed on purpose and not started again (yet)

    def running() -> list[Worker]:
        """The workers meant to be up now: one of them exiting fails the scenario."""
        return [w for w in workers if w.process is not None and w.name not in killed]

    bootstrap = stack.bootstrap
    try:
        m1.start()
        s1.start()
        load.start()
        await stable_with(bootstrap, MONITORING_APP, 1, join, running())
        m2.start()
        await stable_with(bootstrap, MONITORING_APP, 2, join, running())
        step("monitoring 1→2")
        await stable_with(bootstrap, SUPPORT_APP, 1, join, running())
        s2.start()
        await stable_with(bootstrap, SUPPORT_APP, 2, join, running())
        step("support 1→2")
        victim = rng.choice([m1, m2])  # a member the join's rebalance waits for
        m3.start()
        state = await kill_during_rebalance(bootstrap, MONITORING_APP, victim, join, running())
        killed.add(victim.name)
        step(f"monitoring 2→3, {victim.name} killed -9 ({state})")
        # The group drops the dead member only when its session expires.
        await stable_with(bootstrap, MONITORING_APP, 2, join, running())
        victim.start()
        killed.discard(victim.name)
        await stable_with(bootstrap, MONITORING_APP, 3, join, running())
        step(f"{victim.name} restarted after its session expired")
        s2.stop()
        await stable_with(bootstrap, SUPPORT_APP, 1, join, running())
        step("support 2→1")
        m3.stop()
        await stable_with(bootstrap, MONITORING_APP, 2, join, running())
        step("monitoring 3→2")
        m1.stop()
        await stable_with(bootstrap, MONITORING_APP, 1, join, running())
        step("monitoring 2→1")
        await load.finish()
        result.counts["load"] = f"{len(load.sink.acknowledged)} events at {load.rate:.0f}/s"
        result.counts["steps"] = "; ".join(steps)
        loaded = time.monotonic()
        await settle(stack, running(), 240 if quick else 600)
        support_inputs = [
            *(t.name for t in SUPPORT_INPUTS),
            CADRES.name,
            pool_commands_topic(SUPPORT_APP),
        ]
        monitoring_inputs = [*MONITORING_TOPICS, ticks_topic(MONITORING_APP)]

        groups = {MONITORING_APP: monitoring_inputs, SUPPORT_APP: support_inputs}
        await wait_committed(bootstrap, groups, 240 if quick else 600, running())
        result.counts["committed_to_end_seconds"] = round(time.monotonic() - loaded, 1)
        await check_state(result, bootstrap, MONITORING_APP)
        await check_support(result, stack)
        await check_assessments(result, bootstrap)
    except AssertionError as exc:
        result.failures.append(str(exc))
        result.counts["steps"] = "; ".join(steps)
    finally:
        load.wind_down(workers)
        result.seconds = time.monotonic() - started
    return result
