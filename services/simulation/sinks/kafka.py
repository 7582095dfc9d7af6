"""Straight to Kafka (`--direct`): Avro frames on each type's input topic, keyed as the catalogue
says, through an idempotent producer that waits for every in-sync replica."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.contract.codec import Codec
from services.contract.topics import INPUT_TOPICS, TopicLayout
from services.kafka import clients as kafka_clients
from services.kafka.admin import ensure_topics
from services.simulation.sinks.base import EventSink, SinkError
from services.simulation.stream import Event


class KafkaSink(EventSink):
    """Produces each batch and returns once the broker acknowledged all of it (acks=all)."""

    def __init__(
        self,
        bootstrap: str,
        layout: TopicLayout,
        codec: Codec | None = None,
        *,
        create_topics: bool = True,
        linger_ms: int = 20,
        max_batch_bytes: int = 512 * 1024,
    ):
        self.bootstrap = bootstrap
        self.layout = layout
        self.codec = codec or Codec.default()
        self.create_topics = create_topics
        self.produced: Counter[str] = Counter()  # topic -> records acknowledged
        self._options = {"linger_ms": linger_ms, "max_batch_size": max_batch_bytes}
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self.create_topics:
            await ensure_topics(self.bootstrap, self.layout, INPUT_TOPICS)
        producer = kafka_clients.producer(
            self.bootstrap,
            client_id="shouwang-simulate",
            enable_idempotence=True,
            acks="all",
            **self._options,
        )
        try:
            await kafka_clients.start(producer, self.bootstrap)
        except KafkaError as exc:
            await producer.stop()
            raise SinkError(f"cannot reach Kafka at {self.bootstrap}: {exc}") from exc
        self._producer = producer

    async def write(self, events: Sequence[Event]) -> None:
        if self._producer is None:
            raise RuntimeError("KafkaSink used before start()")
        pending = []
        try:
            for event in events:
                topic = event.topic
                frame = self.codec.encode(event.event_type, event.record)
                pending.append(await self._producer.send(topic.name, frame, key=event.key.encode()))
            acknowledged = await asyncio.gather(*pending)
        except KafkaError as exc:
            raise SinkError(f"producing to {self.bootstrap} failed: {exc}") from exc
        self.produced.update(metadata.topic for metadata in acknowledged)

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()
