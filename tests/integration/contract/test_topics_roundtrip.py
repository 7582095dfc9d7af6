"""Against the real broker: the catalogue's topics are created as declared and carry every type."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.codec import Codec
from services.contract.topics import CATALOGUE, TopicLayout
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from tests.avro_strategies import normalised, records

pytestmark = pytest.mark.integration
CODEC = Codec.default()
# The default layout: other tests share the session broker and create the same topics.
LAYOUT = TopicLayout()


@pytest.fixture(scope="module")
async def topics(kafka_bootstrap):
    await ensure_topics(kafka_bootstrap, LAYOUT)
    return kafka_bootstrap


async def test_topics_are_created_with_the_catalogue_settings(topics):
    admin = AIOKafkaAdminClient(bootstrap_servers=topics)
    await admin.start()
    try:
        described = {
            d["topic"]: d for d in await admin.describe_topics([t.name for t in CATALOGUE])
        }
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t.name) for t in CATALOGUE]
        )
    finally:
        await admin.close()
    for topic in CATALOGUE:
        assert len(described[topic.name]["partitions"]) == LAYOUT.partitions(topic), topic.name
    found = {}
    for response in configs:
        for resource in response.resources:
            name, entries = resource[3], resource[4]
            found[name] = {entry[0]: entry[1] for entry in entries}
    for topic in CATALOGUE:
        assert found[topic.name]["retention.ms"] == "-1", topic.name
        assert found[topic.name]["cleanup.policy"] == "delete", topic.name


async def test_creating_again_is_a_no_op_and_drift_is_refused(topics):
    assert await ensure_topics(topics, LAYOUT) == []
    wants = LAYOUT.household_partitions + 1
    with pytest.raises(
        TopicMismatch, match=f"household.visits has {wants - 1} partitions, layout wants {wants}"
    ):
        await ensure_topics(topics, TopicLayout(household_partitions=wants))


async def test_every_event_type_goes_through_its_topic_and_back_equal(topics):
    sent: dict[str, list[tuple[bytes, dict]]] = {}
    generated = _examples()
    producer = AIOKafkaProducer(bootstrap_servers=topics, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for topic in CATALOGUE:
            for record in generated[topic.event_type]:
                key_value = record[topic.key]
                key = str(key_value).encode()
                await producer.send_and_wait(
                    topic.name, CODEC.encode(topic.event_type, record), key=key
                )
                sent.setdefault(topic.name, []).append((key, record))
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=topics,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        for topic in CATALOGUE:
            partitions = [TopicPartition(topic.name, p) for p in range(LAYOUT.partitions(topic))]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            received = []
            async with asyncio.timeout(30):
                while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                    batch = await consumer.getmany(timeout_ms=1000)
                    for messages in batch.values():
                        received.extend(messages)
            # Other tests may share the session broker; keep what this test sent.
            ours = {r.key: CODEC.decode(r.value, expected=topic.event_type) for r in received}
            for key, record in sent[topic.name]:
                decoded = ours[key]
                assert normalised(decoded.record) == normalised(record), topic.name
    finally:
        await consumer.stop()


def _examples() -> dict[str, list[dict]]:
    """Three generated records per event type, each with a unique key so they can be found."""
    examples: dict[str, list[dict]] = {}

    @settings(max_examples=3, database=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def draw(data):
        for topic in CATALOGUE:
            record = data.draw(records(CODEC.registry.current[topic.event_type].parsed))
            record[topic.key] = f"it-{uuid.uuid4()}"
            examples.setdefault(topic.event_type, []).append(record)

    draw()
    return examples
