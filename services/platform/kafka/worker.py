"""Every faust worker's skeleton: decode → apply → emit, an outbox, dead letters, one error policy.

A service's agent body is `await worker.consume(stream, handle)`: `handle(event)` is the
service's own step (decode the record, apply it to the table row, emit what it produced through
the `Outbox`); the skeleton owns what happens when that step fails.

Error policy (the same for every worker):

- A record that cannot be decoded or applied: `handle` raises `Rejected(kind, reason)` (or calls
  `Worker.dead_letter` and goes on). The record goes to `shouwang.deadletter` with its kind,
  reason, origin topic/partition/offset and original bytes, the service's dead-letter counter
  is incremented, and the stream goes on with the next record.
- A transient broker or database error (`TRANSIENT`): the record is retried with backoff
  (`RETRY_DELAYS`) and is never dead-lettered, because it is not the record's fault. If the
  error outlives the retries, `on_fatal` stops the worker without committing the record, so it
  is read again after the restart.
- Any other exception is a bug of ours, not of the record: `on_fatal` stops the worker at once
  without committing the record (faust would otherwise ack it and go on, losing it silently).
  The record is read again after the fix; it is neither dead-lettered nor skipped.

In a worker `on_fatal` is `exit_without_commit` (exit status 75); agent tests pass a recorder.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import faust
from aiokafka.errors import KafkaError
from asyncpg.exceptions import PostgresConnectionError
from faust.exceptions import FaustError
from prometheus_client import Counter

from services.contract.codec import Codec
from services.contract.rejection import (
    Rejected,
)
from services.contract.topics import DEAD_LETTERS
from services.platform.kafka.producer import BrokerUnavailable

log = logging.getLogger(__name__)

DEAD_LETTER = "shouwang.events.DeadLetter"
# Errors of the broker, faust or the database, not of the record.
TRANSIENT: tuple[type[BaseException], ...] = (
    KafkaError,
    FaustError,
    BrokerUnavailable,
    PostgresConnectionError,
    ConnectionError,
    TimeoutError,
)
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)


def exit_without_commit(exc: BaseException) -> None:
    """Stop at once: no offset or transaction of the current record is committed."""
    log.critical("giving up on an error; exiting so the record is read again: %r", exc)
    logging.shutdown()
    os._exit(75)


class Outbox(Protocol):
    """Port: where a worker's records go: the broker in a worker, a list in agent tests."""

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Send one record of raw bytes to `topic`."""


class TopicOutbox:
    """Records through faust topics: inside an agent under exactly-once, faust sends them in
    the transaction of the event being processed."""

    def __init__(self, app: faust.App):
        self.app = app
        self.topics: dict[str, Any] = {}

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        channel = self.topics.get(topic)
        if channel is None:
            channel = self.topics[topic] = self.app.topic(
                topic,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
            )
        await channel.send(key=key, value=value)


class ProducerOutbox:
    """Records straight through the app's producer, for at-least-once apps: a faust topic send
    under exactly-once needs the destination partition's transactional producer, which a
    worker re-keying to partitions another worker owns does not have."""

    def __init__(self, app: faust.App):
        self.app = app

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        producer = await self.app.maybe_start_producer()
        await producer.send(topic, key, value, None, None, None)


@dataclass
class RecordingOutbox:
    """The in-memory outbox agent tests use: records every send; `fail_next` makes the next
    sends to a topic raise, the way a broker that blinks does."""

    sent: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        self.attempts.append(topic)
        pending = self.failures.get(topic)
        if pending:
            raise pending.pop(0)
        self.sent.append((topic, key, value))

    def fail_next(self, topic: str, exc: BaseException, times: int = 1) -> None:
        """Make the next `times` sends to `topic` raise `exc`."""
        self.failures.setdefault(topic, []).extend([exc] * times)

    def values(self, topic: str) -> list[bytes]:
        return [value for sent_topic, _, value in self.sent if sent_topic == topic]


def dead_letter_record(
    actor: str,
    namespace: uuid.UUID,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    kind: str,
    error: str,
    now: datetime,
) -> dict[str, Any]:
    """The DeadLetter record of one origin record; its id is a uuid5 of the origin position, so
    a redelivered poison record is the same dead letter."""
    return {
        "event_id": uuid.uuid5(namespace, f"{actor}|{topic}|{partition}|{offset}"),
        "recorded_at": now,
        "actor": actor,
        "origin_topic": topic,
        "origin_partition": partition,
        "origin_offset": offset,
        "original_key": key,
        "original_value": value,
        "error_kind": kind,
        "error": error,
    }


@dataclass(frozen=True)
class DeadLetters:
    """Where a worker's rejected records go: one DeadLetter record each (keyed by the origin
    topic), and the service's dead-letter counter incremented.

    `labels` names the counter's labels, from `kind` and `topic`: each service keeps the label
    set its dashboards and alert rules already use.
    """

    codec: Codec
    outbox: Outbox
    clock: Callable[[], datetime]
    actor: str
    namespace: uuid.UUID
    counter: Counter
    labels: Sequence[str] = ("kind",)

    async def send(self, event: Any, kind: str, error: str) -> None:
        message = event.message
        record = dead_letter_record(
            self.actor,
            self.namespace,
            message.topic,
            message.partition,
            message.offset,
            event.key,
            event.value,
            kind,
            error,
            self.clock(),
        )
        await self.outbox.send(
            DEAD_LETTERS.name, message.topic.encode(), self.codec.encode(DEAD_LETTER, record)
        )
        values = {"kind": kind, "topic": message.topic}
        self.counter.labels(*(values[name] for name in self.labels)).inc()
        log.warning(
            "dead-lettered %s[%d]@%d: %s: %s",
            message.topic,
            message.partition,
            message.offset,
            kind,
            error,
        )


Handle = Callable[[Any], Awaitable[None]]


class Worker:
    """The error policy around a service's step (see the module docstring)."""

    def __init__(
        self,
        dead_letters: DeadLetters,
        *,
        on_fatal: Callable[[BaseException], None] = exit_without_commit,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        transient: tuple[type[BaseException], ...] = TRANSIENT,
    ):
        self.dead_letters = dead_letters
        self.on_fatal = on_fatal
        self.retry_delays = tuple(retry_delays)
        self.transient = transient

    async def dead_letter(self, event: Any, kind: str, reason: str) -> None:
        """Dead-letter `event` and let the step go on (for a record rejected in part)."""
        await self.dead_letters.send(event, kind, reason)

    async def consume(self, stream: Any, handle: Handle) -> None:
        """The agent body: every event of `stream` through `process`."""
        async for event in stream.events():
            await self.process(event, handle)

    async def process(self, event: Any, handle: Handle) -> None:
        """Run `handle(event)` under the error policy; returns once the record may be acked."""
        for delay in (*self.retry_delays, None):
            try:
                await self._attempt(event, handle)
                return
            except self.transient as exc:
                if delay is None:
                    self.on_fatal(exc)
                    raise
                log.warning("transient error, retrying in %.1fs: %r", delay, exc)
                await asyncio.sleep(delay)
            except Exception as exc:
                message = event.message
                log.exception(
                    "unexpected error on %s[%d]@%d; stopping without committing it",
                    message.topic,
                    message.partition,
                    message.offset,
                )
                self.on_fatal(exc)
                raise

    async def _attempt(self, event: Any, handle: Handle) -> None:
        # Dead-lettering is part of the attempt: a broker error while sending the dead letter
        # is retried like any other.
        try:
            await handle(event)
        except Rejected as rejected:
            await self.dead_letters.send(event, rejected.kind, rejected.reason)
