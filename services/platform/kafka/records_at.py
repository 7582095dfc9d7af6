"""A few known records of a partition, read by seeking from one to the next: one household's
history among a county's, without reading its partitions end to end.

The read model knows where each of a household's records sits (`household_records`, written by
the projector with its position, so it knows them up to that position); `records_at` fetches
exactly those, then the partition's tail past the projector's position, keeping the records of
the household's key there. The answer is what reading the whole partition and keeping the key
would give, at the cost of one fetch per record (or per cluster of records) instead of one per
partition's length. A `RecordReader` keeps its consumer between reads: starting one (bootstrap,
version probe, metadata) costs 70–150 ms here, more than a household's fetches.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.platform.kafka import clients as kafka_clients
from services.platform.kafka.log import LogRecord, log_record

# Kafka returns at least one whole record batch whatever this says, so a wanted record always
# arrives; more only reads neighbours the next seek would skip anyway.
FETCH_BYTES = 64 * 1024
FETCH_WAIT_MS = 5


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
    """One read with a consumer of its own (`RecordReader.read` for what it returns)."""
    topics = sorted({t for t, _ in (*offsets, *(tails or {}))})
    reader = RecordReader(bootstrap, topics)
    try:
        return await reader.read(offsets, tails, key, timeout_seconds)
    finally:
        await reader.close()


class RecordReader:
    """Reads known records of `topics` (see the module's text), one read at a time, on one
    consumer kept between reads and made again after a failed one."""

    def __init__(self, bootstrap: str, topics: Iterable[str]):
        self.bootstrap = bootstrap
        self.topics = sorted(set(topics))
        self._consumer: AIOKafkaConsumer | None = None
        self._known: dict[str, set[int]] = {}
        self._lock = asyncio.Lock()

    async def read(
        self,
        offsets: Mapping[tuple[str, int], Iterable[int]],
        tails: Mapping[tuple[str, int], int] | None = None,
        key: bytes | None = None,
        timeout_seconds: float = 30.0,
    ) -> list[LogRecord]:
        """The records at `offsets` of each (topic, partition), and those with `key` from
        `tails[tp]` to the partition's end (as it was when the read began), in (topic,
        partition, offset) order. Offsets no longer in the log (retention) are skipped.
        Raises TimeoutError past `timeout_seconds`; partitions of other topics than the
        reader's, or that their topic does not have, are not read."""
        tails = tails or {}
        wanted = sorted(set(offsets) | set(tails))
        if not wanted:
            return []
        async with self._lock:
            consumer = await self._started()
            tps = [TopicPartition(t, p) for t, p in wanted if p in self._known.get(t, ())]
            if not tps:
                return []
            try:
                return await _read(consumer, tps, offsets, tails, key, timeout_seconds)
            except BaseException:
                await self._drop()  # a consumer in an unknown state is not read from again
                raise

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is not None:
            return self._consumer
        # Subscribed (without a group: nothing is committed) so start() fetches the topics'
        # metadata; each read then assigns its partitions by hand.
        consumer = kafka_clients.consumer(
            *self.topics,
            bootstrap=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=FETCH_BYTES,
            # A fetch the fetcher sends ahead for a partition read to its end waits this long at
            # the broker for data (500 ms by default), and the next seek's fetch waits behind it:
            # the reads here want an answer now, never new data.
            fetch_max_wait_ms=FETCH_WAIT_MS,
        )
        try:
            await kafka_clients.start(consumer, self.bootstrap)
        except BaseException:
            await consumer.stop()  # e.g. a topic that does not exist: nothing left open
            raise
        self._known = {t: consumer.partitions_for_topic(t) or set() for t in self.topics}
        self._consumer = consumer
        return consumer

    async def _drop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            # Stopping a consumer that is neither subscribed nor assigned hangs: it is always
            # one or the other here (subscribed until its first read assigns partitions).
            await consumer.stop()


async def _read(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    offsets: Mapping[tuple[str, int], Iterable[int]],
    tails: Mapping[tuple[str, int], int],
    key: bytes | None,
    timeout_seconds: float,
) -> list[LogRecord]:
    deadline = time.monotonic() + timeout_seconds
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
    # Every partition is placed at its first wanted offset right after the assignment, with no
    # await in between, and one done with is moved to its end, paused and drained: aiokafka's
    # fetcher otherwise fetches from a reset offset, or keeps a done partition's prefetched
    # records, which makes its next fetch to that broker wait 100 ms (its prefetch backoff).
    active = {tp: first for tp, wanted in plan.items() if (first := wanted.after(-1)) is not None}
    found: list[LogRecord] = []
    if consumer.subscription():
        consumer.unsubscribe()
    consumer.assign(tps)
    for tp in tps:
        if tp in active:
            consumer.seek(tp, active[tp])
        else:
            _done(consumer, tp, ends[tp])
    try:
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
                    del active[tp]
                    _done(consumer, tp, ends[tp])
                    await consumer.getmany(tp, timeout_ms=0)  # drop what was fetched ahead
                elif following > position:
                    consumer.seek(tp, following)  # skip what lies between
    finally:
        # Kept between reads, the consumer must not go on fetching what it was last given.
        consumer.pause(*consumer.assignment())
    found.sort(key=lambda r: (r.topic, r.partition, r.offset))
    return found


def _done(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> None:
    consumer.seek(tp, end)  # a fetch in flight for the old position is then discarded
    consumer.pause(tp)
