"""Problems as of a moment: those found on visits and those on the problem list, with their steps.

A problem found on a visit has id `<visit_id>/<KIND>` (`/<KIND>/2`, ... for more of a kind); a
ProblemRecorded step with that id (e.g. RECTIFIED) continues it. A check reported PROBLEM, a
missing or outdated policy card and a dirty home open such a problem even when the visit's
problem list does not name it. A later visit that finds the matter secured closes it.
"""

from __future__ import annotations

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
    firsts = {pid: min(items, key=_STEP_ORDER) for pid, items in steps.items()}
    by_kind: dict[str, list[str]] = {}
    for pid, first in firsts.items():
        by_kind.setdefault(first.kind, []).append(pid)
    for visit in visits:  # a later visit that finds the matter secured closes the problem
        for kind in _secured_kinds(visit).intersection(by_kind):
            # one step value per visit and kind, shared by every problem it closes (steps are
            # frozen): a long history has many visits and problems of a kind
            closing = None
            for pid in by_kind[kind]:
                if firsts[pid].occurred_at < visit.occurred_at:
                    if closing is None:
                        closing = _Step(
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
                    steps[pid].append(closing)
    problems = {}
    for pid, items in sorted(steps.items()):
        items.sort(key=_STEP_ORDER)
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
