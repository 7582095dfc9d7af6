"""The operator.actions topic: append an action (acks=all) and read the actions back.

Writes go through the visits service's KafkaSink (idempotent producer, acks=all), so an
action counts as recorded only once every in-sync replica has it. Reads use the audit's
KafkaLog (no consumer group, nothing committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError

from services.contract.catalogue import Catalogue
from services.contract.catalogue_changes import digest
from services.contract.codec import Codec
from services.contract.topics import OPERATOR_ACTIONS, TopicLayout
from services.platform.actions.events import (
    catalogue_activated,
    catalogue_subject,
    decode_action,
    last_activation,
)
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from services.platform.kafka.clients import KafkaAccessRefused
from services.platform.kafka.log import KafkaLog
from services.platform.kafka.producer import BrokerUnavailable, Delivery, KafkaSink, RecordSink

log = logging.getLogger(__name__)


def operator_sink(bootstrap: str, timeout: float) -> KafkaSink:
    """The producer operator commands write with (the one construction site here)."""
    return KafkaSink(bootstrap, timeout=timeout, client_id="shouwang-operator", linger_ms=0)


async def prepare_topic(bootstrap: str, layout: TopicLayout, wait_seconds: float) -> None:
    """Create operator.actions if missing (the broker does not auto-create topics).

    A different partition count is tolerated: the topic is not co-partitioned with anything,
    and a subject's actions stay in order on whichever partition its key hashes to.
    """
    try:
        async with asyncio.timeout(wait_seconds):
            with contextlib.suppress(TopicMismatch):
                await ensure_topics(bootstrap, layout, (OPERATOR_ACTIONS,))
    except TimeoutError as exc:
        raise BrokerUnavailable(f"Kafka did not answer within {wait_seconds:g} s") from exc
    except KafkaAccessRefused:
        raise  # a wrong password is not "Kafka is down": the CLI says which (exit 2)
    except (KafkaError, OSError) as exc:
        raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc


async def append(sink: RecordSink, codec: Codec, record: Mapping[str, Any]) -> Delivery:
    """Write one action, keyed by its subject; returns once the broker acknowledged it."""
    value = codec.encode(OPERATOR_ACTIONS.event_type, dict(record))
    return await sink.send(OPERATOR_ACTIONS.name, record["subject_id"].encode("utf-8"), value)


async def record_action(
    bootstrap: str,
    layout: TopicLayout,
    wait_seconds: float,
    codec: Codec,
    record: Mapping[str, Any],
) -> Delivery:
    """Append one action with a producer of its own (topic created if missing), for a command
    that records one thing; BrokerUnavailable when the broker did not acknowledge it within
    `wait_seconds` (KafkaAccessRefused when it refused our credentials)."""
    sink = operator_sink(bootstrap, wait_seconds)
    try:
        await prepare_topic(bootstrap, layout, wait_seconds)
        return await append(sink, codec, record)
    finally:
        await sink.close()


async def read_actions(
    bootstrap: str,
    codec: Codec,
    subject_id: str | Collection[str] | None = None,
    wait_seconds: float = 60.0,
) -> list[dict[str, Any]]:
    """Every action on the topic (or of one subject, or of any of several) up to its current
    end, in log order per subject, each event id once. A record that does not decode is skipped
    with a warning: it cannot be an action anyone relies on. The whole topic is read: operator
    actions number in the thousands, not millions."""
    keys = None
    if subject_id is not None:
        subjects = [subject_id] if isinstance(subject_id, str) else subject_id
        keys = {s.encode("utf-8") for s in subjects}
    records = []
    try:
        async with asyncio.timeout(wait_seconds):
            async for batch in KafkaLog(bootstrap, [OPERATOR_ACTIONS.name]).batches():
                records.extend(batch)
    except TimeoutError as exc:
        raise BrokerUnavailable(
            f"reading {OPERATOR_ACTIONS.name} took over {wait_seconds:g} s"
        ) from exc
    except KafkaAccessRefused:
        raise  # a wrong password is not "Kafka is down": the CLI says which (exit 2)
    except UnknownTopicOrPartitionError:
        return []  # nothing recorded yet on this cluster: the topic is made by the first write
    except (KafkaError, OSError) as exc:
        raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
    records.sort(key=lambda r: (r.partition, r.offset))
    seen: set[str] = set()
    actions = []
    for r in records:
        if keys is not None and r.key not in keys:
            continue
        action = decode_action(r, codec)
        if action is None:
            continue
        if action["event_id"] in seen:
            continue
        seen.add(action["event_id"])
        actions.append(action)
    return actions


@dataclass(frozen=True)
class Activation:
    """What `activate_catalogue` found and did: `recorded` is None when nothing changed."""

    catalogue_id: str
    content_sha256: str
    recorded: dict[str, Any] | None
    previous: Mapping[str, Any] | None


async def activate_catalogue(
    catalogue: Catalogue,
    content: bytes,
    path: Path,
    actor: str,
    source: str,
    reason: str,
    bootstrap: str,
    codec: Codec,
    sink: RecordSink,
    now: dt.datetime,
) -> Activation:
    """Record that the catalogue file `path`, whose bytes are `content` and parsed are
    `catalogue` (catalogue_changes.parse_content), is in use, unless its content is the last
    one activated for its id."""
    current = digest(catalogue, content)
    history = await read_actions(bootstrap, codec, catalogue_subject(catalogue.id))
    previous = last_activation(history, catalogue.id)
    record = catalogue_activated(current, previous, path.name, actor, now, source, reason)
    if record is not None:
        await append(sink, codec, record)
    return Activation(catalogue.id, current.content_sha256, record, previous)
