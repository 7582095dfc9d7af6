"""Facts derived from a household's state as of a moment: only events that occurred by then.

Each function reads the state's canonical event sets, so its answer depends only on which events
were seen, never on their arrival order. Conventions the field apps rely on:

- A visit correction reuses `visit_id`; the version recorded last wins (ties: occurred_at, id).
- Problems (found on visits or on the problem list) are in `problems.py`; the members (counts,
  labour, the member a diagnosis names) in `composition.py`.
- Income observations: income updates (period end), visit estimates (visit day, a year's
  figure) and the registry's baseline income (31 December of its year).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import TypeVar

from services.contract import vocabulary
from services.monitoring.domain.events import (
    CHECKS,
    HardshipReported,
    RegistryRecorded,
    VisitRecorded,
)
from services.monitoring.domain.state import HouseholdState, writable

MEASURE_STEP_RANK = vocabulary.measure_step_ranks()
RECEIVED_STEPS = ("DELIVERED", "COMPLETED")
ACTIVE_STEPS = ("RECOMMENDED", "ACCEPTED", "DELIVERED")
T = TypeVar("T")


def until(events: tuple, at: datetime) -> tuple | list:
    # The sets are sorted by occurred_at: when the newest is by `at` (the common case, an
    # assessment as of the latest event or now) every event counts and nothing is copied.
    if not events or events[-1].occurred_at <= at:
        return events
    return [e for e in events if e.occurred_at <= at]


class View:
    """A memoised view's name and the event sets it reads."""

    __slots__ = ("kinds", "name", "read")

    def __init__(self, name: str, *kinds: str):
        self.name, self.kinds = name, kinds
        get = attrgetter(*kinds)
        self.read = get if len(kinds) > 1 else lambda state: (get(state),)


def memo(
    view: View, state: HouseholdState, at: datetime, compute: Callable[[], T], extra: tuple = ()
) -> T:
    """`compute()`, a view of `state` as of `at` that reads only the event sets `view.kinds`
    (and `extra`, e.g. the policy), remembered in `state.views` while those are the same.

    Only when every event of those kinds occurred by `at`: then the view does not depend on
    `at` (it only filters by it), so the one entry per view serves every later moment until an
    event of those kinds arrives. A view as of an earlier moment (a late event's, a replay's)
    is computed afresh. `evolve` keeps the unchanged sets' tuples, so a visit leaves the
    measures' views valid, and comparing them is mostly identity checks (equal sets of events
    give equal views either way). What it returns is shared: callers must not change it.
    A view is remembered only in open views (`assess.remembering`'s own state): reading the
    facts of a state never changes it.
    """
    views = state.views
    if views is None:
        return compute()
    key = view.read(state)
    last = state.last_occurred_at  # at or after every event applied, when set
    if last is None or last > at:
        for events in key:
            if events and events[-1].occurred_at > at:
                return compute()
    key += extra
    hit = views.get(view.name)
    if hit is not None and hit[0] == key:
        return hit[1]
    result = compute()
    if writable(views):
        views[view.name] = (key, result)
    return result


_VISITS = View("visits", "visits")
_INCOMES = View("incomes", "incomes", "visits", "registry")
_HARDSHIPS = View("hardships", "hardships")
_MEASURES = View("measures", "measures")
_CHECKS = View("checks", "visits")


def registry_at(state: HouseholdState, at: datetime) -> RegistryRecorded | None:
    rows = state.registry
    if rows and rows[-1].occurred_at <= at:
        return rows[-1]
    rows = until(rows, at)
    return rows[-1] if rows else None


def visits_at(state: HouseholdState, at: datetime) -> tuple[VisitRecorded, ...]:
    """The winning version of each visit, in canonical order."""
    if not state.visits:
        return ()
    return memo(_VISITS, state, at, lambda: _visits_at(state, at))


