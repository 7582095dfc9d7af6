"""B4: `shouwang replay` (KafkaLog → pure Replay → one assessment per household), in one process
and in one per core (`--processes`), against a raw aiokafka read of the same topics, each from
the beginning to the end offsets, same broker."""

from __future__ import annotations

import argparse
import io
import os
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.data import Dataset
from bench.report import Figure
from services.audit.progress import Progress
from services.audit.replay_run import replay_log
from services.contract.codec import Codec
from services.contract.inputs import MONITORING_EXPECTED as EXPECTED
from services.contract.inputs import MONITORING_INPUTS
from services.platform.config import Settings

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


async def replay(bootstrap: str, processes: int) -> tuple[int, int]:
    """`shouwang replay` without --verify, as the command runs it (`replay_log`): records read
    and households rebuilt."""
    options = argparse.Namespace(start=None, to=None, township=None, household_prefix=None,
                                 archive=None, verify=False, no_readmodel=True, policy=None,
                                 processes=processes)  # fmt: skip
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap})
    part = await replay_log(options, settings, processes, Progress(io.StringIO(), "replay"))
    return part.records, len(part.households)


async def measure(stack, data: Dataset, codec: Codec) -> list[Figure]:
    await raw_read(stack.bootstrap, TOPICS)  # warm: page cache, metadata, connections
    started = time.perf_counter()
    raw_count = await raw_read(stack.bootstrap, TOPICS)
    raw_s = time.perf_counter() - started
    started = time.perf_counter()
    decoded_count = await raw_read(stack.bootstrap, TOPICS, decode=codec)
    decoded_s = time.perf_counter() - started
    raw = raw_count / raw_s
    figures = []
    # One process, then one per core: replay is per household, so shares of the partitions
    # scale with cores (the broker shares them here).
    for processes in sorted({1, max(2, os.cpu_count() or 1)}):
        started = time.perf_counter()
        replayed, households = await replay(stack.bootstrap, processes)
        replay_s = time.perf_counter() - started
        if replayed != raw_count:
            raise RuntimeError(f"replay read {replayed} records, the raw read {raw_count}")
        figures.append(
            Figure(
                "B4",
                "replay: read + fold + assess each household"
                + ("" if processes == 1 else f", {processes} processes (--processes)"),
                replayed / replay_s,
                "events/s",
                "raw aiokafka read",
                raw,
                f">= {TARGET_RATIO:.0%} of raw",
                replayed / replay_s >= TARGET_RATIO * raw,
                replayed,
                replay_s,
                f"{households} households",
            )
        )
    figures.append(
        Figure(
            "B4",
            "raw aiokafka read + decode (reference)",
            decoded_count / decoded_s,
            "events/s",
            "raw aiokafka read",
            raw,
            count=decoded_count,
            seconds=decoded_s,
        )
    )
    return figures
