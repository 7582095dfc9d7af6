"""The redelivering consumer: a re-fetched record below faust's read offset is delivered.

The drop itself happens in faust's fetch loop (`_drain_messages`): a record is delivered
when faust's read offset for its partition is None or not above the record's offset. These
tests drive `RedeliveringConsumer.getmany` over a stand-in for faust's own `getmany` and
apply that same rule, so they fail if the consumer stops clearing a stale read offset.
The fault harness (`tests/integration/faults`) covers the real worker after kill -9.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

import faust
from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

from services.kafka import faust_redelivery
from services.kafka.faust_redelivery import RedeliveringConsumer

TP = TopicPartition("household.registry", 3)


def consumer_over(messages, read_offset):
    consumer = object.__new__(RedeliveringConsumer)
    consumer._read_offset = defaultdict(lambda: None)
    if read_offset is not None:
        consumer._read_offset[TP] = read_offset
    consumer.redelivered = 0

    async def parent_getmany(self, timeout):  # noqa: ASYNC109
        for offset in messages:
            yield TP, SimpleNamespace(offset=offset)

    return consumer, parent_getmany


def drain(consumer) -> list[int]:
    """faust's delivery rule, applied to what the consumer yields."""

    async def run():
        delivered = []
        async for tp, message in consumer.getmany(timeout=1.0):
            read = consumer._read_offset[tp]
            if read is None or message.offset >= read:
                delivered.append(message.offset)
                consumer._read_offset[tp] = message.offset
        return delivered

    return asyncio.run(run())


def test_records_fetched_again_after_a_seek_back_are_delivered(monkeypatch):
    # faust had read up to 72; a seek to the committed offset 47 fetches 47.. again
    consumer, parent = consumer_over(range(47, 80), read_offset=72)
    monkeypatch.setattr(faust_aiokafka.Consumer, "getmany", parent)
    assert drain(consumer) == list(range(47, 80))
    assert consumer.redelivered == 1  # cleared once, then the offsets follow in order


def test_records_in_order_pass_untouched(monkeypatch):
    consumer, parent = consumer_over(range(10, 20), read_offset=9)
    monkeypatch.setattr(faust_aiokafka.Consumer, "getmany", parent)
    assert drain(consumer) == list(range(10, 20))
    assert consumer.redelivered == 0


def test_a_partition_never_read_is_left_to_faust(monkeypatch):
    consumer, parent = consumer_over([0, 1, 2], read_offset=None)
    monkeypatch.setattr(faust_aiokafka.Consumer, "getmany", parent)
    assert drain(consumer) == [0, 1, 2]
    assert TP not in dict(consumer._read_offset) or consumer._read_offset[TP] == 2


def test_install_gives_the_app_the_redelivering_consumer():
    app = faust.App("redelivery-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    faust_redelivery.install(app)
    assert isinstance(app.transport, faust_redelivery.RedeliveringTransport)
    assert app.transport.Consumer is RedeliveringConsumer