def _visits_at(state: HouseholdState, at: datetime) -> tuple[VisitRecorded, ...]:
    winners: dict[str, VisitRecorded] = {}
    for visit in until(state.visits, at):
        best = winners.get(visit.visit_id)
        key = (visit.recorded_at, visit.occurred_at, visit.event_id)
        if best is None or key > (best.recorded_at, best.occurred_at, best.event_id):
            winners[visit.visit_id] = visit
    return tuple(sorted(winners.values(), key=lambda v: (v.occurred_at, v.event_id)))


@dataclass(frozen=True, slots=True)
class IncomeObservation:
    on: date  # last day the figure covers
    period_start: date
    per_capita_yuan: int
    members: int | None
    event_id: str
    occurred_at: datetime
    kind: str  # income_update | visit_estimate | registry_baseline

    def describe(self) -> str:
        what = {
            "income_update": "income update",
            "visit_estimate": "visit estimate",
            "registry_baseline": "registry baseline",
        }[self.kind]
        return f"{self.per_capita_yuan} yuan per person ({what}, to {self.on.isoformat()})"


def incomes_at(state: HouseholdState, at: datetime) -> tuple[IncomeObservation, ...]:
    return memo(_INCOMES, state, at, lambda: _incomes_at(state, at))


def _incomes_at(state: HouseholdState, at: datetime) -> tuple[IncomeObservation, ...]:
    observations = [
        IncomeObservation(
            u.period_end,
            u.period_start,
            u.per_capita_net_yuan,
            u.members_counted,
            u.event_id,
            u.occurred_at,
            "income_update",
        )
        for u in until(state.incomes, at)
    ]
    for visit in visits_at(state, at):
        if visit.income_per_capita_yuan is not None:
            day = visit.occurred_at.date()
            observations.append(
                IncomeObservation(
                    day,
                    day - timedelta(days=365),
                    visit.income_per_capita_yuan,
                    None,
                    visit.event_id,
                    visit.occurred_at,
                    "visit_estimate",
                )
            )
    registry = registry_at(state, at)
    if registry is not None and registry.baseline_income is not None:
        year = registry.baseline_income.year
        observations.append(
            IncomeObservation(
                date(year, 12, 31),
                date(year, 1, 1),
                registry.baseline_income.per_capita_net_yuan,
                registry.members.count,
                registry.event_id,
                registry.occurred_at,
                "registry_baseline",
            )
        )
    return tuple(sorted(observations, key=lambda o: (o.on, o.occurred_at, o.event_id)))


@dataclass(frozen=True, slots=True)
class WindowIncome:
    """Per-capita income reckoned over a window: each day takes the figure of the newest
    observation covering it (latest period end, then latest recorded), and the figure is the
    day-weighted mean over the covered days. `parts`: (observation, days it supplies)."""

    start: date
    end: date
    per_capita_yuan: int
    parts: tuple[tuple[IncomeObservation, int], ...]

    @property
    def covered_days(self) -> int:
        return sum(days for _, days in self.parts)

    def describe(self) -> str:
        used = "; ".join(f"{o.describe()}, {days} days" for o, days in self.parts)
        return (
            f"{self.per_capita_yuan} yuan per person over {self.start.isoformat()}.."
            f"{self.end.isoformat()} ({used})"
        )


