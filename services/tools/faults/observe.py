"""What the scenarios observe to check their claims: the log's committed records and end offsets,
a consumer group's progress, a monitoring worker's view of a household."""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.contract.codec import Codec
from services.platform.kafka import clients as kafka_clients
from services.tools.faults.verdict import ScenarioFailed
from services.tools.workers import view_headers

CODEC = Codec.default()


async def read_topics(bootstrap: str, topics: Iterable[str]) -> list[Any]:
    """Every committed record of `topics`, from the beginning to the current end."""
    topics = list(topics)
    consumer = kafka_clients.consumer(
        bootstrap=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = await all_partitions(consumer, topics)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)  # last stable offset under read_committed
        records: list[Any] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for items in batch.values():
                records.extend(items)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        if remaining:
            raise ScenarioFailed(f"could not read {sorted(map(str, remaining))} to the end")
        return records
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def all_partitions(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics`, asking the broker when the consumer's metadata lacks one."""
    return [
        TopicPartition(t, p)
        for t in topics
        for p in sorted(consumer.partitions_for_topic(t) or await _partitions(consumer, t))
    ]


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> int:
    """The sum of the topics' end offsets: it stops moving when nobody writes to them."""
    consumer = kafka_clients.consumer(bootstrap=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await all_partitions(consumer, topics)
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def group_caught_up(bootstrap: str, group: str, topics: Iterable[str]) -> bool:
    """Whether `group` has committed every record of `topics` (False while the broker cannot
    tell: a coordinator still loading or moving)."""
    from aiokafka.errors import KafkaError

    admin = kafka_clients.admin(bootstrap, client_id="faults")
    consumer = kafka_clients.consumer(bootstrap=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = await all_partitions(consumer, topics)
        ends = await consumer.end_offsets(partitions)
    except KafkaError as exc:
        if not exc.retriable:
            raise
        return False
    finally:
        await consumer.stop()
        await admin.close()
    return all(
        ends[tp] == 0 or (tp in committed and committed[tp].offset >= ends[tp]) for tp in partitions
    )


def duplicates(ids: Iterable[str]) -> int:
    """How many ids occur more than once (extra copies counted)."""
    return sum(n - 1 for n in Counter(ids).values() if n > 1)


# The operator token the household view is read with: one per harness run, issued by the harness
# into its private stack's token table once it has started (harness.run_scenarios).
VIEW = {"secret": ""}


def household_events(port: int, household_id: str) -> int | None:
    """Events in the monitoring worker's state for a household (its view), None if unknown."""
    import json

    url = f"http://127.0.0.1:{port}/v1/households/{household_id}"
    request = urllib.request.Request(url, headers=view_headers(VIEW["secret"]))
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(json.load(answer)["events"])
    except Exception:
        return None
