"""Against the real broker: `--direct` lands every simulated event on its topic, decodable,
keyed by the catalogue's key, in the numbers generated."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.cli import main
from services.contract.codec import Codec
from services.contract.errors import CorruptFrame
from services.contract.personal import PERSONAL_FIELDS, unseal
from services.contract.topics import CADRES, INPUT_TOPICS, VISITS, TopicLayout
from services.platform.personal.keys import CachedKeys, InMemoryKeyStore
from services.platform.personal.sealer import PersonalSealer
from services.tools.simulation import SimulationParameters, generate, simulate
from services.tools.simulation.sinks.kafka import KafkaSink

pytestmark = pytest.mark.integration
CODEC = Codec.default()


async def layout_of(bootstrap: str) -> TopicLayout:
    """The layout the session's broker already has (other tests may have created the topics),
    else the default; the sink refuses a layout that disagrees with existing topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t.name for t in (VISITS, CADRES) if t.name in existing]
        counts = (
            {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(wanted)}
            if wanted
            else {}
        )
    finally:
        await admin.close()
    default = TopicLayout()
    return TopicLayout(
        household_partitions=counts.get(VISITS.name, default.household_partitions),
        other_partitions=counts.get(CADRES.name, default.other_partitions),
    )


async def read_everything(bootstrap: str, wanted: set[str]) -> list[tuple[str, bytes, Any]]:
    """(topic, key, decoded record) of every record on the input topics whose event id is wanted."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found = []
    try:
        partitions = [
            TopicPartition(t.name, p)
            for t in INPUT_TOPICS
            for p in consumer.partitions_for_topic(t.name) or await _partitions(consumer, t.name)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        async with asyncio.timeout(60):
            while remaining:
                batches = await consumer.getmany(*remaining, timeout_ms=1000)
                for tp, messages in batches.items():
                    for message in messages:
                        try:
                            decoded = CODEC.decode(message.value)
                        except CorruptFrame:
                            continue  # other tests on the shared broker produce poison on purpose
                        if str(decoded.record["event_id"]) in wanted:
                            found.append((tp.topic, message.key, decoded))
                    if messages and messages[-1].offset + 1 >= ends[tp]:
                        remaining.discard(tp)
    finally:
        await consumer.stop()
    return found


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


def comparable(value: Any) -> Any:
    """Records as the wire gives them back: instants in milliseconds, UUIDs as text."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


async def test_direct_lands_every_event_on_its_topic_decodable_and_keyed(kafka_bootstrap):
    parameters = SimulationParameters(seed=424_242, scale=0.01)
    expected = list(generate(parameters))
    keys = InMemoryKeyStore()
    sealer = PersonalSealer(CachedKeys(keys))
    sink = KafkaSink(kafka_bootstrap, await layout_of(kafka_bootstrap), sealer=sealer)
    async with sink:
        summary = await simulate(parameters, sink)
    assert summary.events == len(expected)
    by_topic = Counter(e.topic.name for e in expected)
    assert sink.produced == by_topic

    wanted = {e.record["event_id"] for e in expected}
    found = await read_everything(kafka_bootstrap, wanted)
    assert Counter(topic for topic, _, _ in found) == by_topic
    originals = {e.record["event_id"]: e for e in expected}
    for topic, key, decoded in found:
        event = originals[str(decoded.record["event_id"])]
        assert topic == event.topic.name
        assert decoded.event_type == event.event_type
        assert key == event.key.encode()
        # Personal data comes back only sealed, and opens with the subject's key.
        sealed = decoded.record.pop("personal_sealed", None)
        if event.record.get("personal") is not None:
            spec = PERSONAL_FIELDS[event.event_type]
            subject = spec.subject_of(decoded.record)
            key = keys.keys[subject][0]
            event_id = str(decoded.record["event_id"])
            assert unseal(sealed, subject, event_id, key) == event.record["personal"]
            assert decoded.record["personal"] is None
            decoded.record["personal"] = event.record["personal"]
        # Fields added to the schema after the generator was written come back as defaults.
        added = {k: v for k, v in decoded.record.items() if k not in event.record}
        assert all(v in (None, [], "", False) for v in added.values()), added
        back = {k: v for k, v in decoded.record.items() if k in event.record}
        assert comparable(back) == comparable(event.record)
    # Order within a household is kept: a partition carries its records in stream order.
    position = {e.record["event_id"]: n for n, e in enumerate(expected)}
    per_key: dict[tuple[str, bytes], list[int]] = {}
    for topic, key, decoded in found:
        per_key.setdefault((topic, key), []).append(position[str(decoded.record["event_id"])])
    assert all(seq == sorted(seq) for seq in per_key.values())


async def test_the_cli_direct_flag_uses_kafka_bootstrap_servers(
    kafka_bootstrap, database_url, monkeypatch, capsys
):
    layout = await layout_of(kafka_bootstrap)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("DATABASE_URL", database_url)  # the personal-data key store
    monkeypatch.setenv("SHOUWANG_PARTITIONS", str(layout.household_partitions))
    monkeypatch.setenv("SHOUWANG_OTHER_PARTITIONS", str(layout.other_partitions))
    argv = ["simulate", "--seed", "515", "--scale", "0.01", "--days", "10", "--direct", "--quiet"]
    status = await asyncio.to_thread(main, argv)
    assert status == 0
    printed = capsys.readouterr().out
    expected = sum(1 for _ in generate(SimulationParameters(seed=515, scale=0.01, days=10)))
    assert f"wrote {expected} events" in printed
