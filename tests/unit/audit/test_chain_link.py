"""Replay's chains hash a household's records as the worker does, and skip what it skips."""

from __future__ import annotations

import datetime as dt

from services.audit.chain import HouseholdChains
from services.monitoring.domain.row import Row
from services.monitoring.domain.state import empty
from services.monitoring.service import Position, chain_hash, extend_chain

T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def test_chains_hash_like_the_worker_and_skip_a_reordered_record():
    chains = HouseholdChains("h")
    row = Row(empty("h"))
    for offset, frame in [(0, b"a"), (1, b"b"), (5, b"c")]:
        chains.add("household.visits", 3, offset, frame, f"e{offset}", T0, 0)
        row = Row(row.state, extend_chain(row, Position("household.visits", 3, offset), frame))
    assert chains.hash_of(chains.full()) == chain_hash(row.chain)
    before = chains.links["household.visits"][-1]
    assert chains.add("household.visits", 3, 4, b"late", "e4", T0, 0) is before
