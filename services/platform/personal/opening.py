"""Opening a subject's sealed personal data, recorded first: the one code path of
`shouwang personal show` and the console's "show personal data".

`open_personal_data` reads the subject's registry events from the log (its one partition, no
consumer group), opens each sealed sub-record in memory with the key store's keys, then records
PERSONAL_DATA_OPENED on operator.actions (who, whose, which events, why) and returns the opened
records only once the broker has acknowledged it (acks=all). No acknowledgement: BrokerUnavailable,
and the caller shows nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from services.contract.codec import Codec
from services.contract.personal import (
    CADRE,
    HOUSEHOLD,
    PERSONAL_FIELDS,
    DataKey,
    SealError,
    Subject,
    unseal,
)
from services.contract.topics import CADRES, HOUSEHOLD_REGISTRY, TopicLayout
from services.platform.actions.events import personal_data_opened
from services.platform.actions.log import record_action
from services.platform.kafka.log import KafkaLog, Range, partition_of
from services.platform.personal.keys import KeyStore, Shredded

SHOWN = ("sealed", "plaintext")  # the statuses whose personal data is shown


@dataclass(frozen=True)
class Entry:
    """What one registry event says about the subject's personal data."""

    event_id: str
    occurred_at: dt.datetime
    status: str  # sealed | plaintext | erased | none | unknown-key | unreadable
    personal: dict[str, Any] | None = None
    shredded: Shredded | None = None
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "event_id": self.event_id,
            "occurred_at": self.occurred_at.isoformat(),
            "status": self.status,
        }
        if self.personal is not None:
            body["personal"] = self.personal
        if self.shredded is not None:
            body["erased"] = {
                "key_id": self.shredded.key_id,
                "on": self.shredded.shredded_at.isoformat(),
                "by": self.shredded.actor,
                "reason": self.shredded.reason,
            }
        if self.problem is not None:
            body["problem"] = self.problem
        return body

    def line(self) -> str:
        head = f"{self.occurred_at.isoformat()}  event {self.event_id}: "
        if self.status in ("sealed", "plaintext"):
            fields = ", ".join(f"{k}={v}" for k, v in sorted((self.personal or {}).items()))
            note = " (written before sealing: still in plaintext in the log)" * (
                self.status == "plaintext"
            )
            return head + fields + note
        if self.status == "erased" and self.shredded is not None:
            return (
                head + f"erased on {self.shredded.shredded_at.date().isoformat()} by "
                f"{self.shredded.actor} (key {self.shredded.key_id}): {self.shredded.reason}"
            )
        if self.status == "none":
            return head + "no personal data"
        return head + (self.problem or self.status)


async def entries_of(
    event_type: str, records: list[dict[str, Any]], store: KeyStore
) -> list[Entry]:
    """Each registry record's personal data, opened with the store's keys; oldest first."""
    spec = PERSONAL_FIELDS[event_type]
    keys: dict[str, DataKey | Shredded | None] = {}
    entries = []
    for record in sorted(records, key=lambda r: (r["occurred_at"], str(r["event_id"]))):
        event_id, occurred = str(record["event_id"]), record["occurred_at"]
        sealed, plain = record.get("personal_sealed"), record.get("personal")
        if sealed is None:
            status = "none" if plain is None else "plaintext"
            entries.append(Entry(event_id, occurred, status, plain))
            continue
        key_id = sealed["key_id"]
        if key_id not in keys:
            keys[key_id] = await store.find(key_id)
        key = keys[key_id]
        if isinstance(key, Shredded):
            entries.append(Entry(event_id, occurred, "erased", shredded=key))
        elif key is None:
            problem = f"sealed with key {key_id}, which this key store never held"
            entries.append(Entry(event_id, occurred, "unknown-key", problem=problem))
        else:
            try:
                personal = unseal(sealed, spec.subject_of(record), event_id, key)
            except SealError as exc:
                entries.append(Entry(event_id, occurred, "unreadable", problem=str(exc)))
            else:
                entries.append(Entry(event_id, occurred, "sealed", personal))
    return entries


async def read_registry(bootstrap: str, layout: TopicLayout, subject: Subject, codec: Codec):
    """The subject's registry records from the log (its one partition), decoded."""
    topic = {HOUSEHOLD: HOUSEHOLD_REGISTRY, CADRE: CADRES}[subject.kind]
    key = subject.subject_id.encode("utf-8")
    only = {topic.name: {partition_of(key, layout.partitions(topic))}}
    records = []
    async for batch in KafkaLog(bootstrap, [topic.name], Range(only_partitions=only)).batches():
        for r in batch:
            if r.key == key and r.value is not None:
                records.append(codec.decode(r.value, topic.event_type).record)
    return topic.event_type, records


@dataclass(frozen=True)
class Opened:
    """A subject's registry events opened, and the access event recorded before showing them."""

    subject: Subject
    entries: list[Entry]
    access: dict[str, Any]  # the PERSONAL_DATA_OPENED record, acknowledged by the broker


async def open_personal_data(
    bootstrap: str,
    layout: TopicLayout,
    codec: Codec,
    store: KeyStore,
    subject: Subject,
    actor: str,
    reason: str,
    now: dt.datetime,
    wait_seconds: float,
) -> Opened | None:
    """The subject's personal data, its opening recorded on operator.actions first; None when
    the log holds no registry event of the subject (nothing opened, nothing recorded).
    BrokerUnavailable when the access could not be recorded: then nothing may be shown.
    `actor` and `reason` are checked by `personal_data_opened` (OperatorActionError)."""
    event_type, records = await read_registry(bootstrap, layout, subject, codec)
    if not records:
        return None
    entries = await entries_of(event_type, records, store)
    shown = [e.event_id for e in entries if e.status in SHOWN]
    access = personal_data_opened(subject, shown, actor, now, str(uuid.uuid4()), reason)
    await record_action(bootstrap, layout, wait_seconds, codec, access)
    return Opened(subject, entries, access)
