"""Per-subject data keys: the master key from the environment, the PostgreSQL store, a cache.

Data keys never go to Kafka. At rest they are wrapped (envelope encryption) by a master key that
the process reads from `SHOUWANG_PERSONAL_MASTER_KEY` or `SHOUWANG_PERSONAL_MASTER_KEY_FILE`, so a
copy of the database alone does not open personal data. Shredding a subject deletes its key row and
records who did it, when and why.

Long because the key store's port, its two implementations and the cache in front of them are
one contract (tests/integration/personal/test_key_stores.py runs both stores through it).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import asyncpg

from services.contract.personal import (
    KEY_BYTES,
    NONCE_BYTES,
    DataKey,
    SealError,
    Subject,
    master_key_id,
    unwrap_key,
    wrap_key,
)
from services.platform.clock import wall_clock
from services.platform.config import SettingsError
from services.platform.postgres.errors import FAILED

MASTER_KEY_ENV = "SHOUWANG_PERSONAL_MASTER_KEY"
MASTER_KEY_FILE_ENV = "SHOUWANG_PERSONAL_MASTER_KEY_FILE"
DB_ERRORS = FAILED


class KeysUnavailable(RuntimeError):
    """The key store cannot be reached; nothing may be written that needs a key now."""


class KeyStoreMismatch(SealError):
    """A stored key was wrapped by another master key than this process's."""


@dataclass(frozen=True)
class Shredded:
    """A data key that was deleted on purpose: when, by whom and why."""

    key_id: str
    subject: Subject
    created_at: dt.datetime
    shredded_at: dt.datetime
    actor: str
    reason: str


def parse_master_key(text: str, origin: str) -> bytes:
    """32 bytes from base64 (44 characters) or hex (64 characters); SettingsError otherwise."""
    text = text.strip()
    try:
        raw = (
            bytes.fromhex(text)
            if len(text) == 2 * KEY_BYTES
            else base64.b64decode(text, validate=True)
        )
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise SettingsError(
            f"{origin}: the personal-data master key must be {KEY_BYTES} random bytes in base64 "
            f"(44 characters) or hex ({2 * KEY_BYTES} characters); generate one with "
            "`python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'`"
        )
    return raw


def load_master_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The master key from the environment; SettingsError (fail fast) when missing or malformed."""
    env = os.environ if environ is None else environ
    value, path = env.get(MASTER_KEY_ENV), env.get(MASTER_KEY_FILE_ENV)
    if value and path:
        raise SettingsError(f"set {MASTER_KEY_ENV} or {MASTER_KEY_FILE_ENV}, not both")
    if value:
        return parse_master_key(value, MASTER_KEY_ENV)
    if path:
        try:
            text = Path(path).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(
                f"{MASTER_KEY_FILE_ENV}: cannot read {path}: {type(exc).__name__}"
            ) from exc
        return parse_master_key(text, f"{MASTER_KEY_FILE_ENV} ({path})")
    raise SettingsError(
        f"no personal-data master key: set {MASTER_KEY_ENV} (base64 of 32 random bytes) or "
        f"{MASTER_KEY_FILE_ENV} (a file holding it); registry records are sealed with keys it wraps"
    )


def ensure_master_key_file(path: Path) -> Path:
    """Create a random master key file (mode 0600) unless it exists: for the demo and tests."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii") + "\n")
    return path


def personal_master_key_env(home: Path, environ: Mapping[str, str] | None = None) -> dict:
    """For local stacks (demo, fault harness): the caller's master key if it has one, else a
    key file generated once under `home`, as environment variables for the services."""
    env = os.environ if environ is None else environ
    if env.get(MASTER_KEY_ENV) or env.get(MASTER_KEY_FILE_ENV):
        return {}
    return {MASTER_KEY_FILE_ENV: str(ensure_master_key_file(home / "personal-master.key"))}


# Records a deletion elsewhere (operator.actions) before it is final; given the key id.
BeforeDelete = Callable[[str], Awaitable[None]]


