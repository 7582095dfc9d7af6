"""JSON bytes for the pool commands on `<app_id>-pool-commands` (the wire format of before the
commands were typed, so records already on the topic still read)."""

from __future__ import annotations

import json
from typing import Any

from services.support.adapters.table_codec import need_from_json, need_to_json
from services.support.domain.matcher import Cadre
from services.support.domain.pool_commands import (
    AllocateNeed,
    PoolCommand,
    ReleaseMeasure,
    UpdateCadre,
)


def dump_command(command: PoolCommand) -> bytes:
    data: dict[str, Any]
    match command:
        case AllocateNeed(need):
            data = {"need": need_to_json(need)}
        case ReleaseMeasure(measure_id, step, reason):
            data = {"release": measure_id, "step": step}
            if reason:  # absent otherwise: the records of before reasons read the same
                data["reason"] = reason
        case UpdateCadre(cadre):
            data = {"cadre": list(vars(cadre).values())}
        case _:
            raise TypeError(f"not a pool command: {command!r}")
    return json.dumps(data, ensure_ascii=False).encode()


class CommandFormatError(ValueError):
    """Bytes on the pool-commands topic that are not a pool command this code can read."""


def load_command(raw: bytes) -> PoolCommand:
    """The command `raw` holds; CommandFormatError for anything else (not JSON, a missing or
    mistyped field), so a worker dead-letters it instead of failing on it forever."""
    try:
        data = json.loads(raw)
        if "need" in data:
            return AllocateNeed(need_from_json(data["need"]))
        if "release" in data:
            return ReleaseMeasure(data["release"], data["step"], str(data.get("reason", "")))
        return UpdateCadre(Cadre(*data["cadre"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CommandFormatError(f"not a pool command: {type(exc).__name__}: {exc}") from exc
