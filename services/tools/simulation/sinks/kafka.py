"""Straight to Kafka (`--direct`): Avro frames on each type's input topic, keyed as the catalogue
says, through an idempotent producer that waits for every in-sync replica. Registry records'
personal data is sealed first, with keys from the PostgreSQL key store (or a sealer given)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.contract.codec import Codec
from services.contract.topics import INPUT_TOPICS, TopicLayout
from services.platform.kafka import clients as kafka_clients
from services.platform.kafka.admin import ensure_topics
from services.platform.personal.keys import KeysUnavailable
from services.platform.personal.sealer import PersonalSealer, postgres_sealer
from services.tools.simulation.sinks.base import EventSink, SinkError
from services.tools.simulation.stream import Event


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
        sealer: PersonalSealer | None = None,
        keys_database_url: str | None = None,
        master_key: bytes | None = None,
    ):
        """`sealer`, or else the key store at `keys_database_url` (opened on start, with
        `master_key` or the environment's), seals personal data; one of them is required."""
        if sealer is None and keys_database_url is None:
            raise SinkError(
                "the Kafka sink seals personal data: give it a sealer or the key store's "
                "database URL (DATABASE_URL)"
            )
        self.sealer = sealer
        self._keys_database_url = keys_database_url
        self._master_key = master_key
        self._resources = contextlib.AsyncExitStack()
        self.bootstrap = bootstrap
        self.layout = layout
        self.codec = codec or Codec.default()
        self.create_topics = create_topics
        self.produced: Counter[str] = Counter()  # topic -> records acknowledged
        self._options = {"linger_ms": linger_ms, "max_batch_size": max_batch_bytes}
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self.sealer is None and self._keys_database_url is not None:
            self.sealer = await self._resources.enter_async_context(
                postgres_sealer(self._keys_database_url, self._master_key)
            )
        try:
            await self._start_producer()
        except BaseException:
            await self._resources.aclose()
            raise

    async def _start_producer(self) -> None:
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
        if self._producer is None or self.sealer is None:
            raise RuntimeError("KafkaSink used before start()")
        pending = []
        try:
            for event in events:
                topic = event.topic
                record = await self.sealer.seal(event.event_type, event.record)
                frame = self.codec.encode(event.event_type, record)
                pending.append(await self._producer.send(topic.name, frame, key=event.key.encode()))
            acknowledged = await asyncio.gather(*pending)
        except KafkaError as exc:
            raise SinkError(f"producing to {self.bootstrap} failed: {exc}") from exc
        except KeysUnavailable as exc:
            raise SinkError(f"cannot seal personal data: {exc}") from exc
        self.produced.update(metadata.topic for metadata in acknowledged)

    async def close(self) -> None:
        try:
            if self._producer is not None:
                producer, self._producer = self._producer, None
                await producer.stop()
        finally:
            await self._resources.aclose()
