"""Properties of the policy transition, like the fold's: any arrival order, duplicates and
repeated assessments give the same carry-over, recorded once per successor."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.domain.assess import assess, remembering
from services.monitoring.domain.fold import evolve, fold
from services.monitoring.domain.state import empty
from services.monitoring.domain.workflow import stage_at
from tests.records import hardship, income, registry, review, visit
from tests.unit.monitoring.events import domain

HOUSEHOLD = "500231-switch"
BOOK = load_policies()
SWITCH = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
START = dt.datetime(2020, 6, 1, tzinfo=dt.UTC)

moments = st.integers(0, 270 * 24).map(lambda h: START + dt.timedelta(hours=h))
# the switch itself and moments around it, so that decisions tie with it and each other
tied = st.sampled_from([SWITCH + dt.timedelta(hours=h) for h in (-30, -1, 0, 1, 30)])
when = st.one_of(moments, tied)
DECISIONS = ["START_VERIFICATION", "INCLUDE", "REJECT", "PROPOSE_ELIMINATION", "KEEP_MONITORING"]
CATEGORIES = ["UNSTABLE_LIFTED", "MARGINAL", "GENERAL_KEY", "SUDDEN_HARDSHIP"]


@st.composite
def records(draw, label: int):
    kind = draw(st.sampled_from(["registry", "income", "hardship", "review", "review", "visit"]))
    t = draw(when)
    name = f"e{label}"
    if kind == "registry":
        status = draw(st.sampled_from(["LIFTED", "NEVER_REGISTERED"]))
        return registry(HOUSEHOLD, t, registration=status, labour=draw(st.integers(0, 2)),
                        label=name)  # fmt: skip
    if kind == "income":
        return income(HOUSEHOLD, t, draw(st.integers(3000, 9000)), end=t.date().isoformat(),
                      label=name)  # fmt: skip
    if kind == "hardship":
        cause = draw(st.sampled_from(["ILLNESS", "DISASTER", "OTHER"]))
        return hardship(HOUSEHOLD, t, cause, draw(st.integers(0, 50000)),
                        resolved=draw(st.booleans()), label=name)  # fmt: skip
    if kind == "visit":
        return visit(HOUSEHOLD, t, visit_id=name, income=draw(st.none() | st.integers(3000, 9000)),
                     label=name)  # fmt: skip
    decision = draw(st.sampled_from(DECISIONS))
    category = draw(st.sampled_from(CATEGORIES)) if decision == "INCLUDE" else None
    return review(HOUSEHOLD, t, decision, category, label=name)


@st.composite
def histories(draw, max_size: int = 14):
    size = draw(st.integers(1, max_size))
    return domain([draw(records(i)) for i in range(size)])


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
AFTER = [SWITCH + dt.timedelta(days=d) for d in (0, 20, 120)]


def assessed(state, moments=AFTER):
    return [assess(state, BOOK.for_date(m.date()), m) for m in moments]


def transitions(assessment):
    return [r for r in assessment.reasons if r.code == "policy_transition"]


@SETTINGS
@given(histories(), st.randoms(use_true_random=False))
def test_the_carry_over_does_not_depend_on_arrival_order(events, rnd):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    a, b = fold(HOUSEHOLD, events), fold(HOUSEHOLD, shuffled)
    assert assessed(a) == assessed(b)
    for moment in AFTER:
        policy = BOOK.for_date(moment.date())
        assert stage_at(a, policy, moment) == stage_at(b, policy, moment)


@SETTINGS
@given(histories(), st.data())
def test_a_redelivered_event_changes_no_carry_over(events, data):
    duplicate = data.draw(st.sampled_from(events))
    position = data.draw(st.integers(0, len(events)))
    replayed = fold(HOUSEHOLD, [*events[:position], duplicate, *events[position:]])
    assert assessed(replayed) == assessed(fold(HOUSEHOLD, events))


@SETTINGS
@given(histories())
def test_the_carry_over_is_recorded_once_and_the_same_however_often_assessed(events):
    state = fold(HOUSEHOLD, events)
    late = max(e.occurred_at for e in events)
    moments = sorted({max(m, late) for m in AFTER})
    first = assessed(state, moments)
    # idempotent: assessing again, through remembered views or with none, gives the same
    assert first == assessed(state, moments)
    remembered = state
    for moment, expected in zip(moments, first, strict=True):
        again, remembered = remembering(remembered, BOOK.for_date(moment.date()), moment)
        assert again == expected
    bare = dataclasses.replace(state, views=None)
    assert assessed(bare, moments) == first
    # once per successor: with no event after the switch, every later assessment shows the
    # very same transition (none when the household was not in the workflow then)
    for a in first:
        assert len(transitions(a)) <= 1
    if late < SWITCH:
        assert len({tuple(transitions(a)) for a in first}) == 1
    # before the switch nothing is carried over, whatever the history
    before = assess(state, BOOK.for_date(dt.date(2020, 12, 31)), SWITCH - dt.timedelta(seconds=1))
    assert not transitions(before)


@SETTINGS
@given(histories(), st.randoms(use_true_random=False))
def test_the_worker_s_remembered_views_give_the_carry_over_computed_afresh(events, rnd):
    """As the worker runs: each event, in any order (late ones included), evolves the state
    that remembers the last assessment's views; the carry-over must match a fresh one."""
    arrival = list(events)
    rnd.shuffle(arrival)
    state = empty(HOUSEHOLD)
    for event in arrival:
        state = evolve(state, event)
        moment = max(state.last_occurred_at, AFTER[1])
        policy = BOOK.for_date(moment.date())
        fast, state = remembering(state, policy, moment)
        assert fast == assess(dataclasses.replace(state, views=None), policy, moment)
