"""A few known records of a partition, read by seeking from one to the next: one household's
history among a county's, without reading its partitions end to end.

The read model knows where each of a household's records sits (`household_records`, written by
the projector with its position, so it knows them up to that position); `records_at` fetches
exactly those, then the partition's tail past the projector's position, keeping the records of
the household's key there. The answer is what reading the whole partition and keeping the key
would give, at the cost of one fetch per record (or per cluster of records) instead of one per
partition's length.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Mapping

from aiokafka import TopicPartition

from services.platform.kafka import clients as kafka_clients
from services.platform.kafka.log import LogRecord, log_record

# Kafka returns at least one whole record batch whatever this says, so a wanted record always
# arrives; more only reads neighbours the next seek would skip anyway.
FETCH_BYTES = 64 * 1024


class _Wanted:
    """What is wanted of one partition: listed offsets, and from `tail` on (if any) the key's."""

    def __init__(self, offsets: Iterable[int], tail: int | None, begin: int, end: int):
        self.offsets = sorted({o for o in offsets if begin <= o < end})
        self.listed = frozenset(self.offsets)
        self.tail = None if tail is None else max(tail, begin)
        self.end = end

    def after(self, offset: int) -> int | None:
        """The first wanted offset past `offset`, or None when nothing more is wanted."""
        i = bisect.bisect_right(self.offsets, offset)
        candidates = [self.offsets[i]] if i < len(self.offsets) else []
        if self.tail is not None and max(self.tail, offset + 1) < self.end:
            candidates.append(max(self.tail, offset + 1))
        return min(candidates, default=None)

    def keeps(self, offset: int, key: bytes | None, wanted_key: bytes | None) -> bool:
        if offset in self.listed:
            return True
        return self.tail is not None and offset >= self.tail and key == wanted_key


async def records_at(
    bootstrap: str,
    offsets: Mapping[tuple[str, int], Iterable[int]],
    tails: Mapping[tuple[str, int], int] | None = None,
    key: bytes | None = None,
    timeout_seconds: float = 30.0,
) -> list[LogRecord]:
    """The records at `offsets` of each (topic, partition), and those with `key` from
    `tails[tp]` to the partition's end (as it was when the read began), in (topic, partition,
    offset) order. Offsets no longer in the log (retention) are skipped. Raises TimeoutError
    past `timeout_seconds`."""
    tails = tails or {}
    wanted_tps = sorted(set(offsets) | set(tails))
    if not wanted_tps:
        return []
    topics = sorted({t for t, _ in wanted_tps})
    # Subscribed (without a group: nothing is committed) so start() fetches these topics'
    # metadata; the partitions are then assigned by hand, as KafkaLog does.
    consumer = kafka_clients.consumer(
        *topics,
        bootstrap=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=FETCH_BYTES,
    )
    deadline = time.monotonic() + timeout_seconds
    await kafka_clients.start(consumer, bootstrap)
    found: list[LogRecord] = []
    try:
        known = {t: consumer.partitions_for_topic(t) or set() for t in topics}
        tps = [TopicPartition(t, p) for t, p in wanted_tps if p in known[t]]
        if not tps:
            return []  # still subscribed: stopping a consumer unsubscribed and unassigned hangs
        consumer.unsubscribe()
        consumer.assign(tps)
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        plan = {
            tp: _Wanted(
                offsets.get((tp.topic, tp.partition), ()),
                tails.get((tp.topic, tp.partition)),
                begins[tp],
                ends[tp],
            )
            for tp in tps
        }
        active = set()
        for tp, wanted in plan.items():
            first = wanted.after(-1)
            if first is not None:
                consumer.seek(tp, first)
                active.add(tp)
        consumer.pause(*(tp for tp in tps if tp not in active))
        while active:
            if time.monotonic() > deadline:
                raise TimeoutError(f"records not read within {timeout_seconds:g} s")
            fetched = await consumer.getmany(*active, timeout_ms=500, max_records=2000)
            for tp, messages in fetched.items():
                wanted = plan[tp]
                found += [log_record(m) for m in messages if wanted.keeps(m.offset, m.key, key)]
            for tp in list(active):
                position = await consumer.position(tp)
                following = plan[tp].after(position - 1)
                if following is None:
                    active.discard(tp)
                    consumer.pause(tp)
                elif following > position:
                    consumer.seek(tp, following)  # skip what lies between
    finally:
        await consumer.stop()
    found.sort(key=lambda r: (r.topic, r.partition, r.offset))
    return found
