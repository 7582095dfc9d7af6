"""Waiting for the services to settle: which consumer reads which topics, and the loop that
waits until monitoring, support and the projector have processed the whole log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from services.contract.topics import CATALOGUE, INPUT_TOPICS, RISK, SUPPORT_MEASURES
from services.support.entrypoints.app import pool_commands_topic
from services.tools.demo.catch_up import (
    Lag,
    LogReader,
    group_offsets,
    projector_offsets,
    topic_exists,
)
from services.tools.demo.errors import DemoError
from services.tools.demo.stack import Endpoints
from services.tools.demo.supervisor import Supervisor

MONITORING_GROUP = "shouwang-monitoring"
SUPPORT_GROUP = "shouwang-support"
PROJECTOR_GROUP = "shouwang-readmodel"
MONITORING_TOPICS = (
    *(t.name for t in INPUT_TOPICS if t.name != "cadre.registry"),
    SUPPORT_MEASURES.name,
)
# Support's second stage reads its own pool-command topic; its output waits on that too.
SUPPORT_POOL_TOPIC = pool_commands_topic(SUPPORT_GROUP)
SUPPORT_TOPICS = (
    "household.registry",
    RISK.name,
    "household.measures",
    "cadre.registry",
    SUPPORT_POOL_TOPIC,
)
PROJECTOR_TOPICS = (
    "household.registry",
    RISK.name,
    "household.visits",
    "household.measures",
    SUPPORT_MEASURES.name,
    "household.problems",
    "cadre.registry",
)


async def wait_caught_up(
    ends: Endpoints,
    supervisor: Supervisor,
    say: Callable[[str], None],
    *,
    settle_timeout: float,
    support_stall: float,
) -> tuple[Lag, dict[str, int], list[str]]:
    """Wait until monitoring, support and the projector have processed every record, and the
    log has stopped growing. A support worker that stops making progress for `support_stall`
    seconds is reported, not waited for forever; a service that dies, or monitoring or the
    projector not catching up within `settle_timeout` seconds, is an error."""
    # Support creates its pool topic when it starts; by now it has (or it has died).
    topics = [t.name for t in CATALOGUE]
    if await topic_exists(ends.bootstrap, SUPPORT_POOL_TOPIC):
        topics.append(SUPPORT_POOL_TOPIC)
    else:
        say(f"  note: {SUPPORT_POOL_TOPIC} does not exist; support's pool stage is not watched")
    reader = LogReader(ends.bootstrap, topics)
    await reader.start()
    deadline = time.monotonic() + settle_timeout
    warnings: list[str] = []
    support_best, support_since = None, time.monotonic()
    last_report = 0.0
    stable_rounds = 0
    try:
        while True:
            supervisor.check()
            at_end = await reader.read_to_end(seconds=10.0)
            lag = await _lag(reader, ends)
            now = time.monotonic()
            support_lag = lag.of("support")
            if support_best is None or support_lag < support_best:
                support_best, support_since = support_lag, now
            support_stalled = support_lag > 0 and now - support_since > support_stall
            required = ["monitoring", "projector"] + ([] if support_stalled else ["support"])
            if at_end and lag.caught_up(required):
                stable_rounds += 1
                if stable_rounds >= 2:  # nothing new arrived after everything was processed
                    if support_stalled:
                        warnings.append(
                            f"support made no progress for {support_stall:.0f} s with "
                            f"{support_lag:,} records unprocessed; its numbers are incomplete"
                        )
                    return lag, dict(reader.records), warnings
            else:
                stable_rounds = 0
            if now > deadline:
                raise DemoError(
                    f"the services had not caught up after {settle_timeout:.0f} s: "
                    f"records behind {lag.by_consumer}"
                )
            if now - last_report > 10.0:
                last_report = now
                say(f"  behind: {', '.join(f'{k} {v:,}' for k, v in lag.by_consumer.items())}")
            await asyncio.sleep(1.0)
    finally:
        await reader.stop()


async def _lag(reader: LogReader, ends: Endpoints) -> Lag:
    monitoring, support, projector = await asyncio.gather(
        group_offsets(ends.bootstrap, MONITORING_GROUP),
        group_offsets(ends.bootstrap, SUPPORT_GROUP),
        projector_offsets(ends.database_url),
    )
    return Lag(
        {
            "monitoring": reader.behind(monitoring, MONITORING_TOPICS),
            "support": reader.behind(support, SUPPORT_TOPICS),
            "projector": reader.behind(projector, PROJECTOR_TOPICS),
        }
    )
