"""JSON lines: one object per event, for inspection, diffs and tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from services.tools.simulation.sinks.base import EventSink
from services.tools.simulation.stream import Event


def to_json(value: Any) -> Any:
    """A record with ISO 8601 strings for timestamps (with offset) and dates, as the API takes."""
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def json_line(event: Event) -> str:
    """`{"topic", "key", "event_type", "record"}` on one line; stable byte for byte."""
    return json.dumps(
        {
            "topic": event.topic.name,
            "key": event.key,
            "event_type": event.event_type,
            "record": to_json(event.record),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


class JsonLinesSink(EventSink):
    """Writes events to a file (or an open text stream), one JSON object per line."""

    def __init__(self, target: Path | IO[str]):
        self.target = target
        self._file: IO[str] | None = None
        self._owned = False

    async def start(self) -> None:
        if isinstance(self.target, Path | str):
            self._file = await asyncio.to_thread(open, self.target, "w", encoding="utf-8")
            self._owned = True
        else:
            self._file = self.target

    async def write(self, events: Sequence[Event]) -> None:
        if self._file is None:
            raise RuntimeError("JsonLinesSink used before start()")
        self._file.writelines(json_line(e) + "\n" for e in events)

    async def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            if self._owned:
                self._file.close()
            self._file = None
