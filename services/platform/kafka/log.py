"""Log records as the audit reads them, from Kafka (aiokafka, no consumer group) or an archive.

A `LogRecord` keeps what an auditor needs to re-check a record: its original position, its
timestamp and its raw key and value bytes (the frame monitoring hashed into its chain).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2

from services.platform.kafka import clients as kafka_clients


@dataclass(frozen=True, slots=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int  # milliseconds since the epoch, as the broker stored it
    key: bytes | None
    value: bytes | None
    timestamp_type: int = 0  # 0 CreateTime, 1 LogAppendTime
    headers: tuple[tuple[str, bytes | None], ...] = ()


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the default (murmur2) partitioner gives `key`: where a household lives."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class Share:
    """One of `count` readers' part of co-partitioned topics: the partitions p with
    p % count == index of every topic, so each household's records are all in one share."""

    index: int
    count: int

    def holds(self, partition: int) -> bool:
        return partition % self.count == self.index


class NotCoPartitioned(ValueError):
    """Topics read in shares have different partition counts: a household's records could be
    in two shares."""


def check_co_partitioned(counts: dict[str, int]) -> None:
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{topic} {n}" for topic, n in sorted(counts.items()))
        raise NotCoPartitioned(
            f"the topics' partition counts differ ({listed}): a household's records may be on "
            "different partition numbers, so the log cannot be split between processes"
        )


@dataclass(frozen=True, slots=True)
class Range:
    """Which part of the log to read: start offsets or a start time, and an end time."""

    start: datetime | None = None
    start_offsets: dict[tuple[str, int], int] | None = None  # (topic, partition) -> offset
    end: datetime | None = None  # records with a timestamp at or after it are not read
    only_partitions: dict[str, set[int]] | None = None  # topic -> partitions (one household)
    share: Share | None = None  # one process's part of a log read by several


class KafkaLog:
    """Reads topics from their start (or a range) up to the end offsets seen when it starts.

    No group id and no commits: reading changes nothing on the broker, so an interrupted read
    can simply be run again. Records of aborted transactions are not read (read_committed).
    """

    def __init__(self, bootstrap: str, topics: Sequence[str], span: Range = Range()):
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self.span = span
        self.total: int | None = None  # records between start and end, known after start

    async def batches(self) -> AsyncIterator[list[LogRecord]]:
        # Subscribing (no group: nothing is committed) makes start() fetch these topics'
        # metadata; the partitions are then assigned by hand.
        consumer = kafka_clients.consumer(
            *self.topics,
            bootstrap=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=16 * 1024 * 1024,
        )
        await kafka_clients.start(consumer, self.bootstrap)
        try:
            partitions = []
            found = {topic: consumer.partitions_for_topic(topic) or set() for topic in self.topics}
            share = self.span.share
            if share is not None:
                check_co_partitioned({topic: len(ps) for topic, ps in found.items() if ps})
            for topic in self.topics:
                wanted = (self.span.only_partitions or {}).get(topic)
                partitions += [
                    TopicPartition(topic, p)
                    for p in sorted(found[topic])
                    if (wanted is None or p in wanted) and (share is None or share.holds(p))
                ]
            if not partitions:
                return  # still subscribed: stopping a consumer unsubscribed and unassigned hangs
            consumer.unsubscribe()
            consumer.assign(partitions)
            starts = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            if self.span.start is not None:
                starts = await self._offsets_at(consumer, partitions, self.span.start, starts)
            if self.span.start_offsets:
                for tp in partitions:
                    given = self.span.start_offsets.get((tp.topic, tp.partition))
                    if given is not None:
                        starts[tp] = max(starts[tp], given)
            if self.span.end is not None:
                ends = await self._offsets_at(consumer, partitions, self.span.end, ends)
            pending = {tp for tp in partitions if starts[tp] < ends[tp]}
            self.total = sum(max(0, ends[tp] - starts[tp]) for tp in partitions)
            for tp in partitions:
                consumer.seek(tp, starts[tp])
            if pending:
                consumer.pause(*(tp for tp in partitions if tp not in pending))
            while pending:
                fetched = await consumer.getmany(*pending, timeout_ms=500, max_records=5000)
                batch = []
                for tp, messages in fetched.items():
                    for m in messages:
                        if m.offset < ends[tp]:
                            batch.append(log_record(m))
                for tp in list(pending):
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
                        consumer.pause(tp)
                if batch:
                    yield batch
        finally:
            await consumer.stop()

    @staticmethod
    async def _offsets_at(consumer, partitions, moment: datetime, default):
        found = await consumer.offsets_for_times(
            {tp: int(moment.timestamp() * 1000) for tp in partitions}
        )
        ends = await consumer.end_offsets(partitions)
        return {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in partitions}


def log_record(m) -> LogRecord:
    return LogRecord(
        m.topic,
        m.partition,
        m.offset,
        m.timestamp,
        m.key,
        m.value,
        m.timestamp_type,
        tuple((k, v) for k, v in (m.headers or ())),
    )


async def drain(
    batches: AsyncIterator[list[LogRecord]],
    consume: Callable[[LogRecord], None],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Feed every record to `consume`; returns how many were read."""
    count = 0
    async for batch in batches:
        for record in batch:
            consume(record)
        count += len(batch)
        if progress is not None:
            progress(count)
        await asyncio.sleep(0)
    return count


def by_key(records: Iterable[LogRecord], keys: set[bytes]) -> list[LogRecord]:
    return [r for r in records if r.key in keys]
