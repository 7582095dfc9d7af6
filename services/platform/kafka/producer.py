"""Writing framed records to Kafka: an idempotent, acks=all aiokafka producer behind a port.

`send` returns only after the broker acknowledged the record (all in-sync replicas have it);
anything else raises BrokerUnavailable, and the API answers 503. The producer is started
lazily and restarted after a failed start, so the service can start while Kafka is down and
recovers by itself when it comes back.

`send_many` hands a request's records to the producer together and waits for their
acknowledgements once: a batch request costs one pipelined round of producer batches instead
of a waiting task and a timeout per record, and each record still gets its own outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.platform.kafka import clients as kafka_clients

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """The broker did not acknowledge a record in time, or cannot be reached."""


@dataclass(frozen=True)
class Delivery:
    """Where an acknowledged record landed."""

    topic: str
    partition: int
    offset: int


OutgoingRecord = tuple[str, bytes, bytes]  # topic, key, value
SendResult = Delivery | BrokerUnavailable


class RecordSink(Protocol):
    """Port: durable, acknowledged writes of framed records to topics."""

    async def send(self, topic: str, key: bytes, value: bytes) -> Delivery:
        """Write one record and wait for the acknowledgement; BrokerUnavailable otherwise."""

    async def send_many(self, records: Sequence[OutgoingRecord]) -> list[SendResult]:
        """Write `records` and wait for their acknowledgements: for each, in order, where it
        landed or the BrokerUnavailable that stopped it. A failure of one never hides
        another's acknowledgement."""

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

    async def send_many(self, records: Sequence[OutgoingRecord]) -> list[SendResult]:
        results: list[SendResult] = []
        for topic, key, value in records:
            try:
                results.append(await self.send(topic, key, value))
            except BrokerUnavailable as exc:
                results.append(exc)
        return results

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

    async def send_many(self, records: Sequence[OutgoingRecord]) -> list[SendResult]:
        """One deadline for the whole request: every record is handed to the producer (which
        batches them per partition and pipelines the batches), then the acknowledgements are
        awaited together. A record not acknowledged by the deadline is BrokerUnavailable; it
        may still land later, which is harmless (see the class)."""
        results: list[SendResult | None] = [None] * len(records)
        pending: dict[asyncio.Future, int] = {}
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            async with asyncio.timeout_at(deadline):
                try:
                    producer = await self._started()
                except (KafkaError, OSError) as exc:
                    return [_unavailable(exc) for _ in records]
                for index, (topic, key, value) in enumerate(records):
                    try:
                        # send() only waits when the producer's buffer is full; the future
                        # resolves when the record's batch is acknowledged.
                        pending[await producer.send(topic, value=value, key=key)] = index
                    except (KafkaError, OSError) as exc:  # e.g. a record over the size limit
                        results[index] = _unavailable(exc)
        except TimeoutError:
            pass  # the records not handed over yet are reported below
        if pending:
            done, _ = await asyncio.wait(
                pending, timeout=max(0.0, deadline - asyncio.get_running_loop().time())
            )
            for future in pending:
                if future not in done:
                    # Nobody waits for it any more; retrieve its outcome so a late failure
                    # is not logged as "never retrieved".
                    future.add_done_callback(_retrieved)
            for future in done:
                index = pending[future]
                if future.cancelled():
                    results[index] = BrokerUnavailable("the send was cancelled")
                    continue
                exc = future.exception()
                if exc is None:
                    metadata = future.result()
                    results[index] = Delivery(metadata.topic, metadata.partition, metadata.offset)
                else:
                    results[index] = _unavailable(exc)
        late = BrokerUnavailable(f"no acknowledgement within {self.timeout:g} s")
        return [late if result is None else result for result in results]

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


def _unavailable(exc: BaseException) -> BrokerUnavailable:
    if isinstance(exc, KafkaError | OSError):
        failure = BrokerUnavailable(f"{type(exc).__name__}: {exc}")
        failure.__cause__ = exc
        return failure
    raise exc  # not a broker failure: a bug, let the API's last line of defence log it


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("late send failure: %s", future.exception())


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    try:
        await producer.stop()
    except Exception as exc:  # closing after a failure: the first error is the one to report
        log.debug("producer stop failed: %s", exc)
