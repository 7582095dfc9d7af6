"""B2: the monitoring worker (`shouwang monitoring`, a subprocess, memory tables, event clock)
from process start until its consumer group has committed the end offsets of every input
topic, against a raw aiokafka consumer reading and decoding the same topics.

"Caught up" is seen through the group's committed offsets, so the figure includes faust's
start-up (topic checks, group join, table recovery) and up to one commit interval.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from bench.data import Dataset
from bench.replay import raw_read
from bench.report import Figure
from services.contract.codec import Codec
from services.contract.inputs import MONITORING_INPUTS
from services.contract.topics import RISK
from services.platform.localstack.ports import free_ports
from services.platform.localstack.processes import stop_child
from services.tools.workers import monitoring_env, start_monitoring_worker

TOPICS = [t.name for t in MONITORING_INPUTS]
TARGET_RATIO = 0.5
TIMEOUT_SECONDS = 900


async def _end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


def _start(
    bootstrap: str, home: Path, app_id: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen:
    (port,) = free_ports(1)
    env = monitoring_env(bootstrap, home, app_id, port, **(extra_env or {}))
    return start_monitoring_worker(env, home / "worker.log")


async def _caught_up(bootstrap: str, group: str, ends, *processes: subprocess.Popen) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        wanted = {tp: end for tp, end in ends.items() if end > 0}
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a monitoring worker exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not catch up in {TIMEOUT_SECONDS} s")
            try:
                committed = await admin.list_consumer_group_offsets(group)
            except KafkaError:  # the group (or the offsets topic) does not exist yet
                committed = {}
            if all(
                (committed.get(tp) is not None and committed[tp].offset >= end)
                for tp, end in wanted.items()
            ):
                return
            await asyncio.sleep(0.25)
    finally:
        await admin.close()


async def measure(stack, data: Dataset, codec: Codec) -> list[Figure]:
    ends = await _end_offsets(stack.bootstrap, TOPICS)
    total = sum(ends.values())
    risk_before = sum((await _end_offsets(stack.bootstrap, [RISK.name])).values())
    started = time.perf_counter()
    raw_count = await raw_read(stack.bootstrap, TOPICS, decode=codec)
    raw_s = time.perf_counter() - started
    if raw_count != total:
        raise RuntimeError(f"raw read {raw_count} records, end offsets say {total}")

    home = stack.root / f"monitoring-{uuid.uuid4().hex[:8]}"
    home.mkdir(parents=True)
    app_id = f"bench-monitoring-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    process = _start(stack.bootstrap, home, app_id)
    try:
        await _caught_up(stack.bootstrap, app_id, ends, process)
        worker_s = time.perf_counter() - started
    finally:
        stop_child(process)
    emitted = sum((await _end_offsets(stack.bootstrap, [RISK.name])).values()) - risk_before
    worker, raw = total / worker_s, raw_count / raw_s
    return [
        Figure(
            "B2",
            "monitoring worker, start → caught up (1 worker)",
            worker,
            "records/s",
            "raw aiokafka consume + decode",
            raw,
            f">= {TARGET_RATIO:.0%} of raw",
            worker >= TARGET_RATIO * raw,
            total,
            worker_s,
            f"{emitted} assessments emitted; includes faust start-up and commit interval",
        )
    ]
