"""A cadre's work list: its households with the next visit due, and the problems it must
rectify; and the sync-down document field apps download (incremental by cursor, with an ETag).

The cursor is the database time the previous answer was made, less SYNC_OVERLAP: a row is
stamped with its transaction's start time, so a projector transaction that began before a sync
and committed after it would otherwise be missed. Rows inside the overlap come again; the app
upserts by id, so a repeat changes nothing. Every answer lists all the cadre's household ids,
so the app drops households no longer its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

SYNC_OVERLAP = dt.timedelta(seconds=120)
VISITED = ("monitored", "elimination_proposed")  # households a pairing cadre visits


class BadCursor(ValueError):
    """A `since` cursor this server did not make."""


# A cursor is the moment as whole microseconds since 1970-01-01 UTC, in decimal: the OpenAPI
# document states its grammar (this pattern) exactly, so a client or a fuzzer can tell a cursor
# from anything else, and every text of the pattern is a moment (16 digits reach year 2286).
CURSOR_PATTERN = "^[0-9]{1,16}$"
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def encode_cursor(moment: dt.datetime) -> str:
    return str(max(0, (moment - SYNC_OVERLAP - _EPOCH) // dt.timedelta(microseconds=1)))


def decode_cursor(text: str) -> dt.datetime:
    if not _CURSOR.fullmatch(text):
        raise BadCursor("not a cursor this API returned")
    return _EPOCH + dt.timedelta(microseconds=int(text))


def visit_due(
    row: Mapping[str, Any], visit_days: Mapping[str, int], today: dt.date
) -> dt.date | None:
    """When a monitored household's next visit is due (its policy's interval after the last
    visit; today when it was never visited); None for one that needs no visits."""
    if row["workflow_status"] not in VISITED:
        return None
    days = visit_days.get(row["policy_version"] or "")
    if row["last_visit_at"] is None or days is None:
        return today
    return row["last_visit_at"].date() + dt.timedelta(days=days)


def jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def etag_of(document: Mapping[str, Any]) -> str:
    """A strong ETag over the document without its cursor (the same data, the same tag)."""
    content = {k: v for k, v in document.items() if k != "cursor"}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:32]}"'
