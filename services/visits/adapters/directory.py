"""Where a household lives (township and village), for checking a token's township and village
scope.

The answer comes from the read model's `households` table (the projection of the household
registry topic), through a cache: registry records accepted by this process are remembered at
once, so a household registered a moment ago can be visited before the projection catches up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import asyncpg

from services.platform.postgres.errors import FAILED


class DirectoryUnavailable(RuntimeError):
    """The household directory cannot be reached and the cache does not know the household."""


class Place(NamedTuple):
    """A household's township and village (None when the registry names none)."""

    township: str
    village: str | None = None


class HouseholdDirectory(Protocol):
    """Port: the place of each household id known to the registry."""

    async def places(self, household_ids: Iterable[str]) -> dict[str, Place]:
        """Place per known household id; unknown ids are absent from the result."""


class InMemoryDirectory:
    """A HouseholdDirectory in a dict (household id → township, or (township, village)), for
    unit tests."""

    def __init__(self, known: Mapping[str, str | tuple[str, str | None]] | None = None):
        self.known = dict(known or {})
        self.failing = False

    async def places(self, household_ids: Iterable[str]) -> dict[str, Place]:
        if self.failing:
            raise DirectoryUnavailable("in-memory directory set to fail")
        return {h: _place(self.known[h]) for h in household_ids if h in self.known}


def _place(value: str | tuple[str, str | None]) -> Place:
    return Place(value) if isinstance(value, str) else Place(*value)


class PostgresDirectory:
    """A HouseholdDirectory reading `households(household_id, township, village)` of the read
    model."""

    def __init__(self, pool: asyncpg.Pool, timeout: float = 2.0):
        self.pool = pool
        self.timeout = timeout

    async def places(self, household_ids: Iterable[str]) -> dict[str, Place]:
        ids = sorted(set(household_ids))
        if not ids:
            return {}
        try:
            rows = await self.pool.fetch(
                "SELECT household_id, township, village FROM households "
                "WHERE household_id = ANY($1::text[]) AND township IS NOT NULL",
                ids,
                timeout=self.timeout,
            )
        except FAILED as exc:
            raise DirectoryUnavailable(f"household directory: {type(exc).__name__}") from exc
        return {row["household_id"]: Place(row["township"], row["village"]) for row in rows}


@dataclass
class CachedDirectory:
    """Directory look-ups through a cache (households rarely move between townships).

    A place found is kept for `ttl` seconds; an unknown household is asked again next time
    (it may just have been registered). When the directory fails, answers up to `stale_grace`
    seconds old are used; households not in the cache raise DirectoryUnavailable.
    """

    directory: HouseholdDirectory
    ttl: float = 300.0
    stale_grace: float = 3600.0
    max_entries: int = 200_000
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, tuple[Place, float]] = field(default_factory=dict)

    def remember(self, household_id: str, township: str, village: str | None = None) -> None:
        """Record a place learnt from a registry record this process just wrote."""
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[household_id] = (Place(township, village), self.clock())

    async def townships(self, household_ids: Iterable[str]) -> dict[str, str]:
        """Township per known household id."""
        return {h: place.township for h, place in (await self.places(household_ids)).items()}

    async def places(self, household_ids: Iterable[str]) -> dict[str, Place]:
        """Place per known household id; DirectoryUnavailable when the directory fails and
        the cache does not know every one."""
        now = self.clock()
        wanted = set(household_ids)
        found: dict[str, Place] = {}
        stale: dict[str, Place] = {}
        for household_id in wanted:
            entry = self._entries.get(household_id)
            if entry is None:
                continue
            if now - entry[1] < self.ttl:
                found[household_id] = entry[0]
            elif now - entry[1] < self.stale_grace:
                stale[household_id] = entry[0]
        missing = wanted - found.keys()
        if not missing:
            return found
        try:
            fetched = await self.directory.places(missing)
        except DirectoryUnavailable:
            if missing <= stale.keys():
                return {**found, **stale}
            raise
        for household_id, place in fetched.items():
            self.remember(household_id, place.township, place.village)
        return {**found, **fetched}
