"""A worker restores its tables from their changelogs byte for byte, through the real broker.

Rows and summaries of 2,000 households (random bytes, some keys written again, some deleted
with a tombstone) are produced to the two changelog topics of a fresh app id, as faust writes
them; a worker (`recovery_dump.py`, the monitoring app as `shouwang monitoring` builds it)
recovers and writes out every key and value of both tables. With the batch recovery
(`faust_recovery`) and with faust's own, memory and RocksDB stores, the tables must equal what
was written, and the tracked offsets must be every partition's last.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2

from bench.state import create_changelogs
from services.contract.topics import TopicLayout
from services.monitoring.entrypoints.app import INPUT_TOPICS, TABLES, changelog_topics
from services.platform.kafka.admin import ensure_topics

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
DUMP = Path(__file__).with_name("recovery_dump.py")
HOUSEHOLDS = 2000


async def write_changelogs(bootstrap: str, app_id: str, partitions: int) -> dict:
    """Rows and summaries as faust writes them (raw bytes, murmur2 partitions); returns what
    each table must hold: the last value per key, deleted keys absent."""
    rng = random.Random(7)
    want: dict[str, dict[bytes, bytes]] = {table: {} for table in TABLES}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        keys = [f"DJ9{i:09d}".encode() for i in range(HOUSEHOLDS)]
        writes = [(k, rng.randbytes(rng.randint(1, 4000))) for k in keys]
        writes += [(rng.choice(keys), rng.randbytes(rng.randint(1, 400))) for _ in range(500)]
        writes += [(k, None) for k in rng.sample(keys, 20)]  # tombstones
        writes += [(keys[0], b"back after a tombstone")]
        for table, topic in zip(TABLES, changelog_topics(app_id), strict=True):
            for key, value in writes:
                partition = (murmur2(key) & 0x7FFFFFFF) % partitions
                await producer.send(topic, value, key=key, partition=partition)
                if value is None:
                    want[table].pop(key, None)
                else:
                    want[table][key] = value
        await producer.flush()
    finally:
        await producer.stop()
    return want


async def commit_inputs_at_end(bootstrap: str, group: str) -> None:
    """The worker starts at the inputs' end: it recovers and processes nothing."""
    topics = [t.name for t in INPUT_TOPICS]
    reader = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None)
    await reader.start()
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in reader.partitions_for_topic(t) or ()
        ]
        ends = await reader.end_offsets(partitions)
    finally:
        await reader.stop()
    # a manual assignment commits as a stand-alone client, never a member of the group
    committer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await committer.start()
    try:
        committer.assign(partitions)
        await committer.commit(ends)
    finally:
        await committer.stop()


def recovered(bootstrap: str, app_id: str, store: str, tmp: Path, stock: bool) -> dict:
    out = tmp / f"{store}-{'stock' if stock else 'batch'}.json"
    command = [sys.executable, str(DUMP), bootstrap, app_id, str(out), store]
    log = tmp / f"{out.stem}.log"
    with open(log, "wb") as f:
        done = subprocess.run(
            [*command, *(["--stock"] if stock else [])],
            cwd=ROOT,
            stdout=f,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, log.read_text(errors="replace")[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
async def test_recovered_tables_hold_every_key_as_written(kafka_bootstrap, tmp_path, store):
    layout = TopicLayout()
    partitions = layout.household_partitions
    await ensure_topics(kafka_bootstrap, layout)
    dumps, wants = {}, []
    # one app id each (the same records): a dump's worker exits without leaving its group
    for stock in (False, True):
        app_id = f"monitoring-recovery-{uuid.uuid4().hex[:8]}"
        await create_changelogs(kafka_bootstrap, app_id, partitions)
        wants.append(await write_changelogs(kafka_bootstrap, app_id, partitions))
        await commit_inputs_at_end(kafka_bootstrap, app_id)
        dumps[stock] = await asyncio.to_thread(
            recovered, kafka_bootstrap, app_id, store, tmp_path, stock
        )
    want = wants[0]
    assert wants[1] == want
    expected = {t: {k.hex(): v.hex() for k, v in rows.items()} for t, rows in want.items()}
    batch, stock = dumps[False], dumps[True]
    for table in TABLES:
        assert len(batch["tables"][table]) == len(expected[table])
        assert batch["tables"][table] == expected[table], table
        assert stock["tables"][table] == expected[table], table

    def by_partition(offsets: dict) -> dict:  # the topic names differ by app id
        return {t.split("-monitoring-", 1)[1]: o for t, o in offsets.items()}

    assert by_partition(batch["offsets"]) == by_partition(stock["offsets"])
    assert len(batch["offsets"]) == len(TABLES) * partitions
