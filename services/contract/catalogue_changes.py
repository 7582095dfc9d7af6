"""What a catalogue activation records: a digest of the catalogue and its changes.

The log keeps a digest of each activated catalogue (every measure's and pool's definition
hashed, capacities in the clear), not the file itself, so the next activation can say what
changed without the old file at hand.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.contract.catalogue import Catalogue, CatalogueError, Pool, parse_catalogue

SECTIONS = (
    "description",
    "serve_workflows",
    "hold_workflows",
    "cooling_days",
    "reasons",
    "unanswered_reasons",
    "policy.microcredit",
)


@dataclass(frozen=True)
class PoolDigest:
    pool_id: str
    capacity: int | None
    capacity_by_township: Mapping[str, int]
    sha256: str


@dataclass(frozen=True)
class CatalogueDigest:
    """A catalogue as the log remembers it."""

    catalogue_id: str
    content_sha256: str  # of the file's bytes
    measures: Mapping[str, str]  # measure id -> sha256 of its definition
    pools: Mapping[str, PoolDigest]
    sections: Mapping[str, str]  # section name -> sha256


@dataclass(frozen=True, order=True)
class Change:
    """One difference between two activations; `change` is a CatalogueChangeKind symbol."""

    change: str
    item: str
    detail: str = ""


def content_sha256(content: bytes) -> str:
    """Hex SHA-256 of a catalogue file's bytes (what `sha256sum` prints)."""
    return hashlib.sha256(content).hexdigest()


def parse_content(content: bytes, source: str) -> Catalogue:
    """The catalogue in a file's bytes, so the hash recorded is of exactly what was parsed."""
    try:
        raw = tomllib.loads(content.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CatalogueError(source, [("<file>", f"not UTF-8: {exc.reason}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(source, [("<file>", f"not valid TOML: {exc}")]) from exc
    return parse_catalogue(raw, source)


def load_with_content(path: Path) -> tuple[Catalogue, bytes]:
    """The catalogue in the file at `path` and the bytes it was parsed from, read once, so a
    worker matches with exactly the content its activation hashes. CatalogueError if unusable.
    """
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise CatalogueError(str(path), [("<file>", f"cannot read: {exc}")]) from exc
    return parse_content(content, str(path)), content


def digest(catalogue: Catalogue, content: bytes) -> CatalogueDigest:
    """The digest of a validated catalogue read from `content`."""
    sections = {
        "description": catalogue.description,
        "serve_workflows": sorted(catalogue.serve_workflows),
        "hold_workflows": sorted(catalogue.hold_workflows),
        "cooling_days": catalogue.cooling_days,
        "reasons": {code: list(ids) for code, ids in sorted(catalogue.reasons.items())},
        "unanswered_reasons": sorted(catalogue.unanswered_reasons),
        "policy.microcredit": dict(sorted(catalogue.microcredit_policy.items())),
    }
    return CatalogueDigest(
        catalogue_id=catalogue.id,
        content_sha256=content_sha256(content),
        measures={m.id: _sha256(m) for m in sorted(catalogue.measures, key=lambda m: m.id)},
        pools={
            pool_id: _pool_digest(catalogue.pools[pool_id]) for pool_id in sorted(catalogue.pools)
        },
        sections={name: _sha256(sections[name]) for name in SECTIONS},
    )


def changes(previous: CatalogueDigest | None, current: CatalogueDigest) -> list[Change]:
    """What differs from `previous` (None: the first activation, nothing to compare)."""
    if previous is None:
        return []
    found: list[Change] = []
    for measure_id in sorted(current.measures.keys() - previous.measures.keys()):
        found.append(Change("MEASURE_ADDED", measure_id))
    for measure_id in sorted(previous.measures.keys() - current.measures.keys()):
        found.append(Change("MEASURE_REMOVED", measure_id))
    for measure_id in sorted(current.measures.keys() & previous.measures.keys()):
        if current.measures[measure_id] != previous.measures[measure_id]:
            found.append(Change("MEASURE_CHANGED", measure_id))
    for pool_id in sorted(current.pools.keys() - previous.pools.keys()):
        found.append(Change("POOL_ADDED", pool_id, _capacity_text(current.pools[pool_id])))
    for pool_id in sorted(previous.pools.keys() - current.pools.keys()):
        found.append(Change("POOL_REMOVED", pool_id, _capacity_text(previous.pools[pool_id])))
    for pool_id in sorted(current.pools.keys() & previous.pools.keys()):
        found.extend(_pool_changes(previous.pools[pool_id], current.pools[pool_id]))
    for name in sorted(current.sections.keys() | previous.sections.keys()):
        if current.sections.get(name) != previous.sections.get(name):
            found.append(Change("SECTION_CHANGED", name))
    if not found and current.content_sha256 != previous.content_sha256:
        found.append(Change("TEXT_ONLY", ""))
    return found


def _pool_changes(before: PoolDigest, after: PoolDigest) -> list[Change]:
    details = []
    if before.capacity != after.capacity:
        details.append(f"capacity {_number(before.capacity)} -> {_number(after.capacity)}")
    for township in sorted(before.capacity_by_township.keys() | after.capacity_by_township.keys()):
        old = before.capacity_by_township.get(township)
        new = after.capacity_by_township.get(township)
        if old != new:
            details.append(f"{township} {_number(old)} -> {_number(new)}")
    if details:
        return [Change("POOL_CAPACITY_CHANGED", after.pool_id, "; ".join(details))]
    if before.sha256 != after.sha256:
        return [Change("POOL_CHANGED", after.pool_id)]
    return []


def _capacity_text(pool: PoolDigest) -> str:
    if pool.capacity is None and not pool.capacity_by_township:
        return "capacity from the cadre registry"
    overrides = "".join(f"; {t} {n}" for t, n in sorted(pool.capacity_by_township.items()))
    return f"capacity {_number(pool.capacity)}{overrides}"


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


def _pool_digest(pool: Pool) -> PoolDigest:
    return PoolDigest(
        pool_id=pool.id,
        capacity=pool.capacity if pool.kind == "slots" else None,
        capacity_by_township=dict(sorted(pool.capacity_by_township.items())),
        sha256=_sha256(pool),
    )


def _sha256(value: Any) -> str:
    canonical = json.dumps(_plain(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    """JSON-ready form of the catalogue's frozen dataclasses, tuples, sets and mappings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
