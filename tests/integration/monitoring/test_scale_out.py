"""Two monitoring workers in one group commit every input partition to its end (issue 16).

The stall this guards against: a worker alone in the group reads its partitions to their end,
a second worker joins before the first commit, and the partitions assigned back to the first
worker were never committed (faust's seek back to committed offsets left a partition with no
committed offset at its end; see `services/platform/kafka/faust/redelivery.py`). The second
worker is started when the first one's consumer starts, so that the join rebalance most
likely falls in that window: faust's first commit comes two commit intervals (~5.6 s) after
its consumer starts, the first worker has read this small log ~2.5 s after it, and the second
takes ~2.5 s to start and join, plus up to one heartbeat (3 s) until the first notices.
Without the fix this test failed 2 runs in 3 here with 37 of 76 partitions never committed;
timing decides, so `tests/unit/kafka/test_faust_uncommitted_seek.py` pins the cause.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.contract.codec import Codec
from services.contract.inputs import MONITORING_INPUTS
from services.contract.topics import TopicLayout
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.ports import free_port
from services.platform.localstack.processes import stop_child
from services.platform.personal.keys import CachedKeys, InMemoryKeyStore
from services.platform.personal.sealer import PersonalSealer
from services.tools.simulation import SimulationParameters, generate
from services.tools.simulation.sinks.kafka import KafkaSink
from services.tools.workers import monitoring_env, start_monitoring_worker

pytestmark = pytest.mark.integration
TOPICS = [t.name for t in MONITORING_INPUTS]
SCALE = 0.01  # ~900 events: read in about a second, before the first worker's first commit
READY_SECONDS = 120.0
COMMITTED_SECONDS = 120.0  # one worker commits this log within ~10 s here


async def write_county(bootstrap: str) -> int:
    """The synthetic county at SCALE on the input topics, as `shouwang simulate --direct`."""
    # keys in memory: nobody opens this test's personal fields
    sealer = PersonalSealer(CachedKeys(InMemoryKeyStore()))
    sink = KafkaSink(bootstrap, TopicLayout(), Codec.default(), create_topics=False, sealer=sealer)
    await sink.start()
    try:
        await sink.write(list(generate(SimulationParameters(seed=2020, scale=SCALE))))
    finally:
        await sink.close()
    return sum(sink.produced.values())


async def end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(*TOPICS, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(t, p) for t in TOPICS for p in consumer.partitions_for_topic(t) or ()
        ]
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


def logs_of(workers: dict[Path, subprocess.Popen], lines: int = 30) -> str:
    out = []
    for log in workers:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {log.name} (last {len(tail)} lines)\n" + "\n".join(tail))
    return "\n".join(out)


def text_of(log: Path) -> str:
    return log.read_text(errors="replace")


def alive(workers: dict[Path, subprocess.Popen]) -> None:
    for log, worker in workers.items():
        if worker.poll() is not None:
            raise AssertionError(f"{log.name} exited with {worker.returncode}\n{logs_of(workers)}")


async def until_logged(log: Path, line: str, workers: dict[Path, subprocess.Popen]) -> None:
    """Until `line` is in the worker's `log`."""
    deadline = time.monotonic() + READY_SECONDS
    while line not in text_of(log):
        alive(workers)
        if time.monotonic() > deadline:
            raise AssertionError(f"{line!r} not logged in {READY_SECONDS} s\n{logs_of(workers)}")
        await asyncio.sleep(0.1)  # polling a condition, not waiting for time to pass


async def until_committed(
    admin: AIOKafkaAdminClient,
    group: str,
    ends: dict[TopicPartition, int],
    workers: dict[Path, subprocess.Popen],
) -> None:
    """Until `group` has committed every non-empty input partition at its end offset."""
    wanted = {tp: end for tp, end in ends.items() if end > 0}
    deadline = time.monotonic() + COMMITTED_SECONDS
    while True:
        alive(workers)
        try:
            committed = await admin.list_consumer_group_offsets(group)
        except KafkaError:  # the group (or the offsets topic) is not there yet
            committed = {}
        behind = {
            f"{tp.topic}[{tp.partition}]": (committed[tp].offset if tp in committed else None, end)
            for tp, end in sorted(wanted.items())
            if tp not in committed or committed[tp].offset < end
        }
        if not behind:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(behind)} of {len(wanted)} input partitions not committed to their end "
                f"in {COMMITTED_SECONDS} s (committed, end): {behind}\n{logs_of(workers)}"
            )
        await asyncio.sleep(0.25)  # polling a condition, not waiting for time to pass


async def test_two_workers_commit_every_input_partition_to_its_end(local_kafka_factory, tmp_path):
    bootstrap = local_kafka_factory().start(120)
    await ensure_topics(bootstrap, TopicLayout())
    assert await write_county(bootstrap) > 500
    ends = await end_offsets(bootstrap)
    app_id = f"scale-out-{uuid.uuid4().hex[:8]}"
    workers: dict[Path, subprocess.Popen] = {}

    def start(name: str) -> Path:
        home = tmp_path / name
        home.mkdir()
        log = home / "worker.log"
        # The lines waited for below are mode's and aiokafka's INFO, quiet by default.
        env = monitoring_env(
            bootstrap, home, app_id, free_port(), SHOUWANG_LOG_LEVEL="INFO,mode=INFO,aiokafka=INFO"
        )
        workers[log] = start_monitoring_worker(env, log)
        return log

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    started = time.monotonic()
    try:
        first = start("first")
        # mode's "[^--RedeliveringConsumer]: Starting...": the first worker's consumer starts
        await until_logged(first, "Consumer]: Starting", workers)
        start("second")  # joins once the first has read the log, before its first commit
        await until_committed(admin, app_id, ends, workers)
        seconds = time.monotonic() - started
        print(f"2 workers committed {sum(ends.values())} records to the end in {seconds:.1f} s")
    finally:
        await admin.close()
        for worker in workers.values():
            stop_child(worker)
    # both took part: the second was given input partitions at the join rebalance
    assert any(
        "Setting newly assigned partitions" in line and "topic='household." in line
        for line in (tmp_path / "second" / "worker.log").read_text(errors="replace").splitlines()
    ), logs_of(workers)
