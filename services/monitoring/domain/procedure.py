"""The entry and exit procedure of a household's cycle, pure: its limits (a policy's
`[procedure]`) and, step by step, where the procedure stands.

DOMAIN.md: entry is home check → data cross-check → village deliberation and public notice (at
least 5 days) → township review → county approval; exit is village review and notice → township
review → county approval.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class ProcedureRules:
    """The entry and exit procedure's limits (DOMAIN.md: village deliberation and a public
    notice of at least 5 days, township review, county approval; at most 15 days from finding a
    risk to inclusion). Each limit is the days the awaited step may take after the step before
    it (for the township review: after the notice ends)."""

    notice_min_days: int = 5
    deliberation_days: int = 5  # verification (home check, cross-check) and village deliberation
    notice_posting_days: int = 1  # deliberation passed → notice posted
    township_review_days: int = 2  # notice ended → township review
    county_approval_days: int = 2  # township review passed → county approval


DEFAULT_PROCEDURE = ProcedureRules()  # immutable, so shared
PROCEDURE_KEYS = tuple(f.name for f in fields(ProcedureRules))


def parse_procedure_rules(table: Any, problems: list[tuple[str, str]]) -> ProcedureRules:
    """`[procedure]`: every key optional (the defaults are ProcedureRules'), each a whole number
    of days ≥ 1."""
    if not isinstance(table, dict):
        return ProcedureRules()  # "expected a table" is reported with the unknown sections
    values: dict[str, int] = {}
    for key in PROCEDURE_KEYS:
        if key not in table:
            continue
        value = table[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(
                (f"procedure.{key}", f"must be a whole number of days ≥ 1, got {value!r}")
            )
        else:
            values[key] = value
    return ProcedureRules(**values)
