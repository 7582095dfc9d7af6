"""One contract, two sinks: the in-memory RecordSink the unit tests use and the real KafkaSink.

What the visits API, the imports and the operator-actions log rely on: an acknowledged send says
where the record landed; one key's records land in order on one partition; `send_many` answers
each record in order; a sink whose broker is gone raises or returns BrokerUnavailable, never
hangs, and says it is not ready.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from services.contract.topics import Topic, TopicLayout
from services.platform.kafka.admin import ensure_topics
from services.platform.kafka.producer import BrokerUnavailable, Delivery, InMemorySink, KafkaSink
from services.platform.localstack.ports import LOOPBACK, free_ports

pytestmark = pytest.mark.integration


async def _fresh_topic(bootstrap: str) -> str:
    name = f"sink-contract-{uuid.uuid4().hex[:8]}"
    topic = Topic(name, "shouwang.events.VisitRecorded", "household_id", "input", "sink test")
    await ensure_topics(bootstrap, TopicLayout(), topics=(topic,))
    return name


@pytest.fixture(params=["memory", "kafka"])
async def sink_and_topic(request, kafka_bootstrap) -> AsyncIterator[tuple[object, str]]:
    if request.param == "memory":
        yield InMemorySink(), "household.visits"
        return
    sink = KafkaSink(kafka_bootstrap, timeout=30.0, client_id="sink-contract")
    try:
        yield sink, await _fresh_topic(kafka_bootstrap)
    finally:
        await sink.close()


@pytest.fixture(params=["memory", "kafka"])
async def dead_sink(request) -> AsyncIterator[object]:
    if request.param == "memory":
        sink = InMemorySink()
        sink.down = True
        yield sink
        return
    (port,) = free_ports(1)  # nothing listens there
    sink = KafkaSink(f"{LOOPBACK}:{port}", timeout=2.0, client_id="sink-contract-dead")
    try:
        yield sink
    finally:
        await sink.close()


async def test_a_send_says_where_the_record_landed_and_one_key_stays_in_order(sink_and_topic):
    sink, topic = sink_and_topic
    assert await sink.ready()
    deliveries = [await sink.send(topic, b"h-1", f"v{i}".encode()) for i in range(3)]
    assert all(isinstance(d, Delivery) and d.topic == topic for d in deliveries)
    assert len({d.partition for d in deliveries}) == 1
    first = deliveries[0].offset
    assert [d.offset for d in deliveries] == [first, first + 1, first + 2]


async def test_send_many_answers_every_record_in_order(sink_and_topic):
    sink, topic = sink_and_topic
    records = [(topic, f"h-{i % 2}".encode(), f"v{i}".encode()) for i in range(6)]
    results = await sink.send_many(records)
    assert len(results) == len(records)
    assert all(isinstance(r, Delivery) and r.topic == topic for r in results)
    for key in (b"h-0", b"h-1"):
        mine = [r for (_, k, _), r in zip(records, results, strict=True) if k == key]
        assert len({r.partition for r in mine}) == 1
        assert [r.offset for r in mine] == sorted(r.offset for r in mine)
        assert len({r.offset for r in mine}) == len(mine)


async def test_a_sink_without_its_broker_refuses_every_record_and_is_not_ready(dead_sink):
    assert not await dead_sink.ready()
    with pytest.raises(BrokerUnavailable):
        await dead_sink.send("household.visits", b"h-1", b"v")
    results = await dead_sink.send_many([("household.visits", b"h-1", b"v")] * 3)
    assert len(results) == 3
    assert all(isinstance(r, BrokerUnavailable) for r in results)
