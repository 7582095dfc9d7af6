"""Whether the services have processed everything in the log: the demo's wait condition.

Offsets alone cannot say it: topics written in transactions (the faust services' outputs) hold
commit markers, so a partition's end offset is past its last record. `LogReader` reads every
topic it is given (read_committed, no group) and keeps each partition's last *record* offset and
record count; a consumer has caught up on a partition when its committed offset (or, for the
projector, its stored position) is past that record.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from services.platform.kafka import clients as kafka_clients
from services.readmodel.projector import PROJECTION

log = logging.getLogger(__name__)


class LogReader:
    """Follows topics from the beginning; counts records and notes the last record offsets."""

    def __init__(self, bootstrap: str, topics: Iterable[str]):
        self.bootstrap = bootstrap
        self.topics = tuple(topics)
        self.last_record: dict[TopicPartition, int] = {}
        self.records: Counter[str] = Counter()
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        partitions = [
            TopicPartition(topic, partition)
            for topic, count in (await partition_counts(self.bootstrap, self.topics)).items()
            for partition in range(count)
        ]
        consumer = kafka_clients.consumer(
            bootstrap=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_poll_records=5000,
        )
        await consumer.start()
        self._consumer = consumer
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def read_to_end(self, seconds: float = 30.0) -> bool:
        """Read until every partition's position reaches its (last stable) end offset.

        Returns False when `seconds` passed first (records were still arriving).
        """
        consumer = self._require()
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            ends = await consumer.end_offsets(list(consumer.assignment()))
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind:
                return True
            if asyncio.get_running_loop().time() > deadline:
                return False
            batch = await consumer.getmany(*behind, timeout_ms=200)
            for tp, messages in batch.items():
                if messages:
                    self.last_record[tp] = messages[-1].offset
                    self.records[tp.topic] += len(messages)

    def behind(self, applied: Mapping[TopicPartition, int], topics: Iterable[str]) -> int:
        """Records of `topics` after `applied` (next offset to read, per partition)."""
        wanted = set(topics)
        return sum(
            1 + last - applied.get(tp, 0)
            for tp, last in self.last_record.items()
            if tp.topic in wanted and applied.get(tp, 0) <= last
        )

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("LogReader used before start()")
        return self._consumer


async def partition_counts(bootstrap: str, topics: Iterable[str]) -> dict[str, int]:
    """Each topic's partition count; raises RuntimeError for a topic the broker lacks."""
    admin = kafka_clients.admin(bootstrap, client_id="shouwang-demo")
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    missing = [d["topic"] for d in described if d["error_code"] or not d["partitions"]]
    if missing:
        raise RuntimeError(f"topics not found: {', '.join(missing)}")
    return {d["topic"]: len(d["partitions"]) for d in described}


async def topic_exists(bootstrap: str, topic: str) -> bool:
    admin = kafka_clients.admin(bootstrap, client_id="shouwang-demo")
    await admin.start()
    try:
        return topic in set(await admin.list_topics())
    finally:
        await admin.close()


async def group_offsets(bootstrap: str, group_id: str) -> dict[TopicPartition, int]:
    """The committed offsets (next record to read) of a consumer group; empty if none, or
    while the broker cannot tell yet (its group coordinator is still loading or moving: seen
    seconds after a fresh broker starts), which reads as "behind" and is asked again."""
    admin = kafka_clients.admin(bootstrap, client_id="shouwang-demo")
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group_id)
    except KafkaError as exc:
        if not exc.retriable:
            raise
        log.info("offsets of group %s not available yet: %r", group_id, exc)
        return {}
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def projector_offsets(database_url: str) -> dict[TopicPartition, int]:
    """The projector's stored positions as next-offset-to-read, like a group's commits."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT topic, partition, last_offset FROM projection_positions WHERE projection = $1",
            PROJECTION,
        )
    finally:
        await conn.close()
    return {TopicPartition(r["topic"], r["partition"]): r["last_offset"] + 1 for r in rows}


@dataclass(frozen=True)
class Lag:
    """Records each consumer still has to process, by consumer name."""

    by_consumer: dict[str, int]

    def of(self, name: str) -> int:
        return self.by_consumer.get(name, 0)

    def caught_up(self, names: Iterable[str]) -> bool:
        return all(self.of(name) == 0 for name in names)
