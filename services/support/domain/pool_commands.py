"""What the household stage asks of a pool instance's owner: one typed command per change."""

from __future__ import annotations

from dataclasses import dataclass

from services.support.domain.matcher import Cadre, Need


@dataclass(frozen=True)
class AllocateNeed:
    """Give `need` a slot or a cadre of the pool, or queue it (safe to send twice)."""

    need: Need


@dataclass(frozen=True)
class ReleaseMeasure:
    """Free the slot or queue place `measure_id` holds: its measure reached `step` (COMPLETED or
    CANCELLED). `reason` says why when support itself cancelled it (the household left the
    served workflow states); "" for a step someone recorded."""

    measure_id: str
    step: str
    reason: str = ""


@dataclass(frozen=True)
class UpdateCadre:
    """Add a cadre to a cadre pool, or change one (load limit, active or not)."""

    cadre: Cadre


PoolCommand = AllocateNeed | ReleaseMeasure | UpdateCadre


def measure_of(command: PoolCommand) -> str | None:
    """The one measure a command is about (None for a cadre update): the only id whose
    `closed` standing the matcher consults when it applies the command."""
    match command:
        case AllocateNeed(need):
            return need.measure_id
        case ReleaseMeasure(measure_id, _, _):
            return measure_id
    return None
