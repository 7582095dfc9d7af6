"""The projector's committed group offsets (a hint for lag tools; the database holds the real
positions) are committed beside its loop, yet reach the end of what it applied, while it runs
and when it stops, and never run ahead of the database."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from services.readmodel.metrics import ProjectorMetrics
from services.readmodel.projector import Projector, ProjectorConfig
from services.tools.demo.catch_up import projector_offsets
from tests.integration.readmodel.test_projector import fresh_database, produce  # noqa: F401

pytestmark = pytest.mark.integration


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def ends(bootstrap: str, topics: tuple[str, ...]) -> dict[TopicPartition, int]:
    # Subscribed (without a group) so that its metadata covers the topics.
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        assert tps, "no partitions known for the projector's topics"
        return {tp: end for tp, end in (await consumer.end_offsets(tps)).items() if end > 0}
    finally:
        await consumer.stop()


async def until(condition, seconds: float, what: str, running: asyncio.Task) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        if running.done():
            running.result()  # raises what stopped the projector
            raise AssertionError(f"the projector stopped before {what}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_committed_offsets_follow_what_was_applied(
    kafka_bootstrap: str,
    fresh_database: str,  # noqa: F811
) -> None:
    with contextlib.suppress(TopicMismatch):
        await ensure_topics(kafka_bootstrap, TopicLayout())
    group = f"test-commits-{uuid.uuid4().hex[:8]}"
    config = ProjectorConfig(kafka_bootstrap, fresh_database, group_id=group, batch_size=50)
    projector = Projector(config, Codec.default(), ProjectorMetrics(CollectorRegistry()))
    await produce(kafka_bootstrap, f"commits-{uuid.uuid4().hex[:8]}", 40)
    running = asyncio.create_task(projector.run())
    try:
        for round_ in range(2):
            end = await ends(kafka_bootstrap, config.topics)

            async def caught_up(end=end) -> bool:
                applied = await projector_offsets(fresh_database)
                return all(applied.get(tp, 0) >= offset for tp, offset in end.items())

            async def hinted(end=end) -> bool:
                hint = await committed(kafka_bootstrap, group)
                return all(hint.get(tp, 0) >= offset for tp, offset in end.items())

            await until(caught_up, 180, f"round {round_} in the database", running)
            await until(hinted, 60, f"round {round_} committed to the group", running)
            applied = await projector_offsets(fresh_database)
            hint = await committed(kafka_bootstrap, group)
            assert all(offset <= applied.get(tp, 0) for tp, offset in hint.items())
            if round_ == 0:
                await produce(kafka_bootstrap, f"commits-{uuid.uuid4().hex[:8]}", 15)
        # The last batch before stopping is committed on the way out.
        await produce(kafka_bootstrap, f"commits-{uuid.uuid4().hex[:8]}", 5)
        end = await ends(kafka_bootstrap, config.topics)

        async def last_applied() -> bool:
            applied = await projector_offsets(fresh_database)
            return all(applied.get(tp, 0) >= offset for tp, offset in end.items())

        await until(last_applied, 180, "the last records in the database", running)
    finally:
        projector.stop()
        await asyncio.wait_for(running, 60)
    hint = await committed(kafka_bootstrap, group)
    assert all(hint.get(tp, 0) >= offset for tp, offset in end.items())
    applied = await projector_offsets(fresh_database)
    assert all(offset <= applied.get(tp, 0) for tp, offset in hint.items())
