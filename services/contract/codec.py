"""Avro single-object encoding of contract events: the one way bytes enter and leave topics.

A frame is `C3 01`, the writer schema's 8-byte CRC-64-AVRO fingerprint (little-endian), then the
Avro binary body. Readers look the fingerprint up among every known version of every event type
and resolve it to the current schema, so producers can upgrade before consumers do.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import fastavro

from services.contract.errors import CorruptFrame, InvalidRecord, UnknownSchema
from services.contract.schemas import SchemaRegistry, SchemaVersion
from services.contract.validation import Valid, problems_in, validity

MAGIC = b"\xc3\x01"
HEADER_LENGTH = len(MAGIC) + 8


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded frame: the event type (full schema name) and its record, current schema."""

    event_type: str
    record: dict[str, Any]
    writer_fingerprint: bytes


class Codec:
    """Encodes and decodes contract events; build one per process and share it."""

    def __init__(self, registry: SchemaRegistry):
        self.registry = registry
        self._validity: dict[bytes, Valid] = {}  # by schema fingerprint

    @classmethod
    def default(cls) -> Codec:
        return cls(SchemaRegistry.from_directory())

    def validate(self, event_type: str, record: Any) -> list[tuple[str, str]]:
        """Every (field path, problem) of `record` under the current schema; empty when valid."""
        version = self.registry.schema(event_type)
        valid = self._validity.get(version.fingerprint)
        if valid is None:
            valid = self._validity[version.fingerprint] = validity(version.parsed)
        if valid(record):  # the common case, without building a path for every field
            return []
        return problems_in(version.parsed, record)

    def encode(self, event_type: str, record: dict[str, Any]) -> bytes:
        """Frame `record` under the current schema of `event_type`; InvalidRecord if unfit.

        Encoding is the fast path for trusted producers: it relies on fastavro's checks and
        explains failures afterwards. Untrusted input goes through `validate` first, which also
        checks UUID syntax and time-zone-aware timestamps.
        """
        version = self.registry.schema(event_type)
        buffer = io.BytesIO()
        buffer.write(MAGIC)
        buffer.write(version.fingerprint)
        try:
            fastavro.schemaless_writer(buffer, version.parsed, record, strict_allow_default=True)
        except Exception as exc:
            raise InvalidRecord(version.name, explain_invalid(version, record, exc)) from exc
        return buffer.getvalue()

    def decode(self, frame: bytes, expected: str | None = None) -> Decoded:
        """Decode a frame; CorruptFrame / UnknownSchema when the bytes are not a known frame.

        `expected` (an event type name) makes a frame of any other type an error, so a record
        produced to the wrong topic is caught at the door.
        """
        if not isinstance(frame, bytes | bytearray | memoryview):
            raise CorruptFrame(f"expected bytes, got {type(frame).__name__}")
        frame = bytes(frame)
        if len(frame) < HEADER_LENGTH or frame[:2] != MAGIC:
            raise CorruptFrame(
                f"not an Avro single-object frame: {len(frame)} bytes starting "
                f"{frame[:2].hex() or '<empty>'}, expected marker c301 and an 8-byte fingerprint"
            )
        fingerprint = frame[2:HEADER_LENGTH]
        writer = self.registry.by_fingerprint.get(fingerprint)
        if writer is None:
            raise UnknownSchema(fingerprint)
        reader = self.registry.current[writer.name]
        if expected is not None and self.registry.resolve_name(expected) != writer.name:
            raise CorruptFrame(f"expected a {expected} frame, found {writer.name}")
        body = io.BytesIO(frame)
        body.seek(HEADER_LENGTH)
        try:
            record = fastavro.schemaless_reader(
                body, writer.parsed, None if reader is writer else reader.parsed
            )
        except Exception as exc:
            raise CorruptFrame(
                f"corrupt {writer.name} body ({len(frame) - HEADER_LENGTH} bytes): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if body.tell() != len(frame):
            raise CorruptFrame(
                f"corrupt {writer.name} frame: {len(frame) - body.tell()} trailing bytes"
            )
        return Decoded(writer.name, record, fingerprint)


def explain_invalid(version: SchemaVersion, record: Any, exc: Exception) -> list[tuple[str, str]]:
    """Turn a failed encode into (field, problem) pairs a client can act on."""
    return problems_in(version.parsed, record) or [
        ("", f"cannot encode: {type(exc).__name__}: {exc}")
    ]
