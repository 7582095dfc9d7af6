"""`records_at` against the real broker: the records asked for, and a key's records past a
position, exactly what reading the partitions whole and keeping them would give."""

from __future__ import annotations

import random
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.platform.kafka.log import KafkaLog, NotCoPartitioned, Range, Share
from services.platform.kafka.records_at import RecordReader, records_at

pytestmark = pytest.mark.integration


async def test_listed_offsets_and_a_keys_tail_are_what_a_whole_read_keeps(kafka_bootstrap):
    topic = f"records-at-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    rng = random.Random(7)
    keys = [f"H-{n}".encode() for n in range(15)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [
            producer.send(topic, f"v{n}".encode(), key=rng.choice(keys), partition=n % 2)
            for n in range(600)
        ]
        for future in sent:
            await future
    finally:
        await producer.stop()
    whole = [r async for batch in KafkaLog(kafka_bootstrap, [topic]).batches() for r in batch]
    key = keys[3]
    mine = [r for r in whole if r.key == key and r.partition == 1]
    assert len(mine) >= 10
    cut = mine[len(mine) // 2].offset  # the projector's position: listed below, tail from it
    listed = [r.offset for r in mine if r.offset < cut]
    found = await records_at(
        kafka_bootstrap,
        {(topic, 1): [*listed, 10_000_000]},  # one past the end: not in the log, skipped
        {(topic, 1): cut},
        key,
    )
    assert found == mine
    # listed offsets alone (no tail): exactly those, whoever's they are
    others = [r for r in whole if r.partition == 0][5:400:37]
    found = await records_at(kafka_bootstrap, {(topic, 0): [r.offset for r in others]})
    assert found == others
    # a tail from the start reads the partition whole for the key
    found = await records_at(kafka_bootstrap, {}, {(topic, 0): 0}, keys[0])
    assert found == [r for r in whole if r.partition == 0 and r.key == keys[0]]
    # one reader, read after read, gives each read's records (its consumer kept between them)
    reader = RecordReader(kafka_bootstrap, [topic])
    try:
        assert await reader.read({(topic, 1): listed}, {(topic, 1): cut}, key) == mine
        assert await reader.read({(topic, 0): [r.offset for r in others]}) == others
        assert await reader.read({(topic, 1): listed}, {(topic, 1): cut}, key) == mine
    finally:
        await reader.close()
    # nothing asked, or a partition the topic does not have: nothing read
    assert await records_at(kafka_bootstrap, {}) == []
    assert await records_at(kafka_bootstrap, {(topic, 9): [0]}) == []
    # (a whole read of no partition returned too: a consumer stopped after unsubscribing with
    # nothing assigned used to hang there)
    nowhere = Range(only_partitions={topic: {9}})
    assert [
        r async for batch in KafkaLog(kafka_bootstrap, [topic], nowhere).batches() for r in batch
    ] == []


async def test_shares_of_a_log_are_its_partitions_split_and_topics_split_unevenly_are_refused(
    kafka_bootstrap,
):
    name = uuid.uuid4().hex[:8]
    even, also_even, uneven = f"share-a-{name}", f"share-b-{name}", f"share-c-{name}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(even, 4, 1), NewTopic(also_even, 4, 1),
                                   NewTopic(uneven, 3, 1)])  # fmt: skip
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(80):
            for topic in (even, also_even, uneven):
                await producer.send(topic, b"v", key=f"H-{n}".encode())
        await producer.flush()
    finally:
        await producer.stop()

    async def read(topics, share=None):
        log = KafkaLog(kafka_bootstrap, topics, Range(share=share))
        return {(r.topic, r.partition, r.offset) async for b in log.batches() for r in b}

    whole = await read([even, also_even])
    shares = [await read([even, also_even], Share(i, 3)) for i in range(3)]
    assert set().union(*shares) == whole and sum(map(len, shares)) == len(whole) == 160
    assert {p for _, p, _ in shares[1]} == {1}  # partitions 1 of both topics; 4 would be too
    with pytest.raises(NotCoPartitioned, match=f"{uneven} 3"):
        await read([even, uneven], Share(0, 2))
