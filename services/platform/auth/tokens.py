"""Bearer tokens: who may write and read what, stored as SHA-256 hashes, with a cache that
the revocation feed (revocations.py) keeps honest.

A token is issued once to a cadre (scoped to townships), a department feed (scoped to event
types), an operator (anything) or an auditor (reads what an operator reads, writes nothing;
all townships unless narrowed). Only its SHA-256 is stored; the secret is shown once when
issued. The holder becomes the `actor` of every record written with the token, and the kind
decides the `source` (APP, FEED, OPERATOR); an auditor's token writes no record, so it has no
source. A reviewer is a cadre token that may record review decisions (`--event-type
ReviewDecided`): a review group of its townships (DOMAIN.md), which may also read those
townships' households.

A cadre token may be narrowed to villages of its one township (`--village`): a village-level
token (a village committee), whose records must be about households of those villages; the
procedure's level rule (visits/domain/levels.py) reads it. A village service point's token
(`--service-point`, one village) records households' own applications (APPLY) and nothing else.

Long because the Token, its checks, both stores and the cache belong together: one place says
what a token is and how a request finds it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from services.contract.inputs import KINDS
from services.platform.clock import wall_clock
from services.platform.postgres.errors import FAILED
from services.platform.quotas import NO_OVERRIDE, QuotaOverride

PREFIX = "sw_"
KIND_SOURCES = {"cadre": "APP", "feed": "FEED", "operator": "OPERATOR"}  # the kinds that write
# An auditor (a discipline inspector, a statistics office) checks the work without touching it:
# every read an operator has, within its townships, and no write anywhere.
AUDITOR = "auditor"
TOKEN_KINDS = (*KIND_SOURCES, AUDITOR)
READ_ONLY_REASON = "an auditor's token is read-only: it may write nothing"
# What a cadre's phone records when the operator does not narrow it: everything but the cadre
# registry, which is the organisation department's (an operator's or a feed's) business.
CADRE_DEFAULT_TYPES = frozenset(
    kind.event_type for kind in KINDS if kind.slug not in ("cadres", "review-decisions")
)
# Review groups decide who enters or leaves monitoring: a cadre token that may record their
# decisions is a reviewer of its townships.
REVIEW_DECIDED = next(kind.event_type for kind in KINDS if kind.slug == "review-decisions")


class TokenError(ValueError):
    """A token that cannot be issued as asked (bad scope, unknown event type...)."""


class TokenStoreUnavailable(RuntimeError):
    """The token store cannot be reached and the cache does not know the token."""


@dataclass(frozen=True)
class Token:
    """A stored token's public part: its id, holder and scope (never the secret)."""

    token_id: str
    kind: str  # cadre | feed | operator | auditor
    holder: str  # becomes the records' actor
    townships: frozenset[str] | None  # None: any township
    event_types: frozenset[str] | None  # None: any event type
    villages: frozenset[str] | None = None  # None: any village (of its townships)
    service_point: bool = False  # a village service point: households' applications only
    created_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    note: str = ""
    quota: QuotaOverride = NO_OVERRIDE  # this token's own request limits, over its kind's

    @property
    def source(self) -> str:
        if self.read_only:
            raise TokenError(READ_ONLY_REASON)
        return KIND_SOURCES[self.kind]

    @property
    def read_only(self) -> bool:
        """An auditor's token: it reads and never writes (every write route refuses it)."""
        return self.kind == AUDITOR

    @property
    def oversees(self) -> bool:
        """Whether the operator's read pages are open to this token: operators and auditors
        (within their townships where a page is about a household)."""
        return self.kind in ("operator", AUDITOR)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def permits_type(self, event_type: str) -> bool:
        """Whether records of `event_type` may be written with this token (never an auditor's)."""
        if self.read_only:
            return False
        return self.event_types is None or event_type in self.event_types

    def permits_township(self, township: str | None) -> bool:
        """Whether a record of `township` is in scope; an unknown township (None) is not,
        unless the token is not limited to townships."""
        if self.townships is None:
            return True
        return township is not None and township in self.townships

    def permits_village(self, village: str | None) -> bool:
        """Whether a record about a household of `village` is in scope; an unknown village
        (None) is not, unless the token is not limited to villages."""
        if self.villages is None:
            return True
        return village is not None and village in self.villages

    @property
    def reviewer(self) -> bool:
        """A review group's token: a person's (cadre) token that may record review decisions."""
        return self.kind == "cadre" and self.permits_type(REVIEW_DECIDED) and not self.service_point

    @property
    def may_read_households(self) -> bool:
        """Whether some household may be read with this token (its township decides which)."""
        return self.oversees or self.reviewer

    def may_read_household(self, township: str | None) -> bool:
        """Whether a household of `township` (None: not known yet) may be read: by operators and
        auditors (within their townships, if narrowed) and by reviewers of that township."""
        return self.may_read_households and self.permits_township(township)


