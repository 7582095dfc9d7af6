"""Bytes for monitoring's table rows: Avro under a versioned row schema
(`schemas/tables/monitoring_row.avsc`, framed by `platform.tables`), and the JSON of before;
the summaries' JSON (smaller gains than its cost, below).

JSON rows (`{"format": 1, ...}`, `json_rows`) are still read: the changelog topics of a deployed
worker hold them, and recovery restores them as they are; a row is written in Avro the next time
its household changes. A row this code cannot read raises RowFormatError naming the row's schema
version and why, never an empty state.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import fastavro

from services.contract.codec import MAGIC
from services.contract.errors import ContractError
from services.contract.schemas import SchemaVersion
from services.monitoring.adapters import json_rows
from services.monitoring.domain import events
from services.monitoring.domain.row import Row, Summary
from services.monitoring.domain.state import LIMITS, HouseholdState
from services.platform import tables

ROW = "shouwang.tables.monitoring.HouseholdRow"

# Visit checks without a note are shared values (as avro_translation makes them), not one per visit.
_PLAIN_CHECKS: dict[str, events.Check] = {}


RowFormatError = tables.TableFormatError


@dataclasses.dataclass(frozen=True)
class _Row:
    """The row schema, taken apart once per process (on first use, not at import)."""

    version: SchemaVersion
    head: dict[str, Any]  # the row's fields before the event arrays, as a schema of its own
    items: dict[str, dict[str, Any]]  # each event kind's array item schema
    to_avro: dict[str, Callable[[Any], Any]]  # each event kind's domain → Avro datum
    from_avro: dict[str, Callable[[Any, str], Any]]  # Avro array, household id → events


@functools.cache
def _row() -> _Row:
    version = tables.schema(ROW)
    fields = version.parsed["fields"]
    first = next(i for i, f in enumerate(fields) if f["name"] == next(iter(LIMITS)))
    if [f["name"] for f in fields[first:]] != list(LIMITS):
        raise ContractError(f"{version.source}: the event arrays must end the row, in LIMITS order")
    head = fastavro.parse_schema({"type": "record", "name": ROW + "Head", "fields": fields[:first]})
    arrays = {f["name"]: f["type"] for f in fields[first:]}
    to_check = {"NamedCheck": lambda v: {"name": v[0], "status": v[1].status, "note": v[1].note}}
    from_check = {"NamedCheck": lambda v, hid: (v["name"], _check(v["status"], v["note"]))}
    return _Row(
        version=version,
        head=head,
        items={kind: fastavro.parse_schema(array["items"]) for kind, array in arrays.items()},
        to_avro={kind: tables.writer(array["items"], to_check) for kind, array in arrays.items()},
        from_avro={
            kind: tables.reader(array, json_rows.CLASSES, from_check)
            for kind, array in arrays.items()
        },
    )


def _check(status: str, note: str) -> events.Check:
    if note:
        return events.Check(status, note)
    shared = _PLAIN_CHECKS.get(status)
    if shared is None:
        shared = _PLAIN_CHECKS[status] = events.Check(status, "")
    return shared


def _long(n: int) -> bytes:
    """Avro's zig-zag varint of a non-negative long (an array block's count)."""
    n <<= 1
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def event_bytes(kind: str, event: Any) -> bytes:
    """One event as an item of the row's `kind` array (Avro binary)."""
    row = _row()
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, row.items[kind], row.to_avro[kind](event))
    return buffer.getvalue()


def dump_row(row: Row, item: Callable[[str, Any], bytes] | None = None) -> bytes:
    """The row as an Avro frame; `item(kind, event)` (an event's bytes) may come from a cache.

    The body is the head's fields, then each kind's array as one block of its events' bytes:
    Avro's encoding of the whole record, built without re-encoding events already written."""
    schema, encode = _row(), item or event_bytes
    s = row.state
    kept = set()
    for kind in LIMITS:
        for e in getattr(s, kind):
            # the row stores the household id once: an event of another household cannot be kept
            if e.household_id != s.household_id:
                raise ValueError(
                    f"{kind} event {e.event_id} of household {e.household_id} in the row of "
                    f"{s.household_id}"
                )
            kept.add(e.event_id)
    seen = s.seen
    buffer = io.BytesIO()
    buffer.write(MAGIC)
    buffer.write(schema.version.fingerprint)
    fastavro.schemaless_writer(
        buffer,
        schema.head,
        {
            "household_id": s.household_id,
            "seen_beyond_kept": sorted(i for i in seen if i not in kept),
            "kept_not_seen": sorted(i for i in kept if i not in seen),
            "last_occurred_at": _optional_aware(s.last_occurred_at),
            "chain": [
                {"topic": t, "partition": p, "offset": o, "head": h} for t, p, o, h in row.chain
            ],
            "emitted_digest": row.emitted_digest,
            "emitted_event_id": row.emitted_event_id,
            "emitted_as_of": _optional_aware(row.emitted_as_of),
            "emitted_chain_hash": row.emitted_chain_hash,
            "emitted_recorded_at": _optional_aware(row.emitted_recorded_at),
        },
    )
    for kind in LIMITS:
        kept_events = getattr(s, kind)
        if kept_events:
            buffer.write(_long(len(kept_events)))
            for event in kept_events:
                buffer.write(encode(kind, event))
        buffer.write(b"\x00")
    return buffer.getvalue()


