"""JSON from a client → a contract record: type conversion, server-set fields, problem lists.

Pure: no I/O, no clock of its own (the caller passes `now`). A client sends `event_id`,
`occurred_at` and the event's own fields; `recorded_at`, `source` and `actor` are set here from
the caller's identity, so a client cannot claim to be someone else. Problems are (field path,
problem) pairs that never echo a value: values may be personal data.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from services.contract.codec import Codec
from services.contract.inputs import EventKind
from services.contract.personal import PERSONAL_FIELDS
from services.contract.validation import named_types
from services.visits.domain.validation import DOMAIN_CHECKS, Problems

SERVER_FIELDS = ("recorded_at", "source", "actor")
SEALED_FIELD = "personal_sealed"  # the server seals `personal` into it after validation
TIMESTAMP_EXAMPLE = "2020-05-16T09:30:00+08:00"
MAX_TIMESTAMP_TEXT = 64


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
) -> Prepared:
    """Turn one client JSON value into a complete contract record, or say what is wrong.

    Steps: refuse server-set fields; convert ISO-8601 strings to datetimes/dates and fill schema
    defaults; validate against the Avro schema (path-aware); then the domain checks of
    `validation.py`, which only run on a record whose types are right.
    """
    if not isinstance(body, dict):
        return Prepared(None, [("", f"expected a JSON object, got {_json_kind(body)}")])
    problems: Problems = [
        (name, "set by the server from your token; do not send it")
        for name in SERVER_FIELDS
        if name in body
    ]
    sealed_here = kind.event_type in PERSONAL_FIELDS
    if sealed_here and SEALED_FIELD in body:
        problems.append((SEALED_FIELD, "sealed by the server; send the plain `personal` object"))
    client = {
        k: v
        for k, v in body.items()
        if k not in SERVER_FIELDS and not (sealed_here and k == SEALED_FIELD)
    }
    schema = codec.registry.schema(kind.event_type).parsed
    conversion: Problems = []
    record = _converted(schema, client, conversion)
    record.update(recorded_at=_to_millis(now), source=origin.source, actor=origin.actor)
    problems.extend(conversion)
    bad_paths = [path for path, _ in conversion]
    problems.extend(
        (path, problem)
        for path, problem in codec.validate(kind.event_type, record)
        if not any(_within(path, bad) for bad in bad_paths)
    )
    if problems:
        return Prepared(None, problems)
    checks: Callable[[dict[str, Any], dt.datetime, dt.timedelta], Problems] = DOMAIN_CHECKS[
        kind.event_type
    ]
    problems = checks(record, now, future_skew)
    if problems:
        return Prepared(None, problems)
    return Prepared(record, [])


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


def to_json(record: dict[str, Any]) -> dict[str, Any]:
    """A record as JSON-ready values (timestamps and dates as ISO-8601, UUIDs as text)."""
    return _jsonable(record)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


Convert = Callable[[Any], Any]
_CONVERTERS: dict[int, tuple[Any, Convert | None]] = {}  # id(schema) → (schema, converter)
_IMMUTABLE = (type(None), bool, int, float, str)


class _Unusual(Exception):
    """The compiled converter met something only `_convert` knows how to report or mirror."""


def _converted(schema: Any, value: Any, problems: Problems) -> Any:
    """`_convert(schema, value, "", {}, problems)`, by a converter compiled once per schema
    when the record is well-formed (the common case); anything unusual (a bad timestamp, a
    missing field, an object where a list belongs) is left to `_convert`, which names it."""
    entry = _CONVERTERS.get(id(schema))
    if entry is None or entry[0] is not schema:
        if len(_CONVERTERS) > 256:  # schemas are few and long-lived; bound it all the same
            _CONVERTERS.clear()
        entry = _CONVERTERS[id(schema)] = (schema, _compiled_converter(schema))
    converter = entry[1]
    if converter is not None:
        try:
            return converter(value)
        except _Unusual:
            pass
    return _convert(schema, value, "", {}, problems)


def _compiled_converter(schema: Any) -> Convert | None:
    """A converter equal to `_convert` on the values it accepts (it raises _Unusual on the
    others), or None when the schema defines a named type where a value may skip it and
    refers to it later: `_convert` learns names from the value, this one from the schema."""
    skippable, referenced = named_types(schema)
    if skippable & referenced:
        return None
    return _compile(schema, {}, referenced) or (lambda value: value)


def _compile(schema: Any, named: dict[str, Convert | None], referenced: set[str]) -> Convert | None:
    """None means identity: the value is taken as it is."""
    if isinstance(schema, str):
        if schema not in named:
            return None
        return lambda value: _apply(named[schema], value)  # named later: a type may recur
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(branches) != 1:
            return None
        branch = _compile(branches[0], named, referenced)
        if branch is None:
            return None
        return lambda value: None if value is None else branch(value)
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical in ("timestamp-millis", "timestamp-micros"):
        return _checked(_timestamp)
    if logical == "date":
        return _checked(_date)
    if logical == "uuid":
        return _uuid
    if kind in ("enum", "fixed"):
        named[schema["name"]] = None
        return None
    if kind == "record":
        return _compile_record(schema, named, referenced)
    if kind == "array":
        items = _compile(schema["items"], named, referenced)

        def array(value: Any) -> Any:
            if not isinstance(value, list):
                raise _Unusual
            return list(value) if items is None else [items(item) for item in value]

        return array
    return None


def _compile_record(
    schema: dict, named: dict[str, Convert | None], referenced: set[str]
) -> Convert:
    # (name, converter, has a default, the default, defines a type referred to elsewhere)
    fields: list[tuple[str, Convert | None, bool, Any, bool]] = []

    def record(value: Any) -> Any:
        if not isinstance(value, dict):
            raise _Unusual
        converted = dict(value)
        for name, convert, has_default, default, defines in fields:
            if name in converted:
                if convert is not None:
                    converted[name] = convert(converted[name])
            elif has_default:
                converted[name] = (
                    default if isinstance(default, _IMMUTABLE) else copy.deepcopy(default)
                )
            elif defines:
                # `_convert` would not learn the type here, and converts later uses of it
                # differently; the value is invalid anyway (validation names the field).
                raise _Unusual
        return converted

    named[schema["name"]] = record
    for field in schema["fields"]:
        defined, _ = named_types(field["type"], skip=True)
        fields.append(
            (
                field["name"],
                _compile(field["type"], named, referenced),
                "default" in field,
                field.get("default"),
                bool(defined & referenced),
            )
        )
    return record


def _apply(convert: Convert | None, value: Any) -> Any:
    return value if convert is None else convert(value)


def _checked(convert: Callable[[Any, str, Problems], Any]) -> Convert:
    def checked(value: Any) -> Any:
        problems: Problems = []
        converted = convert(value, "", problems)
        if problems:
            raise _Unusual
        return converted

    return checked


def _convert(schema: Any, value: Any, path: str, named: dict[str, Any], problems: Problems) -> Any:
    """Convert JSON forms to Avro's Python forms and fill defaults; leave the rest to validate."""
    if isinstance(schema, str):
        return _convert(named[schema], value, path, named, problems) if schema in named else value
    if isinstance(schema, list):
        if value is None:
            return None
        branches = [b for b in schema if b != "null"]
        if len(branches) == 1:
            return _convert(branches[0], value, path, named, problems)
        return value
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical in ("timestamp-millis", "timestamp-micros"):
        return _timestamp(value, path, problems)
    if logical == "date":
        return _date(value, path, problems)
    if logical == "uuid":
        return _uuid(value)
    if kind in ("record", "enum", "fixed"):
        named[schema["name"]] = schema
    if kind == "record" and isinstance(value, dict):
        prefix = f"{path}." if path else ""
        converted = dict(value)
        for field in schema["fields"]:
            name = field["name"]
            if name in converted:
                converted[name] = _convert(
                    field["type"], converted[name], prefix + name, named, problems
                )
            elif "default" in field:
                converted[name] = copy.deepcopy(field["default"])
        return converted
    if kind == "array" and isinstance(value, list):
        return [
            _convert(schema["items"], item, f"{path}[{index}]", named, problems)
            for index, item in enumerate(value)
        ]
    return value


def _timestamp(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, str):
        problems.append((path, f"expected an ISO-8601 timestamp string, got {_json_kind(value)}"))
        return value
    try:
        if len(value) > MAX_TIMESTAMP_TEXT:
            raise ValueError
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        problems.append((path, f"expected an ISO-8601 timestamp, e.g. {TIMESTAMP_EXAMPLE}"))
        return value
    if parsed.tzinfo is None:
        problems.append((path, f"timestamp needs a UTC offset, e.g. {TIMESTAMP_EXAMPLE}"))
        return value
    return _to_millis(parsed)


def _date(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, str):
        problems.append((path, f"expected a date string YYYY-MM-DD, got {_json_kind(value)}"))
        return value
    try:
        if len(value) != len("2020-05-16"):
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        problems.append((path, "expected a date YYYY-MM-DD"))
        return value


def _uuid(value: Any) -> Any:
    # Canonical lower-case text, so the same event id always makes the same idempotency key.
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return value  # validation reports it
    return value


def _to_millis(moment: dt.datetime) -> dt.datetime:
    # Kafka records carry milliseconds; truncating here makes what we answer equal what we store.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _json_kind(value: Any) -> str:
    return {
        type(None): "null",
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)
