"""`assess` and the facts leave their input state as it was (its remembered views included),
and every state `evolve` makes has a memo of its own."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given

from services.monitoring.domain.assess import assess, remembering
from services.monitoring.domain.facts import incomes_at, visits_at
from services.monitoring.domain.fold import evolve
from services.monitoring.domain.problems import problems_at
from services.monitoring.domain.state import empty
from tests.unit.monitoring.test_fold_properties import BOOK, HOUSEHOLD, SETTINGS, histories


def values(state) -> tuple:
    """Every field but the memo, as the very objects the state holds."""
    return tuple(getattr(state, f.name) for f in dataclasses.fields(state) if f.name != "views")


def snapshot(state) -> tuple:
    """The state's value, and its memo entry by entry (the very objects it remembers)."""
    views = state.views
    return (
        state,
        values(state),
        id(views),
        {name: (key, id(result)) for name, (key, result) in views.items()},
    )


def unchanged(state, before: tuple) -> bool:
    value, fields, views_id, entries = before
    return (
        state == value
        and all(a is b for a, b in zip(fields, values(state), strict=True))
        and id(state.views) == views_id
        and {name: (key, id(result)) for name, (key, result) in state.views.items()} == entries
    )


@SETTINGS
@given(histories())
def test_assess_and_the_facts_leave_their_input_state_unchanged(events):
    state = empty(HOUSEHOLD)
    for event in events:
        state = evolve(state, event)
        moments = (state.last_occurred_at, event.occurred_at, event.occurred_at - dt.timedelta(1))
        for policy in BOOK.policies:
            for moment in moments:
                before = snapshot(state)
                assessment = assess(state, policy, moment)
                visits_at(state, moment), incomes_at(state, moment), problems_at(state, moment)
                assert unchanged(state, before)
                again, remembered = remembering(state, policy, moment)
                assert again == assessment and remembered == state
                assert remembered.views is not state.views
                assert unchanged(state, before)
        # as the worker does: keep the state that remembers the latest assessment's views
        _, state = remembering(state, BOOK.for_date(state.last_occurred_at.date()), moments[0])


@SETTINGS
@given(histories())
def test_evolved_states_do_not_share_memo_dicts(events):
    state = empty(HOUSEHOLD)
    memos = {id(state.views): state.views}  # kept alive, so their ids are not reused
    for event in events:
        following = evolve(state, event)
        if following is state:  # a duplicate: no new state
            continue
        assert following.views is not state.views
        assert id(following.views) not in memos
        memos[id(following.views)] = following.views
        _, state = remembering(
            following, BOOK.for_date(following.last_occurred_at.date()), following.last_occurred_at
        )
        assert state.views is not following.views
        memos[id(state.views)] = state.views