class KeyStore(Protocol):
    """Port: data keys per subject, and the record of shredded ones."""

    async def get_or_create(self, subject: Subject) -> DataKey:
        """The subject's current data key, made now if it has none (concurrent callers agree)."""

    async def get_or_create_many(self, subjects: list[Subject]) -> dict[Subject, DataKey]:
        """`get_or_create` for many subjects in a few round trips (a request's registry batch);
        a subject whose key was shredded meanwhile is left out (its caller asks again)."""

    async def find(self, key_id: str) -> DataKey | Shredded | None:
        """The key with this id, its shredding record, or None when it never existed here."""

    async def shred(
        self,
        subject: Subject,
        actor: str,
        reason: str,
        before_delete: BeforeDelete | None = None,
    ) -> list[Shredded]:
        """Delete the subject's key (if any); all its shredding records, oldest first.

        `before_delete(key_id)` runs once the key to delete is known and before the deletion is
        final; when it raises, the key stays and the exception propagates (fail closed).
        """


class InMemoryKeyStore:
    """A KeyStore in dicts, for unit tests; `failing` makes every call KeysUnavailable."""

    def __init__(self, clock: Callable[[], dt.datetime] = wall_clock):
        self.keys: dict[Subject, tuple[DataKey, dt.datetime]] = {}
        self.shredded: dict[str, Shredded] = {}
        self.failing = False
        self.created = 0
        self.clock = clock

    def _check(self) -> None:
        if self.failing:
            raise KeysUnavailable("in-memory key store set to fail")

    async def get_or_create(self, subject: Subject) -> DataKey:
        self._check()
        if subject not in self.keys:
            self.created += 1
            key = DataKey(str(uuid.uuid4()), os.urandom(KEY_BYTES))
            self.keys[subject] = (key, self.clock())
        return self.keys[subject][0]

    async def get_or_create_many(self, subjects: list[Subject]) -> dict[Subject, DataKey]:
        return {subject: await self.get_or_create(subject) for subject in subjects}

    async def find(self, key_id: str) -> DataKey | Shredded | None:
        self._check()
        for key, _ in self.keys.values():
            if key.key_id == key_id:
                return key
        return self.shredded.get(key_id)

    async def shred(
        self,
        subject: Subject,
        actor: str,
        reason: str,
        before_delete: BeforeDelete | None = None,
    ) -> list[Shredded]:
        self._check()
        if subject in self.keys:
            if before_delete is not None:
                await before_delete(self.keys[subject][0].key_id)
            key, created = self.keys.pop(subject)
            self.shredded[key.key_id] = Shredded(
                key.key_id, subject, created, self.clock(), actor, reason
            )
        return sorted(
            (s for s in self.shredded.values() if s.subject == subject),
            key=lambda s: s.shredded_at,
        )


