"""The problems view against the straightforward computation it replaced, kept here as the oracle.

`problems._problems_at` bisects each problem's closing visits (the later visits that found its
kind secured) instead of appending every one of them to every problem as a step and walking
them all; the answer must be exactly the one below, which does the latter. Histories are drawn
to make what that shortcut could get wrong common: many visits finding and securing the same
kinds, problem-list steps continuing visit-found problems (`<visit>/<KIND>`, `/2`), list
problems without a visit, reopenings and tasks after closing visits, visit corrections, ties in
time, and views as of moments between events.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.monitoring.domain.facts import until, visits_at
from services.monitoring.domain.fold import fold
from services.monitoring.domain.problems import (
    _STEP_ORDER,
    PROBLEM_STEP_RANK,
    ProblemFacts,
    _problems_at,
    _secured_kinds,
    _Step,
    _visit_problems,
)
from services.monitoring.domain.state import HouseholdState
from tests.records import SIX_CHECKS, problem, visit
from tests.unit.monitoring.events import domain

HOUSEHOLD = "500231-problems"
START = dt.datetime(2020, 3, 1, tzinfo=dt.UTC)


def oracle(state: HouseholdState, at: dt.datetime) -> dict[str, ProblemFacts]:
    """`_problems_at` as it was before closing visits were bisected (main, 2026-12-05)."""
    steps: dict[str, list[_Step]] = {}
    visits = visits_at(state, at)
    for v in visits:
        for pid, step in _visit_problems(v):
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
    for v in visits:
        for kind in _secured_kinds(v).intersection(by_kind):
            for pid in by_kind[kind]:
                if firsts[pid].occurred_at < v.occurred_at:
                    steps[pid].append(
                        _Step(
                            v.occurred_at,
                            2,
                            v.event_id,
                            "RECTIFIED",
                            kind,
                            "found secured on a later visit",
                            v.cadre_id,
                            None,
                            v.visit_id,
                            "visit",
                        )
                    )
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
                is_open = is_open or rectified_at is None
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


# few distinct days and hours, so that equal moments (ties broken by rank, then id) are common
moments = st.builds(
    lambda day, hour: START + dt.timedelta(days=day, hours=hour),
    st.integers(0, 40),
    st.sampled_from([0, 0, 6]),
)
visit_ids = st.sampled_from([f"v{i}" for i in range(8)])
kinds = st.sampled_from(["HOUSING", "WATER", "POLICY_CARD", "LIVING_ENVIRONMENT"])


@st.composite
def records(draw, label: int):
    t = draw(moments)
    name = f"e{label}"
    if draw(st.integers(0, 2)):  # visits are most of a long history
        return visit(
            HOUSEHOLD,
            t,
            visit_id=draw(visit_ids),
            checks={
                c: draw(st.sampled_from(["SECURED", "PROBLEM", "NOT_CHECKED"])) for c in SIX_CHECKS
            },
            card=draw(st.sampled_from(["POSTED", "MISSING", "OUTDATED", "NOT_CHECKED"])),
            living=draw(st.sampled_from(["CLEAN", "UNTIDY", "DIRTY"])),
            problems=tuple(
                draw(st.lists(st.tuples(kinds, st.just("seen"), st.booleans()), max_size=3))
            ),
            recorded=t + dt.timedelta(hours=draw(st.integers(0, 48))),  # corrections win by it
            label=name,
        )
    pid = draw(
        st.one_of(
            st.builds(lambda v, k: f"{v}/{k}", visit_ids, kinds),  # continues a visit's problem
            st.builds(lambda v, k: f"{v}/{k}/2", visit_ids, kinds),
            st.sampled_from(["p1", "p2"]),  # on the problem list only
        )
    )
    return problem(
        HOUSEHOLD,
        t,
        pid,
        draw(st.sampled_from(["FOUND", "TASK_ASSIGNED", "RECTIFIED", "REOPENED"])),
        draw(kinds),
        due=draw(st.none() | st.just("2020-05-01")),
        label=name,
        visit_id=draw(st.none() | st.just("") | visit_ids),
    )


@st.composite
def histories(draw):
    size = draw(st.integers(1, 40))
    return domain([draw(records(i)) for i in range(size)])


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(histories(), st.lists(moments, max_size=3))
def test_the_problems_view_is_what_walking_every_closing_step_gives(events, extra_moments):
    state = fold(HOUSEHOLD, events)
    for at in [state.last_occurred_at, *extra_moments]:
        assert _problems_at(state, at) == oracle(state, at)
        # the view's order is part of the answer (an assessment lists open problems in it)
        assert list(_problems_at(state, at)) == list(oracle(state, at))
