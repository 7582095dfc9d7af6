"""Writing framed records to Kafka: an idempotent, acks=all aiokafka producer behind a port.

`send` returns only after the broker acknowledged the record (all in-sync replicas have it);
anything else raises BrokerUnavailable, and the API answers 503. The producer is started
lazily and restarted after a failed start, so the service can start while Kafka is down and
recovers by itself when it comes back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.kafka import clients as kafka_clients

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge a record in time, or cannot be reached."""


@dataclass(frozen=True)
class Delivery:
    """Where an acknowledged record landed."""

    topic: str
    partition: int
    offset: int


class RecordSink(Protocol):
    """Port: durable, acknowledged writes of framed records to topics."""

    async def send(self, topic: str, key: bytes, value: bytes) -> Delivery:
        """Write one record and wait for the acknowledgement; BrokerUnavailable otherwise."""

    async def ready(self) -> bool:
        """Whether the broker answers now."""

    async def close(self) -> None:
        """Flush what is in flight and release connections."""


class InMemorySink:
    """A RecordSink appending to a list, for unit tests; `down` makes every send fail."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes]] = []
        self.down = False

    async def send(self, topic: str, key: bytes, value: bytes) -> Delivery:
        if self.down:
            raise BrokerUnavailable("in-memory sink is down")
        offset = sum(1 for t, _, _ in self.records if t == topic)
        self.records.append((topic, key, value))
        return Delivery(topic, 0, offset)

    async def ready(self) -> bool:
        return not self.down

    async def close(self) -> None:
        return None


class KafkaSink:
    """A RecordSink on aiokafka: idempotent producer, acks=all, bounded waits.

    `timeout` bounds each send (start-up included) so a request never hangs on a dead broker;
    a send that times out may still land later, which is harmless: clients retry with the same
    event_id and consumers ignore duplicates.
    """

    def __init__(
        self,
        bootstrap: str,
        timeout: float = 10.0,
        client_id: str = "shouwang-visits",
        linger_ms: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.client_id = client_id
        self.linger_ms = linger_ms
        self.clock = clock
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._starting:
            if self._producer is None:
                timeout_ms = max(1000, int(self.timeout * 1000))
                producer = kafka_clients.producer(
                    self.bootstrap,
                    client_id=self.client_id,
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=self.linger_ms,
                    request_timeout_ms=timeout_ms,
                    retry_backoff_ms=100,
                    metadata_max_age_ms=60_000,
                )
                try:
                    await kafka_clients.start(producer, self.bootstrap)
                except BaseException:
                    await _quietly_stop(producer)
                    raise
                self._producer = producer
        return self._producer

    async def send(self, topic: str, key: bytes, value: bytes) -> Delivery:
        try:
            async with asyncio.timeout(self.timeout):
                producer = await self._started()
                metadata = await producer.send_and_wait(topic, value=value, key=key)
        except TimeoutError as exc:
            raise BrokerUnavailable(f"no acknowledgement within {self.timeout:g} s") from exc
        except (KafkaError, OSError) as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return Delivery(metadata.topic, metadata.partition, metadata.offset)

    async def ready(self) -> bool:
        try:
            async with asyncio.timeout(min(self.timeout, 5.0)):
                producer = await self._started()
                await producer.client.fetch_all_metadata()
                return bool(producer.client.cluster.brokers())
        except (TimeoutError, KafkaError, OSError) as exc:
            log.debug("broker not ready: %s", exc)
            return False

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _quietly_stop(producer)


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    try:
        await producer.stop()
    except Exception as exc:  # closing after a failure: the first error is the one to report
        log.debug("producer stop failed: %s", exc)
