"""Every faust worker's skeleton: decode → apply → emit, an outbox, dead letters, one error policy.

A service's agent body is `await worker.consume(stream, handle)`: `handle(event)` is the
service's own step (decode the record, apply it to the table row, emit what it produced through
the `Outbox`); the skeleton owns what happens when that step fails. A service whose step gains
from seeing many records at once (monitoring: fold a household's records, assess and store it
once) uses `await worker.consume_batches(stream, handle_batch)` instead: `handle_batch(events)`
gets the records the stream has at hand (see `Worker.consume_batches`), runs each of its I/O
steps through `Worker.process` (so the policy below holds per record or per household, and a
bad record never takes its batch with it), and the batch is acked once it returns.

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
from services.platform.kafka.faust.redelivery import FetchedBatch, take_batches
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

    async def send(
        self, topic: str, key: bytes, value: bytes, partition: int | None = None
    ) -> Awaitable[Any] | None:
        """Hand one record of raw bytes to the producer for `topic` (to `partition`, else by
        key); returns what completes once the broker has it (None where nothing does)."""


class ProducerOutbox:
    """Records through the app's producer, as faust's topic send does in the end, without its
    per-record future, sensors and callback (issue 19, B2). Under exactly-once that producer
    is faust's transaction manager, which sends in the transaction of the record's partition:
    one this worker must own (a worker re-keying to other workers' partitions has none)."""

    def __init__(self, app: faust.App):
        self.app = app

    async def send(
        self, topic: str, key: bytes, value: bytes, partition: int | None = None
    ) -> Awaitable[Any]:
        producer = await self.app.maybe_start_producer()
        return await producer.send(topic, key, value, partition, None, None)


@dataclass
class RecordingOutbox:
    """The in-memory outbox agent tests use: records every send; `fail_next` makes the next
    sends to a topic raise, the way a broker that blinks does."""

    sent: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)

    async def send(
        self, topic: str, key: bytes, value: bytes, partition: int | None = None
    ) -> None:
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
HandleBatch = Callable[[list[Any]], Awaitable[None]]
# At most this many records in one batch (and waiting in the stream's queue): this bounds the
# time a batch holds its first record (~1 s of CPU here catching up; a trickle's batches are a
# few records). The monitoring agent folds, assesses and stores a household once per batch it
# has records in: on the bench county (scale 0.2 and 0.5, one fetch), 1,000-record batches
# taken topic by topic assessed each household 1.9-2.1 times, 5,000 taken partition by
# partition (`RedeliveringConsumer._deliver_batches`) 1.04-1.10 times (issue 19, B2).
BATCH_LIMIT = 5000


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
        self._fatal: BaseException | None = None  # what `process` last stopped the worker on

    async def dead_letter(self, event: Any, kind: str, reason: str) -> None:
        """Dead-letter `event` and let the step go on (for a record rejected in part)."""
        await self.dead_letters.send(event, kind, reason)

    async def consume(self, stream: Any, handle: Handle) -> None:
        """The agent body: every event of `stream` through `process`."""
        async for event in stream.events():
            await self.process(event, handle)

    async def consume_batches(
        self, stream: Any, handle_batch: HandleBatch, limit: int = BATCH_LIMIT
    ) -> None:
        """The agent body for a batch-taking step.

        With the redelivering consumer (`faust.redelivery`) the records one fetch returned for
        a partition come as one queue item (`FetchedBatch`, at most `limit` records: the direct
        hand-off, no per-record conductor, queue, stream step or task); otherwise records come
        one by one as faust hands them to the stream. Either way, what is at hand is taken
        together: once the stream has no next record or batch at hand (its queue is empty and
        the last fetch has none left to hand out, or its head is one faust will skip: a
        rebalance is under way), or `limit` records are taken, they go to `handle_batch` and are
        acked after it returns, each, as faust's own `Stream.take` acks. A batch never waits
        for a record the broker has not returned yet: under a slow trickle each record is its
        own batch; catching up, a batch is what one fetch returned (see `_next_coming`).

        A fetched batch of an older consumer generation or taken while flow is stopped (a
        rebalance: it seeks back to the committed offsets) is skipped, neither tracked nor
        acked. A taken batch's messages are tracked as faust's stream tracks a record.

        Acking only after the batch keeps faust's commit rule: an offset is committed once its
        record and every record before it on its partition are acked, i.e. once the batch that
        held it was applied and its sends handed to the producer (flushed before any commit).
        A step that raises (on_fatal already called, see `process`) acks nothing."""
        stream.enable_acks = False  # acked below, after the batch (as Stream.take does)
        queue = stream.channel.queue
        app = stream.app
        feed = take_batches(queue, limit)
        batch: list[Any] = []
        async for value in stream:
            event = stream.current_event
            if event is not None:
                batch.append(event)
            elif type(value) is FetchedBatch:
                if not _current(value.generation_id, app):
                    continue  # a rebalance began: read again from the committed offsets
                if batch and len(batch) + len(value) > limit:
                    await self._handle_batch(stream, handle_batch, batch)
                    batch = []
                consumer = app.consumer
                acking = app.topics.acking_topics
                for fetched in value.events:
                    message = fetched.message
                    if message.topic in acking and not message.tracked:
                        message.tracked = True
                        consumer.track_message(message)
                batch.extend(value.events)
                feed.taken.set()
            else:
                continue  # nothing else is put in an input stream's queue
            if len(batch) < limit and await _next_coming(queue, app):
                continue
            taken, batch = batch, []
            await self._handle_batch(stream, handle_batch, taken)

    async def _handle_batch(self, stream: Any, handle_batch: HandleBatch, taken: list[Any]) -> None:
        log.debug("a batch of %d records", len(taken))
        try:
            await handle_batch(taken)
        except Exception as exc:
            if exc is not self._fatal:  # raised outside `process`: a bug of ours
                log.exception("unexpected error in a batch of %d records; stopping "
                              "without committing it", len(taken))  # fmt: skip
                self.on_fatal(exc)
            raise
        for done in taken:
            await stream.ack(done)

    async def process(self, event: Any, handle: Handle) -> None:
        """Run `handle(event)` under the error policy; returns once the record may be acked."""
        for delay in (*self.retry_delays, None):
            try:
                await self._attempt(event, handle)
                return
            except self.transient as exc:
                if delay is None:
                    self._fatal = exc
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
                self._fatal = exc
                self.on_fatal(exc)
                raise

    async def reject(self, event: Any, kind: str, reason: str) -> None:
        """Dead-letter `event` under the error policy (a broker error while sending the dead
        letter is retried; one that persists stops the worker)."""

        async def rejected(_: Any) -> None:
            raise Rejected(kind, reason)

        await self.process(event, rejected)

    async def _attempt(self, event: Any, handle: Handle) -> None:
        # Dead-lettering is part of the attempt: a broker error while sending the dead letter
        # is retried like any other.
        try:
            await handle(event)
        except Rejected as rejected:
            await self.dead_letters.send(event, rejected.kind, rejected.reason)


