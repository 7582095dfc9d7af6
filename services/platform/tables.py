"""Avro bytes for the services' own faust table values, under versioned schemas.

The schemas are in `schemas/tables/` (current) and `schemas/tables/history/` (older versions the
code still reads, resolved to the current one, as the contract's are). A value is framed as the
contract's events are (`c3 01`, the writer schema's CRC-64-AVRO fingerprint, the Avro body:
`services.contract.codec`), so a reader knows which version wrote it. They are not part of the
contract between services: each service reads only its own. `writer` and `reader` turn a
service's frozen dataclasses into Avro data and back, driven by the schema (field names are the
dataclasses' attribute names).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from services.contract.codec import HEADER_LENGTH, MAGIC, Codec
from services.contract.errors import ContractError, UnknownSchema
from services.contract.schemas import SchemaRegistry, SchemaVersion

# The table formats are the code's own, not the contract's: always the schemas beside this
# code, whatever SHOUWANG_SCHEMAS_DIR says.
TABLE_SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas" / "tables"


class TableFormatError(ValueError):
    """A stored table value this code cannot read (its schema version and why)."""


@functools.cache
def codec() -> Codec:
    """The table schemas, parsed once per process (on first use, not at import)."""
    return Codec(SchemaRegistry.from_directory(TABLE_SCHEMAS_DIR))


def schema(name: str) -> SchemaVersion:
    """The current version of table schema `name` (a full name)."""
    return codec().registry.current[name]


def named(version: SchemaVersion) -> str:
    """A schema version as error messages name it: short name, version, fingerprint."""
    return (
        f"{version.short_name} v{version.parsed.get('version', '?')} "
        f"(fingerprint {version.fingerprint.hex()})"
    )


def decode(raw: bytes, name: str, what: str) -> tuple[dict[str, Any], SchemaVersion]:
    """The Avro datum of a framed value of schema `name` (resolved to its current version) and
    the version that wrote it; TableFormatError naming the version and why when it cannot."""
    tables = codec()
    if raw[:2] != MAGIC or len(raw) < HEADER_LENGTH:
        raise TableFormatError(
            f"not a {what}: {len(raw)} bytes starting {raw[:2].hex() or '<empty>'}, expected an "
            f"Avro frame (c301 and the schema fingerprint)"
        )
    fingerprint = raw[2:HEADER_LENGTH]
    try:
        decoded = tables.decode(raw, expected=name)
    except UnknownSchema as exc:
        raise TableFormatError(
            f"{what} written with table schema fingerprint {fingerprint.hex()}, not a version "
            f"this code reads (it writes {named(schema(name))}): written by newer code?"
        ) from exc
    except ContractError as exc:
        writer = tables.registry.by_fingerprint[fingerprint]
        raise TableFormatError(f"{what} of {named(writer)}, {len(raw)} bytes: {exc}") from exc
    return decoded.record, tables.registry.by_fingerprint[fingerprint]


Special = Mapping[str, Callable[..., Any]]


def writer(schema_: Any, special: Special | None = None) -> Callable[[Any], Any]:
    """Domain value → Avro datum for a parsed schema, built once per schema. A record's fields
    are read as attributes; `special` maps a record's short name to its own converter."""
    special = special or {}
    if isinstance(schema_, list):  # [null, X]
        inner = writer(next(s for s in schema_ if s != "null"), special)
        return lambda v: None if v is None else inner(v)
    if isinstance(schema_, dict):
        kind = schema_["type"]
        if kind in ("array", "map"):
            item = writer(schema_["items" if kind == "array" else "values"], special)
            if item is _same:
                return list if kind == "array" else dict
            if kind == "map":
                return lambda v: {k: item(x) for k, x in v.items()}
            return lambda v: [item(x) for x in v]
        if kind == "record":
            own = special.get(schema_["name"].rsplit(".", 1)[-1])
            if own is not None:
                return own
            fields = [(f["name"], writer(f["type"], special)) for f in schema_["fields"]]
            return lambda v: {name: w(getattr(v, name)) for name, w in fields}
        if schema_.get("logicalType") in ("timestamp-micros", "timestamp-millis"):
            return aware
    return _same


def _same(value: Any) -> Any:
    return value


def aware(value: datetime) -> datetime:
    """`value`, refused when naive: Avro keeps the instant, so a naive datetime would come back
    aware (and unequal to what was stored)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} in a table value (needs a time zone)")
    return value


def reader(
    schema_: Any, classes: Mapping[str, type], special: Special | None = None
) -> Callable[[Any, str], Any]:
    """Avro datum → domain value for a parsed schema: records become `classes[short name]`,
    arrays tuples; a class's `household_id` absent from the schema is the second argument (the
    row's own, stored once). `special` maps a record's short name to its own (datum, id) →
    value."""
    special = special or {}
    if isinstance(schema_, list):
        inner = reader(next(s for s in schema_ if s != "null"), classes, special)
        return lambda v, hid: None if v is None else inner(v, hid)
    if isinstance(schema_, dict):
        kind = schema_["type"]
        if kind == "array":
            item = reader(schema_["items"], classes, special)
            if item is _as_is:
                return lambda v, hid: tuple(v)
            return lambda v, hid: tuple([item(x, hid) for x in v])
        if kind == "map":
            value = reader(schema_["values"], classes, special)
            return lambda v, hid: {k: value(x, hid) for k, x in v.items()}
        if kind == "record":
            name = schema_["name"].rsplit(".", 1)[-1]
            if name in special:
                return special[name]
            cls = classes[name]
            fields = [(f["name"], reader(f["type"], classes, special)) for f in schema_["fields"]]
            plain = [n for n, r in fields if r is _as_is]
            built = [(n, r) for n, r in fields if r is not _as_is]
            if "household_id" in cls.__dataclass_fields__ and "household_id" not in plain:
                return lambda v, hid: cls(
                    household_id=hid,
                    **{n: v[n] for n in plain},
                    **{n: r(v[n], hid) for n, r in built},
                )
            return lambda v, hid: cls(
                **{n: v[n] for n in plain}, **{n: r(v[n], hid) for n, r in built}
            )
    return _as_is


def _as_is(value: Any, household_id: str) -> Any:
    return value
