"""A household's records folded as one batch reach what one record at a time reaches.

The worker takes what the stream has at hand and, per household, folds every record of the
batch and assesses once (`service.apply_records`). Whatever the split into batches and the
order of the records, the stored state, chain and last emitted digest are those of applying
the records one at a time in the same order; a redelivered record still re-sends the last
emitted assessment, so a send lost in a crash reaches the log whatever else shares its batch.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.adapters.table_codec import dump_row, load_row
from services.monitoring.service import Position, apply_record, apply_records
from tests.seed_households import monitored_then_eliminated, wu_chickens, wu_sales_aid, zhou_uremia
from tests.unit.monitoring.events import domain

BOOK = load_policies()
NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
HISTORIES = {
    "zhou": zhou_uremia(),
    "wu": wu_chickens() + wu_sales_aid(),
    "elim": monitored_then_eliminated(),
}


def item(events, i):
    topic = f"household.t{i % 2}"  # two topics: the chain is per topic, in offset order
    return events[i], Position(topic, 0, i), f"frame-{i}".encode()


def one_at_a_time(events, order):
    row = None
    for i in order:
        row = apply_record(row, *item(events, i), BOOK, NOW, event_clock=True).row
    return row


def batched(events, order, cuts):
    row, start, emitted = None, 0, []
    for end in [*sorted(set(cuts)), len(order)]:
        if end <= start:
            continue
        folded = apply_records(
            row, [item(events, i) for i in order[start:end]], BOOK, NOW, event_clock=True
        )
        assert all(refused is None for refused in folded.refused)
        row = load_row(dump_row(folded.outcome.row))  # read back, as a restarted worker would
        if folded.outcome.emit is not None:
            emitted.append(folded.outcome.emit)
        start = end
    return row, emitted


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_split_into_batches_stores_what_one_at_a_time_stores(data):
    name = data.draw(st.sampled_from(sorted(HISTORIES)))
    events = domain(HISTORIES[name])
    order = data.draw(st.permutations(range(len(events))))
    cuts = data.draw(st.lists(st.integers(0, len(order)), max_size=4))
    expected = one_at_a_time(events, order)
    row, emitted = batched(events, order, cuts)
    assert row.state == expected.state
    assert row.chain == expected.chain
    assert row.emitted_digest == expected.emitted_digest
    assert emitted  # a first batch always emits
    assert str(emitted[-1]["event_id"]) == row.emitted_event_id


def test_a_redelivered_record_in_a_batch_of_new_ones_resends_the_last_assessment():
    events = domain(zhou_uremia())
    n = len(events)
    first = apply_records(
        None, [item(events, i) for i in range(n - 1)], BOOK, NOW, event_clock=True
    )
    row = load_row(dump_row(first.outcome.row))
    sent = first.outcome.emit
    # the crash lost `sent`; the batch after the restart holds a redelivered record and a new one
    again = apply_records(
        row, [item(events, n - 2), item(events, n - 1)], BOOK, NOW, event_clock=True
    )
    assert again.duplicates == (True, False)
    emit = again.outcome.emit
    if emit["event_id"] == sent["event_id"]:
        assert emit == sent  # the lost record, re-sent as it was
    else:
        assert emit["event_id"] != sent["event_id"]  # superseded by a newer assessment
    assert again.outcome.duplicate is False  # a new record applied: counted as a change


def test_a_batch_of_redelivered_records_changes_nothing_and_resends_as_it_was():
    events = domain(wu_chickens())
    n = len(events)
    first = apply_records(None, [item(events, i) for i in range(n)], BOOK, NOW, event_clock=True)
    row = load_row(dump_row(first.outcome.row))
    again = apply_records(row, [item(events, i) for i in range(n)], BOOK, NOW, event_clock=True)
    assert again.duplicates == (True,) * n
    assert again.outcome.duplicate is True
    assert again.outcome.row.state == row.state and again.outcome.row.chain == row.chain
    assert again.outcome.emit == first.outcome.emit


def test_a_record_of_another_household_is_refused_alone():
    events = domain(zhou_uremia())
    stranger = domain(wu_chickens())[0]
    folded = apply_records(
        None,
        [item(events, 0), (stranger, Position("household.t9", 0, 0), b"x"), item(events, 1)],
        BOOK,
        NOW,
        event_clock=True,
    )
    assert [type(r).__name__ if r else None for r in folded.refused] == [
        None,
        "NotApplicable",
        None,
    ]
    expected = one_at_a_time(events, [0, 1])
    assert folded.outcome.row.state == expected.state
    assert folded.outcome.row.chain == expected.chain
