"""Validate a datum against a parsed Avro schema, naming each bad field by its path.

fastavro's own validator names nested fields by record type (`shouwang.events.Check.status`),
which a field app cannot map back to its JSON; this one reports `checks.water.status`.
Values are never echoed: they may be personal data.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from typing import Any

INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)
Problems = list[tuple[str, str]]
MAX_ECHOED_KEY = 64  # characters of an unknown field's name named in a problem
PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))


def problems_in(schema: Any, datum: Any, path: str = "") -> Problems:
    """Every (field path, problem) for `datum` under the parsed `schema`; empty when valid."""
    return _check(schema, datum, path, {})


def _check(schema: Any, datum: Any, path: str, named: dict[str, Any]) -> Problems:
    if isinstance(schema, str):
        if schema in named:
            return _check(named[schema], datum, path, named)
        return _primitive(schema, datum, path)
    if isinstance(schema, list):
        return _union(schema, datum, path, named)
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical:
        return _logical(logical, kind, datum, path)
    if kind == "record":
        named[schema["name"]] = schema
        return _record(schema, datum, path, named)
    if kind == "enum":
        named[schema["name"]] = schema
        if datum in schema["symbols"]:
            return []
        return [(path, "expected one of " + ", ".join(schema["symbols"]))]
    if kind == "array":
        if not isinstance(datum, list | tuple):
            return [(path, f"expected an array, got {_kind(datum)}")]
        found: Problems = []
        for index, item in enumerate(datum):
            found.extend(_check(schema["items"], item, f"{path}[{index}]", named))
        return found
    if kind == "map":
        if not isinstance(datum, dict):
            return [(path, f"expected an object, got {_kind(datum)}")]
        found = []
        for key, value in datum.items():
            if not isinstance(key, str):
                found.append((path, "map keys must be strings"))
            found.extend(_check(schema["values"], value, f"{path}.{key}", named))
        return found
    if kind == "fixed":
        named[schema["name"]] = schema
        if isinstance(datum, bytes) and len(datum) == schema["size"]:
            return []
        return [(path, f"expected {schema['size']} bytes")]
    return _primitive(kind, datum, path)


def _record(schema: dict, datum: Any, path: str, named: dict) -> Problems:
    if not isinstance(datum, dict):
        return [(path, f"expected an object, got {_kind(datum)}")]
    prefix = f"{path}." if path else ""
    found: Problems = []
    known = set()
    for field in schema["fields"]:
        name = field["name"]
        known.add(name)
        if name not in datum:
            if "default" not in field:
                found.append((prefix + name, "required field missing"))
            _learn(field["type"], named)  # later fields may refer to a type defined here
            continue
        found.extend(_check(field["type"], datum[name], prefix + name, named))
    for extra in sorted(str(k) for k in datum if k not in known):
        # A client's own key, echoed: bounded, so that an answer stays small.
        shown = extra if len(extra) <= MAX_ECHOED_KEY else extra[:MAX_ECHOED_KEY] + "…"
        found.append((prefix + shown, "unknown field"))
    return found


def _learn(schema: Any, named: dict) -> None:
    """Record the named types `schema` defines, as a walk through a value would."""
    if isinstance(schema, list):
        for branch in schema:
            _learn(branch, named)
    elif isinstance(schema, dict):
        if schema["type"] in ("record", "enum", "fixed"):
            named.setdefault(schema["name"], schema)
        for field in schema.get("fields", ()):
            _learn(field["type"], named)
        for inner in ("items", "values"):
            if inner in schema:
                _learn(schema[inner], named)


def _union(branches: list, datum: Any, path: str, named: dict) -> Problems:
    best: Problems | None = None
    for branch in branches:
        found = _check(branch, datum, path, named)
        if not found:
            return []
        # Report the problems of the branch the datum came closest to (e.g. the record branch
        # of ["null", Record] when an object was sent), not a generic "no branch matched".
        if branch != "null" and (best is None or len(found) < len(best)):
            best = found
    if datum is None:
        return [(path, "must not be null")]
    return best or [(path, "does not match any allowed type")]


def _primitive(kind: str, datum: Any, path: str) -> Problems:
    if kind == "null":
        return [] if datum is None else [(path, "expected null")]
    if kind == "boolean":
        return (
            [] if isinstance(datum, bool) else [(path, f"expected true/false, got {_kind(datum)}")]
        )
    if kind in ("int", "long"):
        if isinstance(datum, bool) or not isinstance(datum, int):
            return [(path, f"expected an integer, got {_kind(datum)}")]
        low, high = INT_RANGE if kind == "int" else LONG_RANGE
        return [] if low <= datum <= high else [(path, f"integer out of range {low}..{high}")]
    if kind in ("float", "double"):
        if isinstance(datum, bool) or not isinstance(datum, int | float):
            return [(path, f"expected a number, got {_kind(datum)}")]
        return [] if math.isfinite(datum) else [(path, "expected a finite number")]
    if kind == "string":
        return [] if isinstance(datum, str) else [(path, f"expected a string, got {_kind(datum)}")]
    if kind == "bytes":
        return [] if isinstance(datum, bytes) else [(path, f"expected bytes, got {_kind(datum)}")]
    return [(path, f"unsupported schema type {kind}")]


def _logical(logical: str, kind: str, datum: Any, path: str) -> Problems:
    if logical == "uuid":
        if isinstance(datum, uuid.UUID):
            return []
        if isinstance(datum, str):
            try:
                uuid.UUID(datum)
                return []
            except ValueError:
                pass
        return [(path, "expected a UUID")]
    if logical in ("timestamp-millis", "timestamp-micros"):
        if isinstance(datum, dt.datetime):
            if datum.tzinfo is None:
                return [(path, "timestamp needs a time zone offset")]
            return []
        if isinstance(datum, int) and not isinstance(datum, bool):
            return _primitive(kind, datum, path)
        return [(path, "expected a timestamp with a time zone offset")]
    if logical == "date":
        if isinstance(datum, dt.date) and not isinstance(datum, dt.datetime):
            return []
        return _primitive(kind, datum, path) and [(path, "expected a date")]
    return _primitive(kind, datum, path)


def _kind(datum: Any) -> str:
    return {
        type(None): "null",
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(datum), type(datum).__name__)


Valid = Callable[[Any], bool]


def validity(schema: Any) -> Valid:
    """A fast yes/no version of `problems_in` for `schema`, built once and reused.

    True only when `problems_in` would find nothing; on False the caller asks `problems_in`
    which fields are wrong. Nothing is formatted on the way, which is most of the cost of
    checking a valid record. `problems_in` learns named types as it walks the datum; this one
    resolves them once from the schema, which is the same thing unless a name is first
    defined where a datum may skip it (under a union, an array, a map or a defaulted field).
    Such schemas get `problems_in` itself.
    """
    if _references_skippable_definition(schema):
        return lambda datum: not problems_in(schema, datum)
    return _compile(schema, {})


def _compile(schema: Any, named: dict[str, Valid]) -> Valid:
    if isinstance(schema, str):
        if schema in named:
            # Looked up when called: a recursive type refers to itself before it is complete.
            return lambda datum: named[schema](datum)
        return _primitive_validity(schema)
    if isinstance(schema, list):
        branches = [_compile(branch, named) for branch in schema]
        if len(branches) == 2:  # ["null", T], the usual optional field
            first, second = branches
            return lambda datum: first(datum) or second(datum)
        return lambda datum: any(valid(datum) for valid in branches)
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical:
        return _logical_validity(logical, kind)
    if kind == "record":
        return _record_validity(schema, named)
    if kind == "enum":
        symbols = schema["symbols"]

        def enum(datum: Any) -> bool:
            return datum in symbols

        named[schema["name"]] = enum
        return enum
    if kind == "array":
        items = _compile(schema["items"], named)
        return lambda datum: isinstance(datum, list | tuple) and all(items(d) for d in datum)
    if kind == "map":
        values = _compile(schema["values"], named)
        return lambda datum: (
            isinstance(datum, dict)
            and all(isinstance(k, str) and values(v) for k, v in datum.items())
        )
    if kind == "fixed":
        size = schema["size"]

        def fixed(datum: Any) -> bool:
            return isinstance(datum, bytes) and len(datum) == size

        named[schema["name"]] = fixed
        return fixed
    return _primitive_validity(kind)


def _record_validity(schema: dict, named: dict[str, Valid]) -> Valid:
    fields: list[tuple[str, Valid, bool]] = []
    known = frozenset(field["name"] for field in schema["fields"])

    def record(datum: Any) -> bool:
        if not isinstance(datum, dict) or not known.issuperset(datum):
            return False
        for name, valid, optional in fields:
            if name in datum:
                if not valid(datum[name]):
                    return False
            elif not optional:
                return False
        return True

    named[schema["name"]] = record  # before the fields: they may refer to the record itself
    for field in schema["fields"]:
        fields.append((field["name"], _compile(field["type"], named), "default" in field))
    return record


def _primitive_validity(kind: str) -> Valid:
    if kind in ("int", "long"):
        low, high = INT_RANGE if kind == "int" else LONG_RANGE
        return lambda d: type(d) is not bool and isinstance(d, int) and low <= d <= high
    if kind == "string":
        return lambda datum: isinstance(datum, str)
    if kind == "null":
        return lambda datum: datum is None
    if kind == "boolean":
        return lambda datum: isinstance(datum, bool)
    return lambda datum: not _primitive(kind, datum, "")


def _logical_validity(logical: str, kind: str) -> Valid:
    if logical in ("timestamp-millis", "timestamp-micros"):
        fallback = _primitive_validity(kind)

        def timestamp(datum: Any) -> bool:
            if isinstance(datum, dt.datetime):
                return datum.tzinfo is not None
            return type(datum) is not bool and isinstance(datum, int) and fallback(datum)

        return timestamp
    if logical == "date":
        fallback = _primitive_validity(kind)
        return lambda datum: (
            (isinstance(datum, dt.date) and not isinstance(datum, dt.datetime)) or fallback(datum)
        )
    return lambda datum: not _logical(logical, kind, datum, "")


def _references_skippable_definition(schema: Any) -> bool:
    """Whether a named type is referred to by name while its definition sits where a datum
    may not reach it (see `validity`)."""
    skippable, referenced = named_types(schema)
    return bool(skippable & referenced)


def named_types(schema: Any, skip: bool = False) -> tuple[set[str], set[str]]:
    """(names defined where a value may skip them, names referred to) in `schema`; with
    `skip`, every definition (the whole schema may be skipped: a field may be missing).
    Compiled checks and converters fall back to the path-aware code for such schemas."""
    skippable: set[str] = set()
    referenced: set[str] = set()

    def walk(node: Any, skip: bool) -> None:
        if isinstance(node, str):
            if node not in PRIMITIVES:
                referenced.add(node)
            return
        if isinstance(node, list):
            for branch in node:
                walk(branch, skip or len(node) > 1)
            return
        kind = node["type"]
        if kind in ("record", "enum", "fixed") and skip:
            skippable.add(node["name"])
        if kind == "record":
            for field in node["fields"]:
                walk(field["type"], skip or "default" in field)
        elif kind in ("array", "map"):
            walk(node["items" if kind == "array" else "values"], True)

    walk(schema, skip)
    return skippable, referenced
