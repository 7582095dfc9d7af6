"""JSON forms → Avro's Python forms: timestamps, dates and UUIDs converted, schema defaults filled.

Pure. `converted` runs a converter compiled once per schema (the common, well-formed case) and
falls back to `convert`, the path-aware walker that names each problem; a hypothesis test
(tests/unit/visits/test_compiled_checks.py) keeps the two equal. What is left unconverted is for
the Avro validation to report.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Any

from services.contract.validation import named_types
from services.visits.domain.grammar import DATE_PATTERN, EARLIEST_DATE, TIMESTAMP_PATTERN
from services.visits.domain.validation import Problems

TIMESTAMP_EXAMPLE = "2020-05-16T09:30:00+08:00"
MAX_TIMESTAMP_TEXT = 64
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_DATE = re.compile(DATE_PATTERN)
TIMESTAMP_RULE = (
    f"expected an ISO-8601 timestamp (RFC 3339) with a UTC offset, on or after {EARLIEST_DATE} as "
    f"written, e.g. {TIMESTAMP_EXAMPLE}"
)
DATE_RULE = f"expected a date YYYY-MM-DD on or after {EARLIEST_DATE}"

Convert = Callable[[Any], Any]
_CONVERTERS: dict[int, tuple[Any, Convert | None]] = {}  # id(schema) → (schema, converter)
_IMMUTABLE = (type(None), bool, int, float, str)


class _Unusual(Exception):
    """The compiled converter met something only `convert` knows how to report or mirror."""


def converted(schema: Any, value: Any, problems: Problems) -> Any:
    """`convert(schema, value, "", {}, problems)`, by a converter compiled once per schema
    when the record is well-formed (the common case); anything unusual (a bad timestamp, a
    missing field, an object where a list belongs) is left to `convert`, which names it."""
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
    return convert(schema, value, "", {}, problems)


def _compiled_converter(schema: Any) -> Convert | None:
    """A converter equal to `convert` on the values it accepts (it raises _Unusual on the
    others), or None when the schema defines a named type where a value may skip it and
    refers to it later: `convert` learns names from the value, this one from the schema."""
    skippable, referenced = named_types(schema)
    if skippable & referenced:
        return None
    return _compile(schema, {}, referenced) or (lambda value: value)


def _compile(schema: Any, named: dict[str, Convert | None], referenced: set[str]) -> Convert | None:
    """None means identity: the value is taken as it is."""
    if isinstance(schema, str):
        if schema in ("int", "long"):
            return _whole
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
    if kind in ("int", "long"):
        return _whole
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
                # `convert` would not learn the type here, and converts later uses of it
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


def convert(schema: Any, value: Any, path: str, named: dict[str, Any], problems: Problems) -> Any:
    """Convert JSON forms to Avro's Python forms and fill defaults; leave the rest to validate."""
    if isinstance(schema, str):
        if schema in ("int", "long"):
            return _whole(value)
        return convert(named[schema], value, path, named, problems) if schema in named else value
    if isinstance(schema, list):
        if value is None:
            return None
        branches = [b for b in schema if b != "null"]
        if len(branches) == 1:
            return convert(branches[0], value, path, named, problems)
        return value
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical in ("timestamp-millis", "timestamp-micros"):
        return _timestamp(value, path, problems)
    if logical == "date":
        return _date(value, path, problems)
    if logical == "uuid":
        return _uuid(value)
    if kind in ("int", "long"):
        return _whole(value)
    if kind in ("record", "enum", "fixed"):
        named[schema["name"]] = schema
    if kind == "record" and isinstance(value, dict):
        prefix = f"{path}." if path else ""
        converted = dict(value)
        for field in schema["fields"]:
            name = field["name"]
            if name in converted:
                converted[name] = convert(
                    field["type"], converted[name], prefix + name, named, problems
                )
            elif "default" in field:
                converted[name] = copy.deepcopy(field["default"])
        return converted
    if kind == "array" and isinstance(value, list):
        return [
            convert(schema["items"], item, f"{path}[{index}]", named, problems)
            for index, item in enumerate(value)
        ]
    return value


def _whole(value: Any) -> Any:
    # JSON has one number type: 312.0 is the integer 312 to JSON Schema (the published
    # document's "type": "integer") and to every JSON library; 312.5 stays for validation.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _timestamp(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, str):
        problems.append((path, f"expected an ISO-8601 timestamp string, got {json_kind(value)}"))
        return value
    # The grammar's pattern first (what the OpenAPI document publishes): Python would also
    # take forms the document does not allow (no offset, a space, the basic format).
    try:
        if len(value) > MAX_TIMESTAMP_TEXT or not _TIMESTAMP.fullmatch(value):
            raise ValueError
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        problems.append((path, TIMESTAMP_RULE))
        return value
    return to_millis(parsed)


def _date(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, str):
        problems.append((path, f"expected a date string YYYY-MM-DD, got {json_kind(value)}"))
        return value
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        problems.append((path, DATE_RULE))
        return value


def _uuid(value: Any) -> Any:
    # Canonical lower-case text, so the same event id always makes the same idempotency key.
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return value  # validation reports it
    return value


def to_millis(moment: dt.datetime) -> dt.datetime:
    # Kafka records carry milliseconds; truncating here makes what we answer equal what we store.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def json_kind(value: Any) -> str:
    return {
        type(None): "null",
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)
