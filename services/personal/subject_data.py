"""What `shouwang personal show|forget` run: registry events opened, or a data key shredded.

`show` reads the subject's registry events (one partition, no consumer group) and opens each
sealed sub-record with the key store's keys, through `platform/personal/opening.py` (the console's
"show personal data" runs the same code); `forget` deletes the subject's data key and records
who did it, when and why.

Both are recorded on operator.actions first (PERSONAL_DATA_OPENED, PERSONAL_DATA_FORGOTTEN):
`show` opens the records in memory, writes the access event and prints only once the broker has
acknowledged it; `forget` writes its event inside the key deletion's transaction, which is rolled
back when the event cannot be written. No acknowledgement, no data shown and no key deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

import asyncpg

from services.contract.codec import Codec
from services.contract.errors import ContractError
from services.contract.personal import CADRE, HOUSEHOLD, Subject
from services.platform.actions.events import (
    OperatorActionError,
    check_actor,
    check_reason,
    default_actor,
    personal_data_forgotten,
)
from services.platform.actions.log import record_action
from services.platform.clock import wall_clock
from services.platform.config import Settings, SettingsError, kafka_bootstrap
from services.platform.kafka.producer import BrokerUnavailable
from services.platform.personal.keys import (
    DB_ERRORS,
    KeysUnavailable,
    PostgresKeyStore,
    load_master_key,
)
from services.platform.personal.opening import open_personal_data
from services.platform.postgres.database import local_database_url
from services.platform.postgres.migrate import apply_migrations
from services.platform.unreachable import recognise


def check_access_arguments(actor: str | None, reason: str) -> tuple[str, str]:
    """The actor (default `operator:$USER`) and reason to record, or SettingsError naming the
    option: the same rules as every operator action, and a reason is required."""
    try:
        actor = check_actor(default_actor(getpass.getuser()) if actor is None else actor.strip())
        reason = check_reason(reason.strip(), required=True)
    except OperatorActionError as exc:
        raise SettingsError(f"--{exc}") from None
    return actor, reason


def subject_of(args: argparse.Namespace) -> Subject:
    subject_id = args.subject_id.strip()
    if not subject_id or len(subject_id) > 128:
        raise SettingsError("SUBJECT_ID: a household or cadre id, 1 to 128 characters")
    return Subject(CADRE if args.cadre else HOUSEHOLD, subject_id)


async def show(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    subject = subject_of(args)
    actor, reason = check_access_arguments(args.actor, args.reason)
    master = load_master_key()
    codec = Codec.default()
    bootstrap = kafka_bootstrap(settings)
    pool = await asyncpg.create_pool(local_database_url(settings), min_size=1, max_size=2)
    try:
        opened = await open_personal_data(
            bootstrap,
            settings.layout,
            codec,
            PostgresKeyStore(pool, master),
            subject,
            actor,
            reason,
            wall_clock(),
            _wait(settings),
        )
    except BrokerUnavailable as exc:
        print(
            f"personal show: nothing shown: this access to the personal data of {subject} could "
            f"not be recorded on operator.actions ({exc}); every opening is recorded first",
            file=err,
        )
        return 3
    finally:
        await pool.close()
    if opened is None:
        print(f"personal show: no registry events for {subject}", file=err)
        return 1
    entries, access = opened.entries, opened.access
    if args.json:
        document = {"subject": subject.kind, "id": subject.subject_id}
        document["events"] = [e.as_json() for e in entries]
        document["access_event_id"] = access["event_id"]
        print(json.dumps(document, ensure_ascii=False, indent=2), file=out)
    else:
        print(f"personal data of {subject}: {len(entries)} registry event(s)", file=out)
        for entry in entries:
            print("  " + entry.line(), file=out)
    print(
        f"access recorded on operator.actions as {access['event_id']} (by {actor}: {reason})",
        file=err,
    )
    return 0


async def forget(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    subject = subject_of(args)
    actor, reason = check_access_arguments(args.actor, args.reason)
    master = load_master_key()
    dsn = local_database_url(settings)
    bootstrap, codec = kafka_bootstrap(settings), Codec.default()

    async def record_first(key_id: str) -> None:
        event = personal_data_forgotten(subject, key_id, actor, wall_clock(), reason)
        await record_action(bootstrap, settings.layout, _wait(settings), codec, event)

    await apply_migrations(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        shredded = await PostgresKeyStore(pool, master).shred(
            subject, actor, reason, before_delete=record_first
        )
    except BrokerUnavailable as exc:
        print(
            f"personal forget: nothing erased: the erasure of {subject}'s data key could not be "
            f"recorded on operator.actions ({exc}); the key was kept, run the command again",
            file=err,
        )
        return 3
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


def _wait(settings: Settings) -> float:
    """How long to wait for the broker's acknowledgement: the visits API's request timeout,
    the bound every operator command that records an action uses."""
    return settings.visits.request_timeout_seconds


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
    except BrokerUnavailable as exc:
        print(f"shouwang personal: Kafka is unreachable ({exc}); nothing shown", file=sys.stderr)
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