def new_token_id() -> str:
    """A fresh token id, made before the token is stored so its issue can be logged first."""
    return secrets.token_hex(6)


def hash_secret(secret: str) -> str:
    """The stored form of a token: hex SHA-256 of its text."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh random token: 256 bits, URL-safe, with a recognisable prefix."""
    return PREFIX + secrets.token_urlsafe(32)


def bearer_secret(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header, else None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > 256:
        return None
    return value


def new_token(
    kind: str,
    holder: str,
    townships: Iterable[str] = (),
    event_types: Iterable[str] = (),
    note: str = "",
    known_types: Iterable[str] | None = None,
    quota: QuotaOverride = NO_OVERRIDE,
    villages: Iterable[str] = (),
    service_point: bool = False,
) -> Token:
    """Check a requested scope and make the Token to store (without id and dates).

    A cadre needs at least one township and gets the cadre event types unless narrowed; a feed
    needs at least one event type and may be narrowed to townships; an operator may do anything
    unless narrowed; an auditor reads every township unless narrowed and takes no event type
    (it writes none). `quota` overrides the kind's request limits (platform/quotas.py).
    `villages` narrow a cadre token of exactly one township to villages of it; a service point
    is a cadre token of one village that records applications (ReviewDecided APPLY) only.
    """
    if kind not in TOKEN_KINDS:
        raise TokenError(f"kind must be one of {', '.join(TOKEN_KINDS)}")
    holder = holder.strip()
    if not holder or len(holder) > 64 or any(c.isspace() for c in holder):
        raise TokenError("holder must be 1-64 characters without spaces (a cadre or feed id)")
    towns = frozenset(t.strip() for t in townships if t.strip())
    known = {k.event_type for k in KINDS} if known_types is None else set(known_types)
    short = {name.rsplit(".", 1)[-1]: name for name in known}
    event_types = list(event_types)  # read twice below; a generator would be empty the second time
    if kind == AUDITOR and any(t.strip() for t in event_types):
        # Said before any type is looked up: no spelling of a type would make it acceptable.
        raise TokenError("an auditor token writes nothing: it takes no --event-type")
    types = set()
    for requested in event_types:
        full = requested if requested in known else short.get(requested)
        if full is None:
            raise TokenError(f"unknown event type {requested!r}; known: {', '.join(sorted(short))}")
        types.add(full)
    if kind == "cadre" and not towns:
        raise TokenError("a cadre token needs at least one --township")
    if kind == "feed" and not types:
        raise TokenError("a feed token needs at least one --event-type")
    if kind == "cadre" and not types:
        types = set(CADRE_DEFAULT_TYPES)
    wanted_villages = frozenset(v.strip() for v in villages if v.strip())
    if wanted_villages and kind != "cadre":
        article = "an" if kind[0] in "aeiou" else "a"
        raise TokenError(
            "--village narrows a cadre token (a village committee or service point); "
            f"{article} {kind} token takes none"
        )
    if wanted_villages and len(towns) != 1:
        raise TokenError("a village-level token needs exactly one --township, its villages' own")
    if any(len(v) > 200 for v in wanted_villages):
        raise TokenError("--village: at most 200 characters")
    if service_point:
        if kind != "cadre" or len(wanted_villages) != 1:
            raise TokenError(
                "a --service-point token is a cadre token of one --township and one --village"
            )
        if types - {REVIEW_DECIDED} and list(event_types):
            raise TokenError(
                "a --service-point token records applications (ReviewDecided APPLY) only: "
                "it takes no other --event-type"
            )
        types = {REVIEW_DECIDED}
    return Token(
        token_id="",
        kind=kind,
        holder=holder,
        townships=towns or None,
        event_types=frozenset(types) or None,
        villages=wanted_villages or None,
        service_point=service_point,
        note=note,
        quota=quota,
    )


class TokenStore(Protocol):
    """Where tokens live. `find` is on the request path; the rest are operator commands."""

    async def find(self, token_hash: str) -> Token | None:
        """The token with this hash (revoked ones too), or None."""

    async def get(self, token_id: str) -> Token | None:
        """The token with this id (revoked ones too), or None."""

    async def issue(self, token: Token, token_hash: str) -> Token:
        """Store a new token (with its id, or a fresh one); return it with its creation time."""

    async def revoke(self, token_id: str, at: dt.datetime) -> Token | None:
        """Mark a token revoked (idempotent); None when there is no such token."""

    async def list(self) -> list[Token]:
        """Every token, newest first."""


class InMemoryTokenStore:
    """A TokenStore in a dict, for unit tests and the contract test of the port."""

    def __init__(self) -> None:
        self.by_hash: dict[str, Token] = {}
        self.failing = False  # set to simulate a database outage

    async def find(self, token_hash: str) -> Token | None:
        if self.failing:
            raise TokenStoreUnavailable("in-memory store set to fail")
        return self.by_hash.get(token_hash)

    async def get(self, token_id: str) -> Token | None:
        return next((t for t in self.by_hash.values() if t.token_id == token_id), None)

    async def issue(self, token: Token, token_hash: str) -> Token:
        token_id = token.token_id or new_token_id()
        stored = _with(token, token_id=token_id, created_at=wall_clock())
        self.by_hash[token_hash] = stored
        return stored

    async def revoke(self, token_id: str, at: dt.datetime) -> Token | None:
        for token_hash, token in self.by_hash.items():
            if token.token_id == token_id:
                if token.revoked_at is None:
                    token = _with(token, revoked_at=at)
                    self.by_hash[token_hash] = token
                return token
        return None

    async def list(self) -> list[Token]:
        return sorted(self.by_hash.values(), key=lambda t: t.created_at, reverse=True)


class PostgresTokenStore:
    """A TokenStore on the `api_tokens` table (migration 0002) through an asyncpg pool."""

    COLUMNS = (
        "token_id, kind, holder, townships, event_types, created_at, revoked_at, note, "
        "max_concurrent, rate_per_second, burst, villages, service_point"
    )

    def __init__(self, pool: asyncpg.Pool, timeout: float = 2.0):
        self.pool = pool
        self.timeout = timeout

    async def find(self, token_hash: str) -> Token | None:
        try:
            row = await self.pool.fetchrow(
                f"SELECT {self.COLUMNS} FROM api_tokens WHERE token_sha256 = $1",
                token_hash,
                timeout=self.timeout,
            )
        except FAILED as exc:
            raise TokenStoreUnavailable(f"token store: {type(exc).__name__}") from exc
        return None if row is None else _from_row(row)

    async def get(self, token_id: str) -> Token | None:
        row = await self.pool.fetchrow(
            f"SELECT {self.COLUMNS} FROM api_tokens WHERE token_id = $1", token_id
        )
        return None if row is None else _from_row(row)

    async def issue(self, token: Token, token_hash: str) -> Token:
        row = await self.pool.fetchrow(
            "INSERT INTO api_tokens (token_id, token_sha256, kind, holder, townships, "
            "event_types, note, max_concurrent, rate_per_second, burst, villages, service_point) "
            f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {self.COLUMNS}",
            token.token_id or new_token_id(),
            token_hash,
            token.kind,
            token.holder,
            None if token.townships is None else sorted(token.townships),
            None if token.event_types is None else sorted(token.event_types),
            token.note,
            token.quota.concurrency,
            token.quota.rate_per_second,
            token.quota.burst,
            None if token.villages is None else sorted(token.villages),
            token.service_point,
        )
        return _from_row(row)

    async def revoke(self, token_id: str, at: dt.datetime) -> Token | None:
        row = await self.pool.fetchrow(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE token_id = $1 "
            f"RETURNING {self.COLUMNS}",
            token_id,
            at,
        )
        return None if row is None else _from_row(row)

    async def list(self) -> list[Token]:
        rows = await self.pool.fetch(
            f"SELECT {self.COLUMNS} FROM api_tokens ORDER BY created_at DESC, token_id"
        )
        return [_from_row(row) for row in rows]


def _from_row(row: Any) -> Token:
    return Token(
        token_id=row["token_id"],
        kind=row["kind"],
        holder=row["holder"],
        townships=None if row["townships"] is None else frozenset(row["townships"]),
        event_types=None if row["event_types"] is None else frozenset(row["event_types"]),
        villages=None if row["villages"] is None else frozenset(row["villages"]),
        service_point=row["service_point"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        note=row["note"],
        quota=QuotaOverride(row["max_concurrent"], row["rate_per_second"], row["burst"]),
    )


def _with(token: Token, **changes: Any) -> Token:
    return Token(**{**token.__dict__, **changes})


@dataclass
class _Entry:
    token: Token | None
    fetched: float


class RevocationView(Protocol):
    """What the cache asks of the revocation feed (revocations.Revocations is one)."""

    def is_revoked(self, token_id: str) -> bool:
        """Whether a revocation of `token_id` has been read."""

    def current(self) -> bool:
        """Whether every revocation recorded up to `max_staleness` ago has been read."""


@dataclass
class CachedTokens:
    """Token look-ups through a cache, so a database blip does not stop a service, with
    revocations from the log (revocations.py) applied to every answer.

    A token found is remembered for `ttl` seconds; an unknown token for at most `negative_ttl`
    seconds (so a flood of bad tokens does not reach the database, and a newly issued one works
    within seconds). A cached token is used only while the revocation feed is current (it has
    read operator.actions up to at most a second ago), so a revocation takes effect within a
    second whether or not PostgreSQL answers; while the feed is behind (Kafka unreachable, a
    stalled loop), every request asks the table, and if that fails too the request is refused
    (TokenStoreUnavailable: the API answers 503). Fail closed: never an unchecked token.

    While the table fails and the feed is current, an entry up to `stale_grace` seconds old is
    still used, so ingest survives a database outage without opening a door.
    """

    store: TokenStore
    revocations: RevocationView
    ttl: float = 30.0
    negative_ttl: float = 5.0
    stale_grace: float = 600.0
    max_entries: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, _Entry] = field(default_factory=dict)

    async def authenticate(self, secret: str) -> Token | None:
        """The active token for `secret`, or None when unknown or revoked."""
        token_hash = hash_secret(secret)
        entry = self._entries.get(token_hash)
        now = self.clock()
        current = self.revocations.current()
        if current and entry is not None and now - entry.fetched < self._ttl_of(entry):
            return self._active(entry.token)
        try:
            token = await self.store.find(token_hash)
        except TokenStoreUnavailable:
            if current and entry is not None and now - entry.fetched < self.stale_grace:
                return self._active(entry.token)
            raise
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # bounded memory; the next look-ups refill it
        self._entries[token_hash] = _Entry(token, now)
        return self._active(token)

    def _ttl_of(self, entry: _Entry) -> float:
        return self.ttl if entry.token is not None else min(self.ttl, self.negative_ttl)

    def _active(self, token: Token | None) -> Token | None:
        # The log can know a revocation before the table does: the command records it first.
        if token is None or not token.active or self.revocations.is_revoked(token.token_id):
            return None
        return token
