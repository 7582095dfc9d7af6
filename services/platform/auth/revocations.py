"""Revoked tokens as every service learns them: TOKEN_REVOKED events read from operator.actions.

`shouwang tokens revoke` records the revocation on operator.actions (acks=all) before it
touches the token table, so the log knows first, and it knows while PostgreSQL is down. Each
service that checks tokens follows the topic from its start (`follow`): the revoked ids are
kept in `Revocations`, which also knows how current it is. The feed is *current* when a moment
at most `max_staleness` (one second) ago is known at which it had read every partition to its
end: any revocation acknowledged before that moment is then in `revoked`. The token cache
(tokens.CachedTokens) trusts its entries only while the feed is current, and asks the table
otherwise: a revocation takes effect within a second, and nothing is trusted blind.

Why events rather than PostgreSQL LISTEN/NOTIFY: the monitoring and support workers hold no
database connection for their work, the log is the system's source of truth (a service reading
it needs no second channel), and a revocation made while PostgreSQL is down still reaches
every service. See services/platform/README.md ("Tokens").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from services.contract.codec import Codec
from services.contract.errors import ContractError
from services.contract.topics import OPERATOR_ACTIONS
from services.platform.kafka import clients as kafka_clients
from services.platform.kafka.security import KafkaSecurity

log = logging.getLogger(__name__)

MAX_STALENESS = 1.0  # seconds: the promise "revoked within one second"
POLL_SECONDS = 0.2  # each turn of the feed waits at most this long for a new action
TOKEN_KEY_PREFIX = b"token:"  # operator.actions keys are subjects; only tokens matter here


@dataclass
class Revocations:
    """The token ids revoked so far, and the last moment the feed was known complete.

    Pure state (the moment comes from `clock`); `follow` fills it from Kafka, a test by hand.
    """

    max_staleness: float = MAX_STALENESS
    clock: Callable[[], float] = time.monotonic
    revoked: set[str] = field(default_factory=set)
    complete_at: float | None = None  # clock() before a look-up that found nothing unread

    def apply(self, action: Mapping[str, Any]) -> None:
        """Take one operator action; only TOKEN_REVOKED changes anything."""
        if action.get("action") == "TOKEN_REVOKED" and action.get("token"):
            self.revoked.add(action["token"]["token_id"])

    def read_up_to(self, moment: float) -> None:
        """Every action recorded before `moment` has been applied."""
        if self.complete_at is None or moment > self.complete_at:
            self.complete_at = moment

    def is_revoked(self, token_id: str) -> bool:
        return token_id in self.revoked

    def current(self) -> bool:
        return (
            self.complete_at is not None and self.clock() - self.complete_at <= self.max_staleness
        )


async def follow(
    bootstrap: str,
    revocations: Revocations,
    codec: Codec | None = None,
    security: KafkaSecurity | None = None,
    poll_seconds: float = POLL_SECONDS,
    retry_seconds: float = 1.0,
) -> None:
    """Read operator.actions from its start into `revocations`, forever (cancel to stop).

    Each turn asks the partitions' end offsets, reads up to them, then marks the moment taken
    *before* the question as complete; then waits up to `poll_seconds` for new records (a long
    poll returns as soon as one arrives). Kafka errors are logged and retried: meanwhile the
    feed goes stale and the token cache asks the table instead.
    """
    codec = codec or Codec.default()
    while True:
        # Subscribing (no group: nothing is committed) makes start() fetch the topic's
        # metadata; the partitions are then assigned by hand (as platform/kafka/log.py does).
        consumer = kafka_clients.consumer(
            OPERATOR_ACTIONS.name,
            bootstrap=bootstrap,
            security=security,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=int(poll_seconds * 1000),
            client_id="shouwang-revocations",
        )
        try:
            await kafka_clients.start(consumer, bootstrap, security)
            await _follow(consumer, revocations, codec, poll_seconds)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning(
                "revocation feed: %s: %s; tokens are checked against the table meanwhile",
                type(exc).__name__,
                exc,
            )
        except Exception:  # never take the service down: a stale feed only means asking the table
            log.exception("revocation feed failed; tokens are checked against the table meanwhile")
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
        await asyncio.sleep(retry_seconds)


async def _follow(consumer: Any, revocations: Revocations, codec: Codec, poll: float) -> None:
    numbers = consumer.partitions_for_topic(OPERATOR_ACTIONS.name) or set()
    if not numbers:
        raise KafkaError(f"{OPERATOR_ACTIONS.name} does not exist yet")
    partitions = [TopicPartition(OPERATOR_ACTIONS.name, p) for p in sorted(numbers)]
    consumer.unsubscribe()
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    while True:
        asked = revocations.clock()
        async with asyncio.timeout(10):
            ends = await consumer.end_offsets(partitions)
        while True:
            behind = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
            if not behind:
                break
            _apply(await consumer.getmany(*behind, timeout_ms=int(poll * 1000)), revocations, codec)
        revocations.read_up_to(asked)
        _apply(await consumer.getmany(timeout_ms=int(poll * 1000)), revocations, codec)


def _apply(fetched: Mapping[Any, list[Any]], revocations: Revocations, codec: Codec) -> None:
    for messages in fetched.values():
        for m in messages:
            if not m.key or not m.key.startswith(TOKEN_KEY_PREFIX) or m.value is None:
                continue
            try:
                action = codec.decode(m.value, expected=OPERATOR_ACTIONS.event_type).record
            except ContractError as exc:
                log.warning("%s[%d]@%d skipped: %s", m.topic, m.partition, m.offset, exc)
                continue
            revocations.apply(action)
