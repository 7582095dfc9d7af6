"""The JSON table rows monitoring workers wrote before the Avro rows: read only.

A deployed worker's changelog topics hold them, and recovery restores them as they are, so the
worker reads them until each household's row is written again (in Avro, `table_codec`). Errors
are the plain ValueError, KeyError or TypeError of what is wrong; `table_codec` names the row.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from typing import Any

from services.monitoring.domain import events
from services.monitoring.domain.row import Row
from services.monitoring.domain.state import LIMITS, HouseholdState

FORMAT = 1  # the JSON rows' "format"
CLASSES = {
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
FIELDS = {name: tuple(f.name for f in dataclasses.fields(cls)) for name, cls in CLASSES.items()}


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, dict):
        if "t" in value:
            return datetime.fromisoformat(value["t"])
        if "d" in value:
            return date.fromisoformat(value["d"])
        cls = CLASSES.get(value.get("_"))
        if cls is None:
            raise ValueError(f"unknown record type {value.get('_')!r}")
        return cls(*(_decode(v) for v in value["f"]))
    return value


def load_row(raw: bytes) -> Row:
    """A JSON row (`{"format": 1, ...}`) as the code before the Avro rows read it."""
    data = json.loads(raw)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"format {found!r}, this worker reads JSON rows of format {FORMAT}")
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
