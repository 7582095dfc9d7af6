"""Facts derived from a household's state as of a moment: only events that occurred by then.

Each function reads the state's canonical event sets, so its answer depends only on which events
were seen, never on their arrival order. Conventions the field apps rely on:

- A visit correction reuses `visit_id`; the version recorded last wins (ties: occurred_at, id).
- A problem found on a visit has id `<visit_id>/<KIND>` (`/<KIND>/2`, ... for more of a kind);
  a ProblemRecorded step with that id (e.g. RECTIFIED) continues it. A check reported PROBLEM,
  a missing or outdated policy card and a dirty home open such a problem even when the visit's
  problem list does not name it. A later visit that finds the matter secured closes it.
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
PROBLEM_STEP_RANK = vocabulary.problem_step_ranks()
CHECK_KINDS = {name: name.upper() for name in CHECKS}
T = TypeVar("T")


def _until(events: tuple, at: datetime) -> tuple | list:
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
_PROBLEMS = View("problems", "visits", "problems")
_CHECKS = View("checks", "visits")


def registry_at(state: HouseholdState, at: datetime) -> RegistryRecorded | None:
    rows = state.registry
    if rows and rows[-1].occurred_at <= at:
        return rows[-1]
    rows = _until(rows, at)
    return rows[-1] if rows else None


def visits_at(state: HouseholdState, at: datetime) -> tuple[VisitRecorded, ...]:
    """The winning version of each visit, in canonical order."""
    if not state.visits:
        return ()
    return memo(_VISITS, state, at, lambda: _visits_at(state, at))


def _visits_at(state: HouseholdState, at: datetime) -> tuple[VisitRecorded, ...]:
    winners: dict[str, VisitRecorded] = {}
    for visit in _until(state.visits, at):
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
        for u in _until(state.incomes, at)
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
    for report in _until(state.hardships, at):
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
    for step in _until(state.measures, at):
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
class ProblemFacts:
    problem_id: str
    kind: str
    description: str
    origin: str  # visit | list
    visit_id: str | None
    found_at: datetime
    open: bool
    responsible_cadre_id: str | None
    due_date: date | None  # from a task; None: the policy's default applies
    rectified_at: datetime | None
    event_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Step:
    occurred_at: datetime
    rank: int
    event_id: str
    step: str
    kind: str
    description: str
    responsible: str | None
    due: date | None
    visit_id: str | None
    origin: str


def _visit_problems(visit: VisitRecorded) -> list[tuple[str, _Step]]:
    found: list[tuple[str, str, str, bool]] = [
        (p.kind, p.description, "", p.fixed_on_spot) for p in visit.problems
    ]
    named = {p.kind for p in visit.problems}
    implicit = [
        (CHECK_KINDS[name], check.note or f"{name} check found a problem")
        for name, check in visit.checks
        if check.status == "PROBLEM"
    ]
    if visit.policy_card in ("MISSING", "OUTDATED"):
        implicit.append(("POLICY_CARD", f"policy card {visit.policy_card.lower()}"))
    if visit.living_environment == "DIRTY":
        implicit.append(("LIVING_ENVIRONMENT", "home and yard dirty"))
    found += [(kind, text, "", False) for kind, text in implicit if kind not in named]
    steps: list[tuple[str, _Step]] = []
    counts: dict[str, int] = {}
    for kind, text, _, fixed in found:
        counts[kind] = counts.get(kind, 0) + 1
        pid = f"{visit.visit_id}/{kind}" + (f"/{counts[kind]}" if counts[kind] > 1 else "")
        steps.append(
            (
                pid,
                _Step(
                    visit.occurred_at,
                    0,
                    visit.event_id,
                    "FOUND",
                    kind,
                    text,
                    visit.cadre_id,
                    None,
                    visit.visit_id,
                    "visit",
                ),
            )
        )
        if fixed:
            steps.append(
                (
                    pid,
                    _Step(
                        visit.occurred_at,
                        2,
                        visit.event_id,
                        "RECTIFIED",
                        kind,
                        "fixed on the spot",
                        visit.cadre_id,
                        None,
                        visit.visit_id,
                        "visit",
                    ),
                )
            )
    return steps


def _secured_kinds(visit: VisitRecorded) -> set[str]:
    kinds = {CHECK_KINDS[name] for name, check in visit.checks if check.status == "SECURED"}
    if visit.policy_card == "POSTED":
        kinds.add("POLICY_CARD")
    if visit.living_environment in ("CLEAN", "UNTIDY"):
        kinds.add("LIVING_ENVIRONMENT")
    return kinds


def problems_at(state: HouseholdState, at: datetime) -> dict[str, ProblemFacts]:
    """Every problem (open or closed) with its latest status, keyed by problem id."""
    if not state.visits and not state.problems:
        return {}
    return memo(_PROBLEMS, state, at, lambda: _problems_at(state, at))


def _problems_at(state: HouseholdState, at: datetime) -> dict[str, ProblemFacts]:
    steps: dict[str, list[_Step]] = {}
    visits = visits_at(state, at)
    for visit in visits:
        for pid, step in _visit_problems(visit):
            steps.setdefault(pid, []).append(step)
    for r in _until(state.problems, at):
        steps.setdefault(r.problem_id, []).append(
            _Step(
                r.occurred_at,
                PROBLEM_STEP_RANK[r.step],
                r.event_id,
                r.step,
                r.kind,
                r.description,
                r.responsible_cadre_id,
                r.due_date,
                r.visit_id,
                "list",
            )
        )
    firsts = {
        pid: min(items, key=lambda s: (s.occurred_at, s.rank, s.event_id))
        for pid, items in steps.items()
    }
    by_kind: dict[str, list[str]] = {}
    for pid, first in firsts.items():
        by_kind.setdefault(first.kind, []).append(pid)
    for visit in visits:  # a later visit that finds the matter secured closes the problem
        for kind in _secured_kinds(visit).intersection(by_kind):
            for pid in by_kind[kind]:
                if firsts[pid].occurred_at < visit.occurred_at:
                    steps[pid].append(
                        _Step(
                            visit.occurred_at,
                            2,
                            visit.event_id,
                            "RECTIFIED",
                            kind,
                            "found secured on a later visit",
                            visit.cadre_id,
                            None,
                            visit.visit_id,
                            "visit",
                        )
                    )
    problems = {}
    for pid, items in sorted(steps.items()):
        items.sort(key=lambda s: (s.occurred_at, s.rank, s.event_id))
        first = items[0]
        is_open, rectified_at, responsible, due = False, None, None, None
        description = next((s.description for s in items if s.step == "FOUND"), first.description)
        for s in items:
            if s.step != "RECTIFIED":
                responsible = s.responsible or responsible
            if s.step in ("FOUND", "REOPENED"):
                is_open, rectified_at = True, None
            elif s.step == "TASK_ASSIGNED":
                due = s.due or due
                is_open = is_open or rectified_at is None  # a task implies an unfixed problem
            elif s.step == "RECTIFIED" and (is_open or rectified_at is None):
                is_open, rectified_at = False, s.occurred_at
        problems[pid] = ProblemFacts(
            pid,
            first.kind,
            description,
            first.origin,
            next((s.visit_id for s in items if s.visit_id), None),
            first.occurred_at,
            is_open,
            responsible,
            due,
            rectified_at,
            tuple(dict.fromkeys(s.event_id for s in items)),
        )
    return problems


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


def labour_of(registry: RegistryRecorded | None, count_weak: bool) -> int | None:
    if registry is None:
        return None
    return registry.members.labour + (registry.members.weak_labour if count_weak else 0)