# How many turns of the event loop a batch gives faust's fetch loop to hand out the next record
# of the fetch it is working through (each record takes a few: faust's fetch loop waits on
# the conductor's callback for each, with a task per wait).
HAND_OUT_TURNS = 32


async def _next_coming(queue: Any, app: Any) -> bool:
    """Whether the stream's next record is at hand, or will be once faust's fetch loop has
    handed out more of the records one fetch returned (`RedeliveringConsumer.handing_out`):
    without that wait the agent would take each record as it trickles in, the fetch loop and
    the agent taking turns record by record, and every batch would be one record."""
    consumer = getattr(app, "_consumer", None)  # None until the worker starts (agent tests)
    turns = 0
    while not _next_at_hand(queue, app):
        if turns >= HAND_OUT_TURNS or not getattr(consumer, "handing_out", 0):
            return False
        turns += 1
        await asyncio.sleep(0)
    return True


def _current(generation_id: int, app: Any) -> bool:
    """Whether a record of this consumer generation is one faust hands out now."""
    return app.flow_control.is_active() and generation_id == app.consumer_generation_id


def _next_at_hand(queue: Any, app: Any) -> bool:
    """Whether the stream's next record is already in its queue and is one faust will hand
    out (not skipped for a rebalance: flow stopped or an older consumer generation). Only then
    does a batch wait for it; a skipped head would leave the stream waiting for a record that
    may not come while the batch held unprocessed records."""
    pending = getattr(queue, "_queue", None)  # asyncio.Queue's deque: a peek, nothing taken
    if not pending or getattr(queue, "_errors", None):
        return False
    head = pending[0]
    if type(head) is FetchedBatch:
        return _current(head.generation_id, app)
    message = getattr(head, "message", None)
    if message is None:
        return True  # a plain value (agent tests put events; a value is never skipped)
    return _current(message.generation_id, app)
