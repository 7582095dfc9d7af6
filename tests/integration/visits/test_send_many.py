"""`KafkaSink.send_many` against the real broker: every record gets its own outcome, what it
calls acknowledged is in the log exactly where it says, and a record the broker cannot take
does not hide the others' acknowledgements."""

from __future__ import annotations

import datetime as dt

import pytest

from services.contract.codec import Codec
from services.contract.inputs import BY_SLUG
from services.platform.kafka.producer import BrokerUnavailable, Delivery, KafkaSink
from services.visits.domain.records import Origin, prepare
from tests.integration.visits.conftest import prepare_topics, read_record
from tests.visits_samples import sample

pytestmark = pytest.mark.integration

KIND = BY_SLUG["hardships"]


def frames(codec: Codec, count: int) -> list[tuple[str, bytes, bytes]]:
    now = dt.datetime.now(dt.UTC)
    out = []
    for i in range(count):
        body = sample("hardships", household_id=f"H-SEND-{i % 7}", occurred_at=now.isoformat())
        prepared = prepare(
            codec, KIND, body, Origin("op-1", "OPERATOR"), now, dt.timedelta(minutes=5)
        )
        assert prepared.ok, prepared.problems
        value = codec.encode(KIND.event_type, prepared.record)
        out.append((KIND.topic.name, body["household_id"].encode(), value))
    return out


async def test_every_acknowledged_record_is_in_the_log_where_it_says(
    kafka_bootstrap: str,
) -> None:
    await prepare_topics(kafka_bootstrap)
    codec = Codec.default()
    records = frames(codec, 40)
    # Over the producer's request size limit: refused by the client, alone.
    records.insert(13, (KIND.topic.name, b"H-SEND-0", b"\x00" * (2 * 1024 * 1024)))
    sink = KafkaSink(kafka_bootstrap, timeout=60.0)
    try:
        results = await sink.send_many(records)
    finally:
        await sink.close()

    assert len(results) == len(records)
    assert isinstance(results[13], BrokerUnavailable)
    assert "MessageSizeTooLarge" in str(results[13])
    delivered = [(r, d) for r, d in zip(records, results, strict=True) if r is not records[13]]
    assert all(isinstance(d, Delivery) for _, d in delivered)
    for (topic, key, value), delivery in delivered:
        assert delivery.topic == topic
        got_key, decoded = await read_record(
            kafka_bootstrap, codec, topic, delivery.partition, delivery.offset
        )
        assert got_key == key
        assert decoded.record == codec.decode(value).record
    # One key, one partition, and the order it was given in.
    by_key: dict[bytes, list[Delivery]] = {}
    for (_, key, _), delivery in delivered:
        by_key.setdefault(key, []).append(delivery)
    for deliveries in by_key.values():
        assert len({d.partition for d in deliveries}) == 1
        offsets = [d.offset for d in deliveries]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)


async def test_unreachable_broker_fails_every_record_by_the_deadline(local_kafka_factory) -> None:
    kafka = local_kafka_factory()  # never started: nothing listens on its port
    sink = KafkaSink(kafka.bootstrap, timeout=1.0)
    try:
        results = await sink.send_many(frames(Codec.default(), 3))
    finally:
        await sink.close()
    assert len(results) == 3
    assert all(isinstance(r, BrokerUnavailable) for r in results)