class PostgresKeyStore:
    """A KeyStore over the `personal_keys` tables (migration 0006), keys wrapped by `master`."""

    def __init__(self, pool: asyncpg.Pool, master: bytes, timeout: float = 2.0):
        self.pool = pool
        self.master = master
        self.master_id = master_key_id(master)
        self.timeout = timeout

    async def get_or_create(self, subject: Subject) -> DataKey:
        try:
            row = await self._current(subject)
            if row is None:
                key = DataKey(str(uuid.uuid4()), os.urandom(KEY_BYTES))
                wrapped = wrap_key(self.master, subject, key, os.urandom(NONCE_BYTES))
                # Two writers may create a key for one subject at once: the first insert wins
                # and both use its key, so every sealed copy opens with the same key.
                await self.pool.execute(
                    "INSERT INTO personal_keys "
                    "(subject_kind, subject_id, key_id, master_key_id, wrapped_key) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subject_kind, subject_id) DO NOTHING",
                    subject.kind,
                    subject.subject_id,
                    uuid.UUID(key.key_id),
                    self.master_id,
                    wrapped,
                    timeout=self.timeout,
                )
                row = await self._current(subject)
        except DB_ERRORS as exc:
            raise KeysUnavailable(f"personal key store: {type(exc).__name__}") from exc
        if row is None:  # shredded between our insert and read: the caller retries
            raise KeysUnavailable(f"the key of {subject} was shredded while being created")
        return self._unwrap(subject, row)

    async def get_or_create_many(self, subjects: list[Subject]) -> dict[Subject, DataKey]:
        # Three statements whatever the batch's size (a county's registry import posts
        # hundreds of new households per request): read, insert the missing, read those.
        wanted = list(dict.fromkeys(subjects))
        try:
            rows = await self._current_many(wanted)
            missing = [subject for subject in wanted if subject not in rows]
            if missing:
                made = [DataKey(str(uuid.uuid4()), os.urandom(KEY_BYTES)) for _ in missing]
                # The first insert of a subject wins, as in get_or_create.
                await self.pool.execute(
                    "INSERT INTO personal_keys "
                    "(subject_kind, subject_id, key_id, master_key_id, wrapped_key) "
                    "SELECT kind, id, key_id, $4, wrapped "
                    "FROM unnest($1::text[], $2::text[], $3::uuid[], $5::bytea[]) "
                    "AS m(kind, id, key_id, wrapped) "
                    "ON CONFLICT (subject_kind, subject_id) DO NOTHING",
                    [subject.kind for subject in missing],
                    [subject.subject_id for subject in missing],
                    [uuid.UUID(key.key_id) for key in made],
                    self.master_id,
                    [
                        wrap_key(self.master, subject, key, os.urandom(NONCE_BYTES))
                        for subject, key in zip(missing, made, strict=True)
                    ],
                    timeout=self.timeout,
                )
                rows.update(await self._current_many(missing))
        except DB_ERRORS as exc:
            raise KeysUnavailable(f"personal key store: {type(exc).__name__}") from exc
        return {subject: self._unwrap(subject, row) for subject, row in rows.items()}

    async def _current_many(self, subjects: list[Subject]) -> dict[Subject, asyncpg.Record]:
        rows = await self.pool.fetch(
            "SELECT k.subject_kind, k.subject_id, k.key_id, k.master_key_id, k.wrapped_key "
            "FROM personal_keys k JOIN unnest($1::text[], $2::text[]) AS w(kind, id) "
            "ON k.subject_kind = w.kind AND k.subject_id = w.id",
            [subject.kind for subject in subjects],
            [subject.subject_id for subject in subjects],
            timeout=self.timeout,
        )
        return {Subject(row["subject_kind"], row["subject_id"]): row for row in rows}

    async def find(self, key_id: str) -> DataKey | Shredded | None:
        try:
            key_uuid = uuid.UUID(key_id)
        except ValueError:
            return None
        try:
            row = await self.pool.fetchrow(
                "SELECT subject_kind, subject_id, key_id, master_key_id, wrapped_key "
                "FROM personal_keys WHERE key_id = $1",
                key_uuid,
                timeout=self.timeout,
            )
            if row is not None:
                return self._unwrap(Subject(row["subject_kind"], row["subject_id"]), row)
            row = await self.pool.fetchrow(
                "SELECT * FROM personal_keys_shredded WHERE key_id = $1",
                key_uuid,
                timeout=self.timeout,
            )
        except DB_ERRORS as exc:
            raise KeysUnavailable(f"personal key store: {type(exc).__name__}") from exc
        return None if row is None else _shredded(row)

    async def shred(
        self,
        subject: Subject,
        actor: str,
        reason: str,
        before_delete: BeforeDelete | None = None,
    ) -> list[Shredded]:
        recording = False
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                # The row stays locked until commit: a concurrent forget waits, then finds none.
                deleted = await conn.fetchrow(
                    "DELETE FROM personal_keys WHERE subject_kind = $1 AND subject_id = $2 "
                    "RETURNING key_id, created_at",
                    subject.kind,
                    subject.subject_id,
                )
                if deleted is not None:
                    if before_delete is not None:
                        # Inside the transaction: if it raises, the DELETE is rolled back.
                        recording = True
                        await before_delete(str(deleted["key_id"]))
                        recording = False
                    await conn.execute(
                        "INSERT INTO personal_keys_shredded "
                        "(key_id, subject_kind, subject_id, created_at, actor, reason) "
                        "VALUES ($1, $2, $3, $4, $5, $6)",
                        deleted["key_id"],
                        subject.kind,
                        subject.subject_id,
                        deleted["created_at"],
                        actor,
                        reason,
                    )
                rows = await conn.fetch(
                    "SELECT * FROM personal_keys_shredded WHERE subject_kind = $1 "
                    "AND subject_id = $2 ORDER BY shredded_at, key_id",
                    subject.kind,
                    subject.subject_id,
                )
        except DB_ERRORS as exc:
            if recording:  # the recorder's own failure, not the key store's
                raise
            raise KeysUnavailable(f"personal key store: {type(exc).__name__}") from exc
        return [_shredded(row) for row in rows]

    async def _current(self, subject: Subject) -> asyncpg.Record | None:
        return await self.pool.fetchrow(
            "SELECT key_id, master_key_id, wrapped_key FROM personal_keys "
            "WHERE subject_kind = $1 AND subject_id = $2",
            subject.kind,
            subject.subject_id,
            timeout=self.timeout,
        )

    def _unwrap(self, subject: Subject, row: asyncpg.Record) -> DataKey:
        key_id = str(row["key_id"])
        if row["master_key_id"] != self.master_id:
            raise KeyStoreMismatch(
                f"data key {key_id} of {subject} was wrapped by master key {row['master_key_id']}; "
                f"this process has master key {self.master_id} (check {MASTER_KEY_ENV})"
            )
        return unwrap_key(self.master, subject, key_id, bytes(row["wrapped_key"]))


