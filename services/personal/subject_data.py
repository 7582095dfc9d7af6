"""What `shouwang personal show|forget` run: registry events opened, or a data key shredded.

`show` reads the subject's registry events (one partition, no consumer group) and opens each
sealed sub-record with the key store's keys; `forget` deletes the subject's data key and records
who did it, when and why.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TextIO

import asyncpg

from services.contract.codec import Codec
from services.contract.errors import ContractError
from services.contract.personal import (
    CADRE,
    HOUSEHOLD,
    PERSONAL_FIELDS,
    DataKey,
    SealError,
    Subject,
    unseal,
)
from services.contract.topics import CADRES, HOUSEHOLD_REGISTRY
from services.platform.config import Settings, SettingsError, kafka_bootstrap
from services.platform.kafka.log import KafkaLog, Range, partition_of
from services.platform.personal.keys import (
    DB_ERRORS,
    KeyStore,
    KeysUnavailable,
    PostgresKeyStore,
    Shredded,
    load_master_key,
)
from services.platform.postgres.database import local_database_url
from services.platform.postgres.migrate import apply_migrations
from services.platform.unreachable import recognise

MAX_ACTOR = 64
MAX_REASON = 500


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


def check_forget_arguments(actor: str, reason: str) -> None:
    """SettingsError naming the argument when `actor` or `reason` is unfit to record."""
    if not actor.strip() or len(actor) > MAX_ACTOR:
        raise SettingsError(f"--actor: who erases, 1 to {MAX_ACTOR} characters")
    if not reason.strip() or len(reason) > MAX_REASON:
        raise SettingsError(f"--reason: why, 1 to {MAX_REASON} characters")


def subject_of(args: argparse.Namespace) -> Subject:
    subject_id = args.subject_id.strip()
    if not subject_id or len(subject_id) > 128:
        raise SettingsError("SUBJECT_ID: a household or cadre id, 1 to 128 characters")
    return Subject(CADRE if args.cadre else HOUSEHOLD, subject_id)


async def read_registry(bootstrap: str, settings: Settings, subject: Subject, codec: Codec):
    """The subject's registry records from the log (its one partition), decoded."""
    topic = {HOUSEHOLD: HOUSEHOLD_REGISTRY, CADRE: CADRES}[subject.kind]
    key = subject.subject_id.encode("utf-8")
    only = {topic.name: {partition_of(key, settings.layout.partitions(topic))}}
    records = []
    async for batch in KafkaLog(bootstrap, [topic.name], Range(only_partitions=only)).batches():
        for r in batch:
            if r.key == key and r.value is not None:
                records.append(codec.decode(r.value, topic.event_type).record)
    return topic.event_type, records


async def show(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    subject = subject_of(args)
    master = load_master_key()
    codec = Codec.default()
    event_type, records = await read_registry(kafka_bootstrap(settings), settings, subject, codec)
    if not records:
        print(f"personal show: no registry events for {subject}", file=err)
        return 1
    pool = await asyncpg.create_pool(local_database_url(settings), min_size=1, max_size=2)
    try:
        entries = await entries_of(event_type, records, PostgresKeyStore(pool, master))
    finally:
        await pool.close()
    if args.json:
        document = {"subject": subject.kind, "id": subject.subject_id}
        document["events"] = [e.as_json() for e in entries]
        print(json.dumps(document, ensure_ascii=False, indent=2), file=out)
    else:
        print(f"personal data of {subject}: {len(entries)} registry event(s)", file=out)
        for entry in entries:
            print("  " + entry.line(), file=out)
    return 0


async def forget(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    subject = subject_of(args)
    check_forget_arguments(args.actor, args.reason)
    master = load_master_key()
    dsn = local_database_url(settings)
    await apply_migrations(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        shredded = await PostgresKeyStore(pool, master).shred(
            subject, args.actor.strip(), args.reason.strip()
        )
    finally:
        await pool.close()
    if not shredded:
        print(f"personal forget: {subject} has no data key; nothing to erase", file=err)
        return 1
    last = shredded[-1]
    print(
        f"erased the data key {last.key_id} of {subject} on {last.shredded_at.isoformat()} "
        f"by {last.actor}; its sealed personal data in the log can no longer be read",
        file=out,
    )
    print(
        "registry events written before sealing (schema version 1) keep their plaintext; "
        "`shouwang personal show` lists them",
        file=out,
    )
    return 0


def run_reporting_store_errors(
    coroutine_fn: Callable[[argparse.Namespace, Settings, TextIO, TextIO], Awaitable[int]],
    args: argparse.Namespace,
    settings: Settings,
) -> int:
    """Run `show` or `forget`; an unreachable key store or PostgreSQL is exit 3, a refusal of
    the contract exit 2, each reported in one line."""
    try:
        return asyncio.run(coroutine_fn(args, settings, sys.stdout, sys.stderr))
    except KeysUnavailable as exc:
        print(f"shouwang personal: the key store is unreachable ({exc})", file=sys.stderr)
        return 3
    except DB_ERRORS as exc:
        print(
            f"shouwang personal: {recognise(exc, settings) or type(exc).__name__}; "
            "nothing was changed",
            file=sys.stderr,
        )
        return 3
    except ContractError as exc:
        print(f"shouwang personal: {exc}", file=sys.stderr)
        return 2
