"""The entry and exit procedure of a household's cycle, pure: its limits (a policy's
`[procedure]`) and, step by step, where the procedure stands.

DOMAIN.md: entry is home check → data cross-check → village deliberation and public notice (at
least 5 days) → township review → county approval; exit is village review and notice → township
review → county approval.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
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


ENTRY, EXIT = "ENTRY", "EXIT"
STEP_DECISIONS = ("VILLAGE_DELIBERATION", "NOTICE", "OBJECTION", "TOWNSHIP_REVIEW")
# The step a record of the procedure waits for. NOTICE_RUNNING is not stored: it is a
# TOWNSHIP_REVIEW awaited while the posted notice has not yet run its days (`awaiting`).
DELIBERATION, NOTICE, RUNNING, TOWNSHIP, COUNTY = (
    "VILLAGE_DELIBERATION",
    "NOTICE",
    "NOTICE_RUNNING",
    "TOWNSHIP_REVIEW",
    "COUNTY_APPROVAL",
)


@dataclass(frozen=True, slots=True)
class Procedure:
    """Where the cycle's entry or exit procedure stands, from its steps so far."""

    direction: str  # ENTRY | EXIT
    next: str  # VILLAGE_DELIBERATION | NOTICE | TOWNSHIP_REVIEW | COUNTY_APPROVAL
    since: datetime  # the previous step's occurred_at
    deliberated_on: date | None = None  # the passing deliberation's day
    notice_start: date | None = None  # the latest notice's
    notice_ends: date | None = None  # its last day
    objections: int = 0
    steps: tuple[str, ...] = ()  # event ids: the opening decision, then each step taken

    def awaiting(self, day: date) -> str:
        """The step awaited on `day`."""
        if self.next == TOWNSHIP and self.notice_ends is not None and day <= self.notice_ends:
            return RUNNING
        return self.next

    def due(self, rules: ProcedureRules, day: date) -> date:
        """The last day for the step awaited on `day`."""
        step = self.awaiting(day)
        if step == RUNNING:
            return self.notice_ends
        if step == TOWNSHIP:
            return self.notice_ends + timedelta(days=rules.township_review_days)
        limit = {
            DELIBERATION: rules.deliberation_days,
            NOTICE: rules.notice_posting_days,
            COUNTY: rules.county_approval_days,
        }[step]
        return self.since.date() + timedelta(days=limit)

    def missing(self, day: date) -> tuple[str, str] | None:
        """(step, why) an approval on `day` would skip, or None when every step is done."""
        return _missing(self, day)


def begin(direction: str, decision_id: str, at: datetime) -> Procedure:
    """The procedure opened by START_VERIFICATION or APPLY (ENTRY) or PROPOSE_ELIMINATION (EXIT)."""
    return Procedure(direction, DELIBERATION, at, steps=(decision_id,))


def missing_without(direction: str) -> tuple[str, str]:
    """What an approval skips when no procedure is under way at all."""
    opening = "START_VERIFICATION or APPLY" if direction == ENTRY else "PROPOSE_ELIMINATION"
    return DELIBERATION, f"no {direction.lower()} procedure under way ({opening} first)"


def _missing(p: Procedure, day: date) -> tuple[str, str] | None:
    if p.next == COUNTY:
        return None
    if p.next == DELIBERATION:
        return DELIBERATION, "no village deliberation passed"
    if p.next == NOTICE:
        return NOTICE, "no public notice posted after the deliberation"
    if p.notice_ends is not None and day <= p.notice_ends:
        return TOWNSHIP, f"the notice runs until {p.notice_ends.isoformat()}, no township review"
    return TOWNSHIP, "no township review passed after the notice"


@dataclass(frozen=True, slots=True)
class Step:
    """What a step decision needs of the procedure (the domain's ReviewDecided, in part)."""

    event_id: str
    occurred_at: datetime
    decision: str  # one of STEP_DECISIONS
    outcome: str | None
    notice_start: date | None
    notice_days: int