def _shredded(row: asyncpg.Record) -> Shredded:
    return Shredded(
        str(row["key_id"]),
        Subject(row["subject_kind"], row["subject_id"]),
        row["created_at"],
        row["shredded_at"],
        row["actor"],
        row["reason"],
    )


class CachedKeys:
    """Subjects' keys kept in memory for `ttl` seconds, at most `max_entries` of them.

    The cache lets writers seal without a database round trip, and keeps a subject seen recently
    writable through a short database outage. Its bound on age is also how long a key shredded
    by another process may still seal new records here (they are unreadable at once, like the
    older ones), so the TTL stays short.
    """

    def __init__(
        self,
        store: KeyStore,
        ttl: float = 300.0,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self.monotonic = monotonic
        self._entries: OrderedDict[Subject, tuple[float, DataKey]] = OrderedDict()

    async def key_for(self, subject: Subject) -> DataKey:
        """The subject's data key; KeysUnavailable when uncached and the store is down."""
        now = self.monotonic()
        entry = self._entries.get(subject)
        if entry is not None and now - entry[0] < self.ttl:
            self._entries.move_to_end(subject)
            return entry[1]
        key = await self.store.get_or_create(subject)
        self._remember(subject, key, now)
        return key

    async def warm(self, subjects: list[Subject]) -> None:
        """Have the keys of `subjects` cached, the uncached ones got or made together. Best
        effort: when the store is down, `key_for` of each subject says so afterwards."""
        now = self.monotonic()
        cold = [
            subject
            for subject in dict.fromkeys(subjects)
            if (entry := self._entries.get(subject)) is None or now - entry[0] >= self.ttl
        ]
        if len(cold) < 2:
            return  # one key: key_for's single round trip is as good
        try:
            keys = await self.store.get_or_create_many(cold)
        except KeysUnavailable:
            return
        for subject, key in keys.items():
            self._remember(subject, key, now)

    def _remember(self, subject: Subject, key: DataKey, now: float) -> None:
        # The newest entry goes last and the oldest out first, so the cache keeps the subjects
        # used most recently; evicting per entry keeps the same ones as evicting once at the end.
        self._entries[subject] = (now, key)
        self._entries.move_to_end(subject)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, subject: Subject) -> None:
        self._entries.pop(subject, None)

    def __len__(self) -> int:
        return len(self._entries)
