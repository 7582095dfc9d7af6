"""B4: `shouwang replay` (KafkaLog → pure Replay → one assessment per household) against a raw
aiokafka read of the same topics, both from the beginning to the end offsets, same broker."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.data import Dataset
from bench.report import Figure
from services.audit.replay import Replay
from services.contract.codec import Codec
from services.contract.inputs import MONITORING_EXPECTED as EXPECTED
from services.contract.inputs import MONITORING_INPUTS
from services.monitoring.adapters.policy_files import load_policies
from services.platform.kafka.log import KafkaLog

# As `shouwang replay` without --verify reads them (the emitted assessments only to verify).
TOPICS = [t.name for t in MONITORING_INPUTS]
TARGET_RATIO = 0.8


async def raw_read(bootstrap: str, topics: list[str], decode: Codec | None = None) -> int:
    """Every record of `topics` from the beginning to the end offsets seen at start."""
    consumer = AIOKafkaConsumer(
        *topics,  # subscribed so start() fetches their metadata; assigned by hand below
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.unsubscribe()
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        pending = {tp for tp in partitions if ends[tp] > 0}
        count = 0
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=500, max_records=5000)
            for tp, messages in fetched.items():
                count += len(messages)
                if decode is not None:
                    expected = EXPECTED.get(tp.topic)
                    for m in messages:
                        decode.decode(m.value, expected=expected)
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
        return count
    finally:
        await consumer.stop()


async def replay(bootstrap: str, codec: Codec) -> tuple[int, int]:
    policies = load_policies()
    fed = Replay(codec, policies, history=False)  # as replay_run without --verify
    async for batch in KafkaLog(bootstrap, TOPICS).batches():
        for record in batch:
            fed.feed(record)
    for household in fed.selected():
        fed.assess_latest(household)
    return fed.records, len(fed.households)


async def measure(stack, data: Dataset, codec: Codec) -> list[Figure]:
    await raw_read(stack.bootstrap, TOPICS)  # warm: page cache, metadata, connections
    started = time.perf_counter()
    raw_count = await raw_read(stack.bootstrap, TOPICS)
    raw_s = time.perf_counter() - started
    started = time.perf_counter()
    decoded_count = await raw_read(stack.bootstrap, TOPICS, decode=codec)
    decoded_s = time.perf_counter() - started
    started = time.perf_counter()
    replayed, households = await replay(stack.bootstrap, codec)
    replay_s = time.perf_counter() - started
    if replayed != raw_count:
        raise RuntimeError(f"replay read {replayed} records, the raw read {raw_count}")
    raw = raw_count / raw_s
    return [
        Figure(
            "B4",
            "replay: read + fold + assess each household",
            replayed / replay_s,
            "events/s",
            "raw aiokafka read",
            raw,
            f">= {TARGET_RATIO:.0%} of raw",
            replayed / replay_s >= TARGET_RATIO * raw,
            replayed,
            replay_s,
            f"{households} households",
        ),
        Figure(
            "B4",
            "raw aiokafka read + decode (reference)",
            decoded_count / decoded_s,
            "events/s",
            "raw aiokafka read",
            raw,
            count=decoded_count,
            seconds=decoded_s,
        ),
    ]