def step(p: Procedure | None, s: Step, rules: ProcedureRules) -> Procedure | str:
    """The procedure after step `s`, judged by `rules` (the policy in force on its date), or
    why `s` is refused (the procedure is then left as it was)."""
    if p is None:
        return "no entry or exit procedure under way"
    day = s.occurred_at.date()
    steps = (*p.steps, s.event_id)
    if s.decision in (DELIBERATION, TOWNSHIP) and s.outcome not in ("PASSED", "RETURNED"):
        return f"{s.decision} needs an outcome, PASSED or RETURNED"
    if s.decision == DELIBERATION:
        if s.outcome == "RETURNED":  # back to the home check and cross-check, then again
            return _with(
                p, next=DELIBERATION, since=s.occurred_at, deliberated_on=None, steps=steps
            )
        return _with(p, next=NOTICE, since=s.occurred_at, deliberated_on=day, steps=steps)
    if s.decision == NOTICE:
        if p.deliberated_on is None:
            return "missing step VILLAGE_DELIBERATION: no village deliberation passed"
        if s.notice_start is None:
            return "a NOTICE needs notice_start"
        if s.notice_days < rules.notice_min_days:
            return (
                f"a notice of {s.notice_days} days is shorter than the policy's minimum of "
                f"{rules.notice_min_days} days"
            )
        if s.notice_start < p.deliberated_on:
            return (
                f"the notice starts {s.notice_start.isoformat()}, before the village "
                f"deliberation of {p.deliberated_on.isoformat()}"
            )
        ends = s.notice_start + timedelta(days=s.notice_days - 1)
        return _with(
            p, next=TOWNSHIP, since=s.occurred_at, notice_start=s.notice_start, notice_ends=ends,
            steps=steps,
        )  # fmt: skip
    if s.decision == "OBJECTION":
        if p.notice_start is None:
            return "no public notice posted to object to"
        if day < p.notice_start:
            return f"the notice starts only on {p.notice_start.isoformat()}"
        return _with(p, objections=p.objections + 1, steps=steps)
    if s.decision == TOWNSHIP:
        if p.next in (DELIBERATION, NOTICE):
            return "missing step " + ": ".join(_missing(p, day))
        if p.notice_ends is not None and day <= p.notice_ends:
            return f"township review before the notice ends on {p.notice_ends.isoformat()}"
        if s.outcome == "RETURNED":  # the notice must be posted (and run) again
            return _with(p, next=NOTICE, since=s.occurred_at, steps=steps)
        return _with(p, next=COUNTY, since=s.occurred_at, steps=steps)
    return f"{s.decision} is not a step of the procedure"


def _with(p: Procedure, **changes: Any) -> Procedure:
    return replace(p, **changes)


@dataclass(frozen=True, slots=True)
class Standing:
    """The procedure as an assessment on one day reports it (RiskAssessed v2 `procedure`)."""

    direction: str
    awaiting: str  # VILLAGE_DELIBERATION | NOTICE | NOTICE_RUNNING | TOWNSHIP_REVIEW | ...
    since: datetime
    due: date
    notice_start: date | None
    notice_ends: date | None
    objections: int
    steps: tuple[str, ...]

    def content(self) -> tuple:
        """JSON-ready, for the assessment's digest (and read back from an emitted record)."""
        return (
            self.direction,
            self.awaiting,
            self.since.isoformat(),
            self.due.isoformat(),
            None if self.notice_start is None else self.notice_start.isoformat(),
            None if self.notice_ends is None else self.notice_ends.isoformat(),
            self.objections,
            self.steps,
        )


def standing(p: Procedure, rules: ProcedureRules, day: date) -> Standing:
    return Standing(
        p.direction,
        p.awaiting(day),
        p.since,
        p.due(rules, day),
        p.notice_start,
        p.notice_ends,
        p.objections,
        p.steps,
    )