def _optional_aware(value: datetime | None) -> datetime | None:
    return None if value is None else tables.aware(value)


def load_row(raw: bytes) -> Row:
    """A stored row: an Avro frame of any known row schema version, or a JSON row before them."""
    raw = bytes(raw)
    if raw[:1] == b"{":
        try:
            return json_rows.load_row(raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise RowFormatError(f"JSON row: {type(exc).__name__}: {exc}") from exc
    schema = _row()
    data, version = tables.decode(raw, ROW, "monitoring row")
    hid = data["household_id"]
    try:
        kinds = {kind: schema.from_avro[kind](data[kind], hid) for kind in LIMITS}
        kept = {e.event_id for kept_events in kinds.values() for e in kept_events}
        seen = frozenset(data["seen_beyond_kept"]).union(kept).difference(data["kept_not_seen"])
        state = HouseholdState(hid, seen, last_occurred_at=data["last_occurred_at"], **kinds)
        chain = tuple((c["topic"], c["partition"], c["offset"], c["head"]) for c in data["chain"])
        return Row(
            state,
            chain,
            data["emitted_digest"],
            data["emitted_event_id"],
            data["emitted_as_of"],
            data["emitted_chain_hash"],
            data["emitted_recorded_at"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RowFormatError(
            f"{tables.named(version)} row of {hid!r}: cannot build the state: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


class RowCache:
    """Skips encoding work on the hot path: the rows this worker wrote last (checked against
    the stored bytes, so a row recovered or changed elsewhere is decoded afresh) and each
    event's Avro bytes by household and event id. Not by event id alone: ids come from
    clients, and two households' different events may carry the same one (a buggy or hostile
    client; the fault harness's overload and hostile scenarios did) — keyed by id alone, the
    second household's row was written with the first one's event, a corruption its next
    recovery made real. Within a household an id names one event (the fold ignores a seen
    id). Bounded; one per app."""

    def __init__(self, rows: int = 20_000, fragments: int = 200_000):
        self.rows: OrderedDict[bytes, tuple[bytes, Row]] = OrderedDict()
        self.fragments: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.max_rows, self.max_fragments = rows, fragments

    def load(self, key: bytes, raw: bytes) -> Row:
        cached = self.rows.get(key)
        if cached is not None and cached[0] == raw:
            self.rows.move_to_end(key)
            return cached[1]
        row = load_row(raw)
        self._remember(key, raw, row)
        return row

    def dump(self, key: bytes, row: Row) -> bytes:
        raw = dump_row(row, self._fragment)
        self._remember(key, raw, row)
        return raw

    def _fragment(self, kind: str, event: Any) -> bytes:
        key = (event.household_id, event.event_id)
        data = self.fragments.get(key)
        if data is None:
            data = self.fragments[key] = event_bytes(kind, event)
            if len(self.fragments) > self.max_fragments:
                self.fragments.popitem(last=False)
        return data

    def _remember(self, key: bytes, raw: bytes, row: Row) -> None:
        self.rows[key] = (raw, row)
        self.rows.move_to_end(key)
        if len(self.rows) > self.max_rows:
            self.rows.popitem(last=False)


# --- summaries: JSON, measured faster here than Avro ----------------------------------------------
# A summary is nine small fields, and the sweep decodes every summary each pass: fastavro's
# per-call overhead made them slower than JSON (on the county: encode 4.9 vs 3.4 µs, decode
# 8.0 vs 3.5 µs) for 65 → 48 bytes. No float field, so JSON's NaN question does not arise.


def dump_summary(summary: Summary) -> bytes:
    return json.dumps(
        [
            summary.workflow,
            summary.category,
            summary.township,
            summary.level,
            list(summary.overdue),
            summary.open_problems,
            summary.problems,
            summary.rectified,
            None if summary.next_check is None else {"d": summary.next_check.isoformat()},
        ],
        ensure_ascii=False,
    ).encode()


def load_summary(raw: bytes) -> Summary:
    try:
        w, c, t, level, overdue, open_problems, problems, rectified, check = json.loads(raw)
        return Summary(
            w, c, t, level, tuple(overdue), open_problems, problems, rectified,
            None if check is None else date.fromisoformat(check["d"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise RowFormatError(f"JSON summary: {type(exc).__name__}: {exc}") from exc
