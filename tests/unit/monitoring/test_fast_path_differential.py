"""The fast pure step against the straightforward one: same assessments, same emitted records.

The fast path keeps derived "as of" views in the state between events (`facts.memo`, the
workflow's stage) and skips hashing an assessment whose content equals what the row last
emitted. The reference below recomputes everything from the history on every event: the state
has memoisation off (`views=None`) and the row goes through the table codec before each step,
as a restarted worker would read it, so no remembered content or view survives. Arrival orders
are random, with late (out-of-order) events and redeliveries.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.monitoring.adapters.table_codec import dump_row, load_row
from services.monitoring.domain.assess import assess, remembering
from services.monitoring.domain.facts import incomes_at, visits_at
from services.monitoring.domain.fold import evolve, fold
from services.monitoring.domain.problems import problems_at
from services.monitoring.domain.row import Row
from services.monitoring.domain.state import LIMITS, HouseholdState, empty
from services.monitoring.service import Outcome, Position, apply_record, reassess
from tests.seed_households import monitored_then_eliminated
from tests.unit.monitoring.events import domain
from tests.unit.monitoring.test_fold_properties import BOOK, HOUSEHOLD, START, histories

NOW = dt.datetime(2021, 3, 1, tzinfo=dt.UTC)
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def reference_row(row: Row | None) -> Row | None:
    """`row` with nothing remembered: read back from its bytes, memoisation off."""
    if row is None:
        return None
    restored = load_row(dump_row(row))
    return dataclasses.replace(restored, state=dataclasses.replace(restored.state, views=None))


def reference_apply(row: Row | None, event, position, frame, now, event_clock) -> Outcome:
    base = reference_row(row) or Row(dataclasses.replace(empty(HOUSEHOLD), views=None))
    return apply_record(base, event, position, frame, BOOK, now, event_clock=event_clock)


@st.composite
def arrivals(draw):
    """Indexes into the history: a random order with some events delivered again."""
    events = draw(histories())
    order = draw(st.permutations(range(len(events))))
    order = list(order)
    for _ in range(draw(st.integers(0, 4))):
        order.insert(draw(st.integers(0, len(order))), draw(st.sampled_from(range(len(events)))))
    return events, order


def same_outcome(fast: Outcome, slow: Outcome) -> None:
    assert fast.assessment == slow.assessment
    assert fast.assessment.digest() == slow.assessment.digest()
    assert fast.emit == slow.emit
    assert fast.summary == slow.summary
    assert fast.duplicate == slow.duplicate
    assert fast.row == slow.row  # state (events, seen), chain, what was emitted and its digest
    assert fast.row.emitted_digest == (
        slow.assessment.digest() if slow.emit and not slow.duplicate else fast.row.emitted_digest
    )


@SETTINGS
@given(arrivals(), st.booleans())
def test_the_fast_step_emits_what_full_recomputation_emits(history, event_clock):
    events, order = history
    fast_row = slow_row = None
    for step, i in enumerate(order):
        position = Position("household.visits", 0, i)
        frame = f"frame-{i}".encode()
        now = NOW + dt.timedelta(hours=step)
        fast = apply_record(
            fast_row, events[i], position, frame, BOOK, now, event_clock=event_clock
        )
        slow = reference_apply(slow_row, events[i], position, frame, now, event_clock)
        same_outcome(fast, slow)
        fast_row, slow_row = fast.row, slow.row
        # a deadline check between events (no new event) agrees too
        later = now + dt.timedelta(days=40)
        same_outcome(
            reassess(fast_row, BOOK, later, event_clock=event_clock),
            reassess(reference_row(slow_row), BOOK, later, event_clock=event_clock),
        )


moments = st.integers(-30, 400).map(lambda d: START + dt.timedelta(days=d))


@SETTINGS
@given(arrivals(), st.lists(moments, min_size=1, max_size=4))
def test_views_as_of_any_moment_match_full_recomputation(history, moments):
    """Assessing as of earlier moments (a late event's, a replay's) between events, with the
    same memo the later moments use, never serves a view of the wrong moment."""
    events, order = history
    fast = empty(HOUSEHOLD)
    for i in order:
        fast = evolve(fast, events[i])
        slow = dataclasses.replace(fast, views=None)
        for moment in [*moments, fast.last_occurred_at]:
            for policy in BOOK.policies:
                a, b = assess(fast, policy, moment), assess(slow, policy, moment)
                assert a == b
                assert a.content() == b.content() and a.digest() == b.digest()


def test_the_memo_is_used_and_is_not_part_of_the_state():
    """Views are remembered across events of other kinds and moments (else there is no fast
    path), dropped when their events change, and never part of the state's value."""
    events = domain(monitored_then_eliminated())
    state = fold(events[0].household_id, events)
    policy = BOOK.for_date(state.last_occurred_at.date())
    later = state.last_occurred_at + dt.timedelta(days=30)
    _, state = remembering(state, policy, state.last_occurred_at)
    visits = visits_at(state, later)
    assert visits_at(state, later + dt.timedelta(days=300)) is visits
    assert problems_at(state, later) is problems_at(state, later)
    plain = dataclasses.replace(state, views=None)
    assert plain == state and hash(plain) == hash(state)
    assert visits_at(plain, later) is not visits and visits_at(plain, later) == visits

    registry_only = [e for e in events if type(e).__name__ == "RegistryRecorded"]
    if registry_only:  # a registry correction keeps the visits' view, drops the incomes'
        incomes = incomes_at(state, later)
        again = evolve(state, dataclasses.replace(registry_only[-1], event_id="fresh-id"))
        assert visits_at(again, later) is visits
        assert incomes_at(again, later) is not incomes


def test_the_state_fields_follow_the_order_evolve_builds_them_in():
    names = [f.name for f in dataclasses.fields(HouseholdState)]
    assert names == ["household_id", "seen", *LIMITS, "last_occurred_at", "views"]


def test_a_state_without_its_latest_moment_is_still_filtered_by_moment():
    """`last_occurred_at` only shortcuts the memo's check; a state built without it (by hand)
    must not be served a view that includes later events."""
    events = domain(monitored_then_eliminated())
    full = fold(events[0].household_id, events)
    bare = dataclasses.replace(full, last_occurred_at=None, views={})
    plain = dataclasses.replace(full, views=None)
    moments = sorted({e.occurred_at for e in events})
    for policy in BOOK.policies:
        _, bare = remembering(bare, policy, moments[-1])  # remembers views as of the latest event
        for moment in moments:
            assert assess(bare, policy, moment) == assess(plain, policy, moment)
