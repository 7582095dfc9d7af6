"""JSON bytes for monitoring's table rows: the household state and what was last emitted."""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from services.monitoring.domain import events
from services.monitoring.domain.row import Row, Summary
from services.monitoring.domain.state import LIMITS, HouseholdState

FORMAT = 1
_CLASSES = {
    cls.__name__: cls
    for cls in (
        events.Members,
        events.Member,
        events.Expense,
        events.Diagnosis,
        events.BaselineIncome,
        events.Check,
        events.VisitProblem,
        events.UnsoldProduce,
        events.FiveVisits,
        *events.EVENT_TYPES,
    )
}
_FIELDS = {name: tuple(f.name for f in dataclasses.fields(cls)) for name, cls in _CLASSES.items()}


class RowFormatError(ValueError):
    """A stored row this code cannot read."""


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if dataclasses.is_dataclass(value):
        name = type(value).__name__
        return {"_": name, "f": [_encode(getattr(value, f)) for f in _FIELDS[name]]}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, dict):
        if "t" in value:
            return datetime.fromisoformat(value["t"])
        if "d" in value:
            return date.fromisoformat(value["d"])
        cls = _CLASSES.get(value.get("_"))
        if cls is None:
            raise RowFormatError(f"unknown record type {value.get('_')!r}")
        return cls(*(_decode(v) for v in value["f"]))
    return value


def dump_row(row: Row, fragment: Callable[[Any], str] | None = None) -> bytes:
    """The row as JSON bytes; `fragment` (an event's JSON text) may come from a cache."""
    encode = fragment or _fragment
    s = row.state
    head = json.dumps(
        {
            "format": FORMAT,
            "household_id": s.household_id,
            "seen": sorted(s.seen),
            "last_occurred_at": _encode(s.last_occurred_at),
            "chain": [list(link) for link in row.chain],
            "emitted_digest": row.emitted_digest,
            "emitted_event_id": row.emitted_event_id,
            "emitted_as_of": _encode(row.emitted_as_of),
            "emitted_chain_hash": row.emitted_chain_hash,
            "emitted_recorded_at": _encode(row.emitted_recorded_at),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    kinds = ",".join(
        f'"{kind}":[' + ",".join(encode(e) for e in getattr(s, kind)) + "]" for kind in LIMITS
    )
    return (head[:-1] + ',"events":{' + kinds + "}}").encode()


def _fragment(event: Any) -> str:
    return json.dumps(_encode(event), ensure_ascii=False, separators=(",", ":"))


def load_row(raw: bytes) -> Row:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise RowFormatError(f"not JSON: {exc}") from exc
    if data.get("format") != FORMAT:
        raise RowFormatError(f"row format {data.get('format')!r}, expected {FORMAT}")
    state = HouseholdState(
        household_id=data["household_id"],
        seen=frozenset(data["seen"]),
        last_occurred_at=_decode(data["last_occurred_at"]),
        **{kind: _decode(data["events"][kind]) for kind in LIMITS},
    )
    chain = tuple((t, p, o, h) for t, p, o, h in data["chain"])
    return Row(
        state,
        chain,
        data["emitted_digest"],
        data["emitted_event_id"],
        # rows written before these fields existed re-send with the current as_of and chain
        _decode(data.get("emitted_as_of")),
        data.get("emitted_chain_hash", ""),
        _decode(data.get("emitted_recorded_at")),
    )


class RowCache:
    """Skips JSON work on the hot path: the rows this worker wrote last (checked against the
    stored bytes, so a row recovered or changed elsewhere is decoded afresh) and each event's
    JSON text by household and event id. Not by event id alone: ids come from clients, and two
    households' different events may carry the same one (a buggy or hostile client; the fault
    harness's overload and hostile scenarios did) — keyed by id alone, the second household's
    row was written with the first one's event, a corruption its next recovery made real. Within
    a household an id names one event (the fold ignores a seen id). Bounded; one per app."""

    def __init__(self, rows: int = 20_000, fragments: int = 200_000):
        self.rows: OrderedDict[bytes, tuple[bytes, Row]] = OrderedDict()
        self.fragments: OrderedDict[tuple[str, str], str] = OrderedDict()
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

    def _fragment(self, event: Any) -> str:
        key = (event.household_id, event.event_id)
        text = self.fragments.get(key)
        if text is None:
            text = self.fragments[key] = _fragment(event)
            if len(self.fragments) > self.max_fragments:
                self.fragments.popitem(last=False)
        return text

    def _remember(self, key: bytes, raw: bytes, row: Row) -> None:
        self.rows[key] = (raw, row)
        self.rows.move_to_end(key)
        if len(self.rows) > self.max_rows:
            self.rows.popitem(last=False)


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
            _encode(summary.next_check),
        ],
        ensure_ascii=False,
    ).encode()


def load_summary(raw: bytes) -> Summary:
    w, c, t, level, overdue, open_problems, problems, rectified, check = json.loads(raw)
    return Summary(
        w, c, t, level, tuple(overdue), open_problems, problems, rectified, _decode(check)
    )
