"""Replay's chain link function equals monitoring's, which it writes out for speed."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from services.audit.chain import HouseholdChains, Link, next_head
from services.monitoring.adapters.table_codec import Row
from services.monitoring.domain.state import empty
from services.monitoring.service import Position, chain_hash, extend_chain

T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def reference_head(topic, previous, partition, offset, frame) -> str:
    """The head monitoring itself would store: its extend_chain over a one-topic row."""
    chain = (
        () if previous is None else ((topic, previous.partition, previous.offset, previous.head),)
    )
    linked = extend_chain(Row(empty(""), chain), Position(topic, partition, offset), frame)
    return next(h for t, _, _, h in linked if t == topic)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["household.visits", "household.registry", "t:ü|x"]),
    st.lists(st.tuples(st.integers(0, 11), st.binary(max_size=64)), min_size=1, max_size=8),
)
def test_next_head_is_monitorings_link(topic, records):
    previous = None
    for offset, (partition, frame) in enumerate(records):
        head = next_head(topic, previous, partition, offset, frame)
        assert head == reference_head(topic, previous, partition, offset, frame)
        previous = Link(partition, offset, head, f"e{offset}", T0, 0, offset + 1)


def test_chains_hash_like_the_worker_and_skip_a_reordered_record():
    chains = HouseholdChains("h")
    row = Row(empty("h"))
    for offset, frame in [(0, b"a"), (1, b"b"), (5, b"c")]:
        chains.add("household.visits", 3, offset, frame, f"e{offset}", T0, 0)
        row = Row(row.state, extend_chain(row, Position("household.visits", 3, offset), frame))
    assert chains.hash_of(chains.full()) == chain_hash(row.chain)
    before = chains.links["household.visits"][-1]
    assert chains.add("household.visits", 3, 4, b"late", "e4", T0, 0) is before
