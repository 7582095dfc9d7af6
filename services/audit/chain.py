"""Tamper evidence, pure: monitoring's per-household hash chains recomputed from the log, the
search for the log prefix an emitted assessment was computed from, and archive record links.

Monitoring (services/monitoring/service.py) keeps, per household, one chain *per input
topic*: head' = sha256(head | topic:partition:offset | frame), over that household's records in
offset order, and stamps each RiskAssessed with `chain_hash`, a sha256 over every topic's
(topic, partition, offset, head). The order *across* topics is the worker's arrival order,
which the log does not record, so a replay cannot recompute "the" chain_hash of an assessment
directly; it searches for the per-topic prefix vector whose combined hash equals it. The search
is cheap because the emitted record pins it down: its event id is uuid5(household, state
version, digest), which gives the number of distinct events in the prefix; every event its
reasons cite must be inside the prefix; no event in it occurred after the assessment's as_of;
and prefixes only grow from one emission to the next.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.monitoring.service import chain_hash, chain_link


@dataclass(frozen=True, slots=True)
class Link:
    """One record chained for a household on one topic."""

    partition: int
    offset: int
    head: str  # the chain head after this record
    event_id: str
    occurred_at: datetime
    timestamp: int  # log timestamp, ms
    distinct: int  # distinct event ids on this topic up to and including this record


@dataclass
class HouseholdChains:
    """A household's per-topic chains, built in log order."""

    household_id: str
    links: dict[str, list[Link]] = field(default_factory=dict)
    _ids: dict[str, set[str]] = field(default_factory=dict)

    def add(
        self,
        topic: str,
        partition: int,
        offset: int,
        frame: bytes,
        event_id: str,
        occurred_at: datetime,
        timestamp: int,
    ) -> Link:
        items = self.links.setdefault(topic, [])
        previous = items[-1] if items else None
        if previous is not None and previous.offset >= offset:
            # Monitoring chains a position once; a reordered record is skipped by it too.
            return previous
        ids = self._ids.setdefault(topic, set())
        ids.add(event_id)
        link = Link(
            partition,
            offset,
            # monitoring's own link (service.chain_link, what extend_chain applies per row)
            chain_link(previous.head if previous else "", topic, partition, offset, frame),
            event_id,
            occurred_at,
            timestamp,
            len(ids),
        )
        items.append(link)
        return link

    def hash_of(self, vector: dict[str, int]) -> str:
        """chain_hash of the prefix `vector` (topic -> number of records taken)."""
        parts = []
        for topic in sorted(vector):
            n = vector[topic]
            if n > 0:
                link = self.links[topic][n - 1]
                parts.append((topic, link.partition, link.offset, link.head))
        return chain_hash(tuple(parts))

    def count(self, vector: dict[str, int]) -> int:
        return sum(self.links[t][n - 1].distinct for t, n in vector.items() if n > 0)

    def full(self) -> dict[str, int]:
        return {t: len(items) for t, items in self.links.items()}


@dataclass(frozen=True, slots=True)
class Search:
    vector: dict[str, int] | None  # None: no prefix reproduces the hash
    tried: int
    exhausted: bool  # False: stopped at the limit before trying everything


def locate(
    chains: HouseholdChains,
    target: str,
    frontier: dict[str, int],
    *,
    version: int | None,
    cited: set[str],
    as_of: datetime,
    limit: int = 200_000,
) -> Search:
    """The prefix vector (≥ `frontier`) whose combined chain hash is `target`."""
    topics = sorted(chains.links)
    lows, highs = [], []
    for topic in topics:
        items = chains.links[topic]
        low = frontier.get(topic, 0)
        for i, link in enumerate(items):
            if link.event_id in cited:
                low = max(low, i + 1)
        # Every event in the prefix occurred by as_of (as_of = max(now, latest occurred_at)).
        high = next((i for i, x in enumerate(items) if x.occurred_at > as_of), len(items))
        lows.append(low)
        highs.append(high)
    if any(lo > hi for lo, hi in zip(lows, highs, strict=True)):
        return Search(None, 0, True)
    tried = 0

    def counts(i: int, n: int) -> int:
        return chains.links[topics[i]][n - 1].distinct if n > 0 else 0

    def vectors(i: int, chosen: list[int], total: int) -> Iterator[list[int]]:
        if i == len(topics):
            if version is None or total == version:
                yield list(chosen)
            return
        if version is not None:
            rest_min = sum(counts(j, lows[j]) for j in range(i + 1, len(topics)))
            rest_max = sum(counts(j, highs[j]) for j in range(i + 1, len(topics)))
        for n in range(highs[i], lows[i] - 1, -1):
            c = total + counts(i, n)
            if version is not None and not (c + rest_min <= version <= c + rest_max):
                continue
            chosen.append(n)
            yield from vectors(i + 1, chosen, c)
            chosen.pop()

    for candidate in vectors(0, [], 0):
        tried += 1
        vector = dict(zip(topics, candidate, strict=True))
        if chains.hash_of(vector) == target:
            return Search(vector, tried, True)
        if tried >= limit:
            return Search(None, tried, False)
    return Search(None, tried, True)


def describe_window(chains: HouseholdChains, low: dict[str, int], high: dict[str, int]) -> str:
    """Where to look: per topic, the records after the last matched one (offsets as read)."""
    parts = []
    for topic in sorted(chains.links):
        items = chains.links[topic]
        a, b = low.get(topic, 0), high.get(topic, len(items))
        if b > a:
            first, last = items[a], items[b - 1]
            after = f"after @{items[a - 1].offset} " if a > 0 else "from the start "
            parts.append(f"{topic}[{first.partition}] {after}(@{first.offset}..@{last.offset})")
    return ", ".join(parts) or "no records"


# --- archive record links ---------------------------------------------------------------------


def record_link(
    previous: str, offset: int, timestamp: int, key: bytes | None, value: bytes | None
) -> str:
    """The running hash an archive stores with each record: alter, drop or move one and every
    later link changes, so `archive verify` names the first record that breaks."""
    h = hashlib.sha256()
    h.update(previous.encode())
    h.update(f"|{offset}|{timestamp}|".encode())
    for part in (key, value):
        if part is None:
            h.update(b"\x00")
        else:
            h.update(b"\x01" + len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def file_sha256(chunks: Sequence[bytes]) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()