def income_window(at: date, months: int) -> tuple[date, date]:
    """The `months` months ending with the month before `at`'s (DOMAIN.md: income counted over
    the 12 months ending the month before identification)."""
    end = date(at.year, at.month, 1) - timedelta(days=1)
    index = at.year * 12 + (at.month - 1) - months
    return date(index // 12, index % 12 + 1, 1), end


def income_over(
    incomes: tuple[IncomeObservation, ...], start: date, end: date
) -> WindowIncome | None:
    """`incomes` (ordered oldest first, as `incomes_at` gives them) reckoned over start..end;
    None when no observation covers a day of it."""
    uncovered = [(start, end)]
    parts: list[tuple[IncomeObservation, int]] = []
    for observation in reversed(incomes):  # newest first: it supplies every day it covers
        if not uncovered:
            break
        days, left = 0, []
        for first, last in uncovered:
            lo, hi = max(first, observation.period_start), min(last, observation.on)
            if lo > hi:
                left.append((first, last))
                continue
            days += (hi - lo).days + 1
            if first < lo:
                left.append((first, lo - timedelta(days=1)))
            if hi < last:
                left.append((hi + timedelta(days=1), last))
        uncovered = left
        if days:
            parts.append((observation, days))
    if not parts:
        return None
    parts.sort(key=lambda part: (part[0].on, part[0].occurred_at, part[0].event_id))
    total = sum(days for _, days in parts)
    weighted = sum(o.per_capita_yuan * days for o, days in parts)
    return WindowIncome(start, end, round(weighted / total), tuple(parts))


@dataclass(frozen=True, slots=True)
class HardshipCase:
    hardship_id: str
    cause: str
    rigid_expenditure_yuan: int
    resolved: bool
    first_reported_at: datetime
    latest: HardshipReported
    event_ids: tuple[str, ...]


def hardships_at(state: HouseholdState, at: datetime) -> dict[str, HardshipCase]:
    if not state.hardships:
        return {}
    return memo(_HARDSHIPS, state, at, lambda: _hardships_at(state, at))


def _hardships_at(state: HouseholdState, at: datetime) -> dict[str, HardshipCase]:
    reports: dict[str, list[HardshipReported]] = {}
    for report in until(state.hardships, at):
        reports.setdefault(report.hardship_id, []).append(report)
    cases = {}
    for hardship_id, items in sorted(reports.items()):
        latest = items[-1]
        cases[hardship_id] = HardshipCase(
            hardship_id,
            latest.cause,
            latest.rigid_expenditure_yuan,
            latest.resolved,
            items[0].occurred_at,
            latest,
            tuple(r.event_id for r in items),
        )
    return cases


@dataclass(frozen=True, slots=True)
class MeasureFacts:
    measure_id: str
    measure_type: str
    catalogue_id: str
    step: str
    cadre_id: str | None
    first_at: datetime
    received_at: datetime | None  # first DELIVERED or COMPLETED step
    event_ids: tuple[str, ...]

    @property
    def active(self) -> bool:
        return self.step in ACTIVE_STEPS


def measures_at(state: HouseholdState, at: datetime) -> dict[str, MeasureFacts]:
    if not state.measures:
        return {}
    return memo(_MEASURES, state, at, lambda: _measures_at(state, at))


def _measures_at(state: HouseholdState, at: datetime) -> dict[str, MeasureFacts]:
    steps: dict[str, list] = {}
    for step in until(state.measures, at):
        steps.setdefault(step.measure_id, []).append(step)
    facts = {}
    for measure_id, items in sorted(steps.items()):
        items.sort(key=lambda s: (s.occurred_at, MEASURE_STEP_RANK[s.step], s.event_id))
        latest = items[-1]
        received = [s.occurred_at for s in items if s.step in RECEIVED_STEPS]
        cadre = next((s.cadre_id for s in reversed(items) if s.cadre_id), None)
        facts[measure_id] = MeasureFacts(
            measure_id,
            latest.measure_type,
            latest.catalogue_id,
            latest.step,
            cadre,
            items[0].occurred_at,
            min(received) if received else None,
            tuple(s.event_id for s in items),
        )
    return facts


@dataclass(frozen=True, slots=True)
class CheckFacts:
    status: str
    note: str
    event_id: str
    occurred_at: datetime


def checks_at(state: HouseholdState, at: datetime) -> dict[str, CheckFacts | None]:
    """Each of the six checks as last observed on a visit (None: never checked)."""
    return memo(_CHECKS, state, at, lambda: _checks_at(state, at))


def _checks_at(state: HouseholdState, at: datetime) -> dict[str, CheckFacts | None]:
    result: dict[str, CheckFacts | None] = dict.fromkeys(CHECKS)
    for visit in visits_at(state, at):
        for name, check in visit.checks:
            if check.status != "NOT_CHECKED":
                result[name] = CheckFacts(
                    check.status, check.note, visit.event_id, visit.occurred_at
                )
    return result
