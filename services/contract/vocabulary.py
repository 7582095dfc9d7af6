"""The contract's vocabulary: enum symbols as the Avro schemas declare them, and orders on them.

Measure types, categories, workflow statuses, step names... are declared once, in `schemas/`;
code that needs the list reads it here instead of retyping it. Read lazily, once per process,
from the current schemas (the same files the codec loads).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from services.contract.errors import ContractError
from services.contract.schemas import default_schemas_dir


@functools.cache
def _enums(directory: Path) -> Mapping[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for path in sorted(directory.glob("*.avsc")):
        for enum in _walk(json.loads(path.read_text(encoding="utf-8"))):
            symbols = tuple(enum["symbols"])
            name = enum["name"].rsplit(".", 1)[-1]
            if found.setdefault(name, symbols) != symbols:
                raise ContractError(f"{path.name}: enum {name} differs from its other declaration")
    return found


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "enum":
            yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def symbols(enum: str, directory: Path | None = None) -> tuple[str, ...]:
    """The symbols of the contract's enum `enum` (short name, e.g. "MeasureType"), in order."""
    enums = _enums((directory or default_schemas_dir()).resolve())
    try:
        return enums[enum]
    except KeyError:
        raise ContractError(f"no enum {enum!r} in the contract's schemas") from None


def step_ranks(enum: str, terminal: tuple[str, ...] = ()) -> dict[str, int]:
    """Each step's place in its lifecycle, from the enum's order; `terminal` steps tie last.

    A step with a higher rank supersedes a lower one recorded at the same moment (field apps
    sync late, so time alone cannot order two steps of one measure or problem).
    """
    steps = symbols(enum)
    unknown = set(terminal) - set(steps)
    if unknown:
        raise ContractError(f"{enum}: no step(s) {sorted(unknown)}")
    ordered = [s for s in steps if s not in terminal]
    ranks = {step: i for i, step in enumerate(ordered)}
    ranks.update({step: len(ordered) for step in terminal})
    return ranks


def measure_step_ranks() -> dict[str, int]:
    """RECOMMENDED < ACCEPTED < DELIVERED < COMPLETED = CANCELLED (a measure ends either way)."""
    return step_ranks("MeasureStep", terminal=("COMPLETED", "CANCELLED"))


def problem_step_ranks() -> dict[str, int]:
    """FOUND < TASK_ASSIGNED < RECTIFIED < REOPENED, in the enum's order."""
    return step_ranks("ProblemStep")
