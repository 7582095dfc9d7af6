"""The schema registry of the contract: current and historical Avro schemas, parsed once."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from services.contract.errors import ContractError, IncompatibleSchema, UnknownEventType

SCHEMAS_DIR_ENV = "SHOUWANG_SCHEMAS_DIR"


def default_schemas_dir() -> Path:
    """The repository's `schemas/` directory, or `$SHOUWANG_SCHEMAS_DIR` when set."""
    override = os.environ.get(SCHEMAS_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "schemas"


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one event type's schema."""

    name: str  # full name, e.g. shouwang.events.VisitRecorded
    source: str  # file the schema came from, for error messages
    parsed: dict[str, Any]
    canonical: str
    fingerprint: bytes  # CRC-64-AVRO, little-endian, as framed on the wire

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


def load_version(raw: dict[str, Any], source: str) -> SchemaVersion:
    """Parse one schema document; wraps fastavro's errors with the file name."""
    try:
        parsed = fastavro.parse_schema(raw)
        canonical = to_parsing_canonical_form(parsed)
    except Exception as exc:
        raise ContractError(f"{source}: not a valid Avro schema: {exc}") from exc
    if parsed.get("type") != "record":
        raise ContractError(f"{source}: an event schema must be a record")
    return SchemaVersion(
        name=parsed["name"],
        source=source,
        parsed=parsed,
        canonical=canonical,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


class SchemaRegistry:
    """Current schema per event type plus every historical version readers must accept."""

    def __init__(self, current: list[SchemaVersion], history: list[SchemaVersion] = ()):
        self.current: dict[str, SchemaVersion] = {}
        for version in current:
            if version.name in self.current:
                raise ContractError(
                    f"{version.source}: {version.name} is also defined in "
                    f"{self.current[version.name].source}"
                )
            self.current[version.name] = version
        self._short = {v.short_name: v.name for v in current}
        self.by_fingerprint: dict[bytes, SchemaVersion] = {}
        for version in [*current, *history]:
            if version.name not in self.current:
                raise ContractError(
                    f"{version.source}: historical schema {version.name} has no current version"
                )
            self.by_fingerprint.setdefault(version.fingerprint, version)
        for version in history:
            check_readable(self.current[version.name], version)

    @classmethod
    def from_directory(cls, directory: Path | None = None) -> SchemaRegistry:
        """Load `*.avsc` as current schemas and `history/*.avsc` as older versions."""
        directory = directory or default_schemas_dir()
        if not directory.is_dir():
            raise ContractError(
                f"schema directory {directory} not found; set {SCHEMAS_DIR_ENV} to the contract's "
                "schemas/ directory"
            )
        current = [_load_file(p) for p in sorted(directory.glob("*.avsc"))]
        history = [_load_file(p) for p in sorted((directory / "history").glob("*.avsc"))]
        if not current:
            raise ContractError(f"no *.avsc schemas in {directory}")
        return cls(current, history)

    def resolve_name(self, event_type: str) -> str:
        """Accept a full name (shouwang.events.VisitRecorded) or a short one (VisitRecorded)."""
        if event_type in self.current:
            return event_type
        try:
            return self._short[event_type]
        except KeyError:
            known = ", ".join(sorted(self._short))
            raise UnknownEventType(f"unknown event type {event_type!r}; known: {known}") from None

    def schema(self, event_type: str) -> SchemaVersion:
        return self.current[self.resolve_name(event_type)]


def check_readable(reader: SchemaVersion, writer: SchemaVersion) -> None:
    """Raise IncompatibleSchema unless data written with `writer` resolves to `reader`."""
    probe = _example(writer.parsed)
    try:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, writer.parsed, probe)
        buffer.seek(0)
        fastavro.schemaless_reader(buffer, writer.parsed, reader.parsed)
    except Exception as exc:
        raise IncompatibleSchema(
            f"{writer.source}: the current {reader.name} ({reader.source}) cannot read data "
            f"written with this version: {exc}"
        ) from exc


def _load_file(path: Path) -> SchemaVersion:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ContractError(f"{path}: cannot read schema: {exc}") from exc
    return load_version(raw, str(path))


def _example(schema: Any, named: dict[str, Any] | None = None) -> Any:
    """A minimal datum for a parsed schema, enough to exercise schema resolution."""
    named = {} if named is None else named
    if isinstance(schema, str):
        return _example(named[schema], named) if schema in named else _PRIMITIVE_EXAMPLES[schema]
    if isinstance(schema, list):
        return _example(schema[0], named)
    kind = schema["type"]
    if kind == "record":
        named[schema["name"]] = schema
        return {f["name"]: _example(f["type"], named) for f in schema["fields"]}
    if kind == "enum":
        named[schema["name"]] = schema
        return schema["symbols"][0]
    if kind == "fixed":
        named[schema["name"]] = schema
        return b"\0" * schema["size"]
    if kind == "array":
        return [_example(schema["items"], named)]
    if kind == "map":
        return {"k": _example(schema["values"], named)}
    if kind == "string" and schema.get("logicalType") == "uuid":
        return "00000000-0000-4000-8000-000000000000"
    return _example(kind, named)


_PRIMITIVE_EXAMPLES: dict[str, Any] = {
    "null": None,
    "boolean": False,
    "int": 0,
    "long": 0,
    "float": 0.0,
    "double": 0.0,
    "bytes": b"",
    "string": "",
}
