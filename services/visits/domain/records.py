"""JSON from a client → a contract record: server-set fields, conversion, checks, problem lists.

Pure: no I/O, no clock of its own (the caller passes `now`). A client sends `event_id`,
`occurred_at` and the event's own fields; `recorded_at`, `source` and `actor` are set here from
the caller's identity, so a client cannot claim to be someone else. Problems are (field path,
problem) pairs that never echo a value: values may be personal data. The conversion of JSON
forms (timestamps, dates, UUIDs, defaults) is `conversion.py`'s; the domain checks
`validation.py`'s.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from services.contract.catalogue import Catalogue
from services.contract.codec import Codec
from services.contract.inputs import EventKind
from services.contract.personal import PERSONAL_FIELDS
from services.visits.domain.catalogued import MEASURE_STEP, catalogue_problems
from services.visits.domain.conversion import converted, json_kind, to_millis
from services.visits.domain.grammar import grammar_problems
from services.visits.domain.validation import Problems, domain_problems

SERVER_FIELDS = ("recorded_at", "source", "actor")
SEALED_FIELD = "personal_sealed"  # the server seals `personal` into it after validation
_SERVER_SET = frozenset((*SERVER_FIELDS, SEALED_FIELD))
MAX_PROBLEMS = 50  # named in one record's answer (Outcome.errors maxItems in openapi.json)


@dataclass(frozen=True)
class Origin:
    """Who is writing and through which channel: becomes `actor` and `source`."""

    actor: str
    source: str  # a symbol of the contract's Source enum: APP, FEED, OPERATOR, SERVICE, IMPORT


@dataclass(frozen=True)
class Prepared:
    """The outcome of preparing one client record: a record ready to encode, or problems."""

    record: dict[str, Any] | None
    problems: Problems

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def event_id(self) -> str | None:
        return None if self.record is None else str(self.record["event_id"])


def prepare(
    codec: Codec,
    kind: EventKind,
    body: Any,
    origin: Origin,
    now: dt.datetime,
    future_skew: dt.timedelta,
    catalogue: Catalogue | None = None,
) -> Prepared:
    """Turn one client JSON value into a complete contract record, or say what is wrong.

    Steps: refuse server-set fields; convert ISO-8601 strings to datetimes/dates and fill schema
    defaults; validate against the Avro schema (path-aware), each field's grammar
    (`grammar.py`), the domain rules relating fields (`validation.py`) and, given the measure
    catalogue in force, a measure step's measure and pool (`catalogued.py`): every problem of
    the record in one answer.
    """
    if not isinstance(body, dict):
        return Prepared(None, [("", f"expected a JSON object, got {json_kind(body)}")])
    event_type = kind.event_type
    problems: Problems = [
        (name, "set by the server from your token; do not send it")
        for name in SERVER_FIELDS
        if name in body
    ]
    sealed_here = event_type in PERSONAL_FIELDS
    if sealed_here and SEALED_FIELD in body:
        problems.append((SEALED_FIELD, "sealed by the server; send the plain `personal` object"))
    schema = codec.registry.schema(event_type).parsed
    conversion: Problems = []
    # The converter copies what it converts, so a body without server fields (the common
    # case) is handed over as it is, not copied first.
    client = (
        body
        if not problems and not (sealed_here and SEALED_FIELD in body)
        else {
            k: v
            for k, v in body.items()
            if k not in SERVER_FIELDS and not (sealed_here and k == SEALED_FIELD)
        }
    )
    record = converted(schema, client, conversion)
    if record is body:  # a schema with nothing to convert returns the value itself
        record = dict(body)
    record.update(recorded_at=to_millis(now), source=origin.source, actor=origin.actor)
    problems.extend(conversion)
    invalid = codec.validate(event_type, record)
    if conversion:
        bad_paths = [path for path, _ in conversion]
        invalid = [
            (path, problem)
            for path, problem in invalid
            if not any(_within(path, bad) for bad in bad_paths)
        ]
    problems.extend(invalid)
    # Every problem at once: the grammar of each well-typed value, then the rules relating
    # fields (each skipped when its fields are missing or ill-typed), never a field twice.
    for found in (
        grammar_problems(schema, record, _SERVER_SET),
        domain_problems(event_type, record, now, future_skew),
        catalogue_problems(record, catalogue)
        if catalogue is not None and event_type == MEASURE_STEP
        else [],
    ):
        if not found:
            continue
        named = {path for path, _ in problems}
        problems.extend((path, problem) for path, problem in found if path not in named)
    if problems:
        return Prepared(None, bounded(problems))
    return Prepared(record, [])


def bounded(problems: Problems) -> Problems:
    """At most MAX_PROBLEMS, the last saying how many more there were: an answer's size has a
    documented maximum (a record with 100,000 unknown fields gets a short answer)."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    hidden = len(problems) - MAX_PROBLEMS + 1
    return [*problems[: MAX_PROBLEMS - 1], ("", f"{hidden} more problems not listed")]


def content_digest(kind: EventKind, record: dict[str, Any]) -> str:
    """SHA-256 of what a client said in a record (not when we received it).

    Two sends of one event differ only in `recorded_at`; their digests are equal. A different
    digest under the same `event_id` is a client bug (an id reused for another record).
    """
    said = {k: v for k, v in record.items() if k != "recorded_at"}
    # Only compared within this process (see RecentEvents), so orjson's forms of times and
    # UUIDs need not match any other serialisation; it is ~10x the speed of json.dumps here.
    text = orjson.dumps([kind.event_type, said], option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(text).hexdigest()


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")
