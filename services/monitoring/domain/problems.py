"""Problems as of a moment: those found on visits and those on the problem list, with their steps.

A problem found on a visit has id `<visit_id>/<KIND>` (`/<KIND>/2`, ... for more of a kind); a
ProblemRecorded step with that id (e.g. RECTIFIED) continues it. A check reported PROBLEM, a
missing or outdated policy card and a dirty home open such a problem even when the visit's
problem list does not name it. A later visit that finds the matter secured closes it.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import date, datetime
from operator import attrgetter

from services.contract import vocabulary
from services.monitoring.domain.events import CHECKS, VisitRecorded
from services.monitoring.domain.facts import View, memo, until, visits_at
from services.monitoring.domain.state import HouseholdState

PROBLEM_STEP_RANK = vocabulary.problem_step_ranks()
CHECK_KINDS = {name: name.upper() for name in CHECKS}
_PROBLEMS = View("problems", "visits", "problems")
# A problem's steps in order: when, then lifecycle rank, then event id (a C key function).
_STEP_ORDER = attrgetter("occurred_at", "rank", "event_id")


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
    for r in until(state.problems, at):
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
    for items in steps.values():
        items.sort(key=_STEP_ORDER)  # a problem's first step says its kind and when it was found
    closers = _closers(visits, {items[0].kind for items in steps.values()})
    problems = {}
    for pid, items in sorted(steps.items()):
        problems[pid] = _facts(pid, items, closers.get(items[0].kind))
    return problems


@dataclass(frozen=True, slots=True)
class _Closers:
    """The visits (canonical order) that found a matter of one kind secured: each closes the
    problems of that kind found before it with a RECTIFIED step. `keys` are those steps' places
    in `_STEP_ORDER` (rank 2), `event_ids` their event ids."""

    visits: list[VisitRecorded]
    keys: list[tuple[datetime, int, str]]
    event_ids: list[str]


def _closers(visits: tuple[VisitRecorded, ...], kinds: set[str]) -> dict[str, _Closers]:
    """Kind → its closing visits, for the kinds asked about: indexed once per view, not per
    problem."""
    found: dict[str, list[VisitRecorded]] = {}
    for visit in visits:
        for kind in _secured_kinds(visit).intersection(kinds):
            found.setdefault(kind, []).append(visit)
    return {
        kind: _Closers(
            closing,
            [(v.occurred_at, 2, v.event_id) for v in closing],
            [v.event_id for v in closing],
        )
        for kind, closing in found.items()
    }


def _facts(pid: str, items: list[_Step], closers: _Closers | None) -> ProblemFacts:
    """A problem's status from its own steps (sorted by `_STEP_ORDER`) and the visits that
    closed it, as if every closing visit were a RECTIFIED step sorted in among them.

    A run of closing steps between two of the problem's own steps (or after the last) changes
    the status at its first step only: that one closes the problem, the rest find it closed.
    So each run is looked up by bisection and contributes its first step's moment, and its event
    ids in order. (Walking every closing step of every problem made the view grow with the
    product of visits and problems of a kind, in Python.) Among equal places a problem's own
    step comes before a closing step, as the stable sort over both put them.
    """
    first = items[0]
    keys: list = []
    begin = 0
    if closers is not None:
        keys = closers.keys
        # closing visits strictly after the problem was found: (moment, 3) sorts after every
        # key (moment, 2, id) of that moment and before any later moment's
        begin = bisect_left(keys, (first.occurred_at, 3))
    is_open, rectified_at, responsible, due, visit_id = False, None, None, None, None
    description = next((s.description for s in items if s.step == "FOUND"), first.description)
    event_ids: list[str] = []
    last = len(items) - 1
    for i, s in enumerate(items):
        if s.step != "RECTIFIED":
            responsible = s.responsible or responsible
        if s.step in ("FOUND", "REOPENED"):
            is_open, rectified_at = True, None
        elif s.step == "TASK_ASSIGNED":
            due = s.due or due
            is_open = is_open or rectified_at is None  # a task implies an unfixed problem
        elif s.step == "RECTIFIED" and (is_open or rectified_at is None):
            is_open, rectified_at = False, s.occurred_at
        visit_id = visit_id or s.visit_id
        event_ids.append(s.event_id)
        if closers is None:
            continue
        # the closing steps after this own step and before the next one
        start = bisect_left(keys, _STEP_ORDER(s), lo=begin)
        end = len(keys) if i == last else bisect_left(keys, _STEP_ORDER(items[i + 1]), lo=start)
        if start < end:
            if is_open or rectified_at is None:
                is_open, rectified_at = False, closers.visits[start].occurred_at
            if not visit_id:
                visit_id = next((v.visit_id for v in closers.visits[start:end] if v.visit_id), None)
            event_ids += closers.event_ids[start:end]
            begin = end
    return ProblemFacts(
        pid,
        first.kind,
        description,
        first.origin,
        visit_id or None,
        first.occurred_at,
        is_open,
        responsible,
        due,
        rectified_at,
        tuple(dict.fromkeys(event_ids)),
    )
