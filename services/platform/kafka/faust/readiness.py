"""Readiness of a faust worker, for `/readyz` (platform/health.py): partitions assigned, tables
recovered, and consumer lag under the budget.

faust has no public readiness: what it knows is read from its state here, in one place, like
the other reads of its internals in this package (faust-streaming 0.15):
- `app.rebalancing_count` counts rebalances begun; 0 means the group has assigned nothing yet;
  `app.rebalancing` is true from a rebalance's start until its recovery is done;
- `app.tables.recovery.completed` is set once the first recovery (table changelogs read back,
  stream partitions sought) has finished; `in_recovery` while a later one runs;
- the lag is the end offsets the broker reports now for the assigned stream partitions
  (`consumer.highwaters`), less the consumer's read offset (`_read_offset`, the last record
  handed to a stream), else its committed offset, else the log's first offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.platform.health import Check, consumer_lag, lag_reason


def checks(app: Any, max_lag: int) -> Mapping[str, Check]:
    """The worker's readiness checks, by name."""

    async def assigned() -> str | None:
        if app.rebalancing_count == 0:
            return "no partitions assigned yet (the consumer group has not balanced)"
        if app.rebalancing:
            return "rebalancing"
        return None

    async def recovered() -> str | None:
        recovery = app.tables.recovery
        if not recovery.completed.is_set():
            return "tables not recovered yet"
        if recovery.in_recovery:
            return "recovering tables after a rebalance"
        return None

    async def lag() -> str | None:
        if app.rebalancing_count == 0 or not app.tables.recovery.completed.is_set():
            return "not consuming yet"
        consumer = app.consumer
        changelogs = set(app.tables.changelog_topics)
        streams = [tp for tp in consumer.assignment() if tp.topic not in changelogs]
        if not streams:
            return None  # more workers than partitions: this one is idle, and ready
        ends = await consumer.highwaters(*streams)
        positions: dict[Any, int] = {}
        first = None
        for tp in streams:
            read = consumer._read_offset.get(tp)
            committed = consumer._committed_offset.get(tp)
            if read is not None:
                positions[tp] = read + 1
            elif committed is not None:
                positions[tp] = committed
            else:
                first = first if first is not None else await consumer.earliest_offsets(*streams)
                positions[tp] = first.get(tp, 0)
        return lag_reason(consumer_lag(ends, positions), max_lag)

    return {"partitions": assigned, "tables": recovered, "lag": lag}
