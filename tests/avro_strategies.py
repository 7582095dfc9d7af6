"""Hypothesis strategies that generate any record a contract schema admits."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from hypothesis import strategies as st

UTC = dt.UTC
TIMESTAMPS = st.datetimes(
    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))  # millisecond precision
DATES = st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2100, 1, 1))
TEXT = st.text(max_size=20)


def records(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Records valid under the parsed record `schema`."""
    return _strategy(schema, {})


def _strategy(schema: Any, named: dict[str, Any]) -> st.SearchStrategy:
    if isinstance(schema, str):
        if schema in named:
            return st.deferred(lambda: _strategy(named[schema], named))
        return _PRIMITIVES[schema]
    if isinstance(schema, list):
        return st.one_of([_strategy(branch, named) for branch in schema])
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical == "uuid":
        return st.uuids().map(str)
    if logical == "timestamp-millis":
        return TIMESTAMPS
    if logical == "date":
        return DATES
    if kind == "record":
        named[schema["name"]] = schema
        return st.fixed_dictionaries(
            {f["name"]: _strategy(f["type"], named) for f in schema["fields"]}
        )
    if kind == "enum":
        named[schema["name"]] = schema
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(_strategy(schema["items"], named), max_size=3)
    if kind == "map":
        return st.dictionaries(TEXT, _strategy(schema["values"], named), max_size=3)
    return _strategy(kind, named)


_PRIMITIVES: dict[str, st.SearchStrategy] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "double": st.floats(allow_nan=False, allow_infinity=False),
    "bytes": st.binary(max_size=20),
    "string": TEXT,
}


def normalised(value: Any) -> Any:
    """Decoded records carry uuid.UUID for uuid strings; compare them as text."""
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
