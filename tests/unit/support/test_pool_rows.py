"""A pool spread over table rows (`pool_rows`) decides as the whole state does, keeps every
row small, and reads the one-row pools workers wrote before."""

from __future__ import annotations

import functools
import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.catalogue import load_catalogue
from services.support.adapters.pool_rows import CLOSED, PoolBatch, PoolRows, dump_head, member_key
from services.support.adapters.table_codec import need_to_json
from services.support.domain.matcher import Cadre, PoolState, plan
from services.support.domain.pool_commands import (
    AllocateNeed,
    ReleaseMeasure,
    UpdateCadre,
    measure_of,
)
from services.support.service import pool_step
from tests.unit.support.households import household

CATALOGUE = load_catalogue()
JOBS = "county:public-welfare-jobs"
PAIRING = "township:鹤游镇:pairing"
VILLAGES = ("大石村", "水井村", "新溪村")
LEVELS = ("LOW", "HIGH")  # queue order is by urgency first, so waiters overtake each other


@functools.cache
def need_for(index: int, pool: str, level: str = "MEDIUM"):
    """A real planned need of `pool` for household `index` (its measure id is the planner's)."""
    profile = household(f"hh-{index:04d}", labour=0, weak_labour=1, level=level,
                        village=VILLAGES[index % 3])  # fmt: skip
    return next(n for n in plan(profile, CATALOGUE) if n.pool == pool)


def legacy_row(state: PoolState) -> bytes:
    """A pool's row as workers wrote it before member rows: everything in one JSON value."""
    return json.dumps({
        "pool": state.pool,
        "holders": {k: [h.household_id, h.cadre_id] for k, h in state.holders.items()},
        "waiting": [need_to_json(n) for n in state.waiting],
        "closed": sorted(state.closed),
        "cadres": [list(vars(c).values()) for c in state.cadres.values()],
    }, ensure_ascii=False).encode()  # fmt: skip


def through_rows(rows: PoolRows, pool: str, command, capacity):
    key = pool.encode()
    before = rows.load(key, pool, measure_of(command))
    after, decisions = pool_step(before, command, capacity)
    rows.store(key, before, after)
    return decisions


def commands(pool: str):
    needs = st.integers(0, 11).map(
        lambda i: AllocateNeed(need_for(i, pool, ("LOW", "HIGH")[i % 2]))
    )
    releases = st.integers(0, 13).map(
        lambda i: ReleaseMeasure(
            need_for(i, pool, LEVELS[i % 2]).measure_id if i < 12 else f"unknown-{i}", "COMPLETED"
        )
    )
    cadres = st.builds(
        Cadre,
        cadre_id=st.sampled_from(["c-1", "c-2", "c-3"]),
        township=st.just("鹤游镇"),
        village=st.one_of(st.none(), st.sampled_from(VILLAGES)),
        department=st.just("town"),
        max_households=st.integers(0, 3),
        active=st.booleans(),
    ).map(UpdateCadre)
    kinds = (needs, releases, cadres) if pool == PAIRING else (needs, releases)
    return st.lists(st.one_of(*kinds), max_size=40)


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.sampled_from([JOBS, PAIRING]), st.data(), st.integers(0, 4),
       st.sets(st.integers(0, 40)))  # fmt: skip
def test_a_pool_over_rows_decides_as_the_whole_state_does(pool, data, capacity, restarts):
    """Same decisions, command by command, as the matcher on the whole state; the same state
    read back, also by a worker that starts from the table alone (a restart, or another worker
    that owned the partition meanwhile)."""
    capacity = None if pool == PAIRING else capacity
    whole = PoolState(pool)
    table: dict[bytes, bytes] = {}
    rows = PoolRows(table)
    for index, command in enumerate(data.draw(commands(pool))):
        if index in restarts:
            rows = PoolRows(table)
        whole, expected = pool_step(whole, command, capacity)
        assert through_rows(rows, pool, command, capacity) == expected
    for reader in (rows, PoolRows(table)):
        assert reader.load(pool.encode(), pool, None) == replace(whole, closed=frozenset())
    for measure_id in whole.closed:
        assert table[member_key(pool.encode(), measure_id)] == CLOSED


@PROPERTY
@given(st.sampled_from([JOBS, PAIRING]), st.data(), st.integers(0, 4),
       st.lists(st.integers(1, 8), min_size=1))  # fmt: skip
def test_a_pool_s_commands_in_batches_decide_as_one_by_one(pool, data, capacity, sizes):
    """Commands cut into batches (`PoolBatch`: the rows read once, written once after the
    batch's last command) give the same decisions, command by command, and the same rows."""
    capacity = None if pool == PAIRING else capacity
    sequence = data.draw(commands(pool))
    whole, expected = PoolState(pool), []
    for command in sequence:
        whole, made = pool_step(whole, command, capacity)
        expected.append(made)
    table: dict[bytes, bytes] = {}
    rows, found, start = PoolRows(table), [], 0
    for size in sizes * (len(sequence) + 1):
        if start >= len(sequence):
            break
        batch = PoolBatch(rows, pool.encode())
        for command in sequence[start : start + size]:
            state, made = pool_step(batch.state_for(pool, measure_of(command)), command, capacity)
            batch.advance(state)
            found.append(made)
        batch.store()
        start += size
        rows = PoolRows(table) if size % 3 == 0 else rows  # now and then a fresh worker
    assert found == expected
    assert PoolRows(table).load(pool.encode(), pool, None) == replace(whole, closed=frozenset())
    assert {k for k, v in table.items() if v == CLOSED} == {
        member_key(pool.encode(), m) for m in whole.closed
    }


def test_no_row_grows_with_the_queue_or_the_pools_history():
    """A county-wide pool at a province's scale: 498 jobs held, 2,500 waiting, 2,000 closed.
    The one-row form passed Kafka's 1 MB record limit; spread, the largest row is the pool's
    own, and a command writes only the rows of the measures it changed."""
    table: dict[bytes, bytes] = {}
    rows = PoolRows(table)
    released = [need_for(index, JOBS).measure_id for index in range(2000)]
    filling = [AllocateNeed(need_for(index, JOBS)) for index in range(4998)]
    filling += [ReleaseMeasure(measure_id, "COMPLETED") for measure_id in released]
    for start in range(0, len(filling), 500):  # in batches, as the agent takes them
        batch = PoolBatch(rows, JOBS.encode())
        for command in filling[start : start + 500]:
            state, _ = pool_step(batch.state_for(JOBS, measure_of(command)), command, 498)
            batch.advance(state)
        batch.store()
    state = rows.load(JOBS.encode(), JOBS, None)
    assert (len(state.holders), len(state.waiting)) == (498, 2500)
    assert len(legacy_row(replace(state, closed=frozenset(released)))) > 1024 * 1024
    assert max(len(v) for v in table.values()) == len(table[JOBS.encode()]) < 200_000

    class Counting(dict):
        def __init__(self, *args):
            super().__init__(*args)
            self.writes: list[bytes] = []

        def __setitem__(self, key, value):
            self.writes.append(key)
            super().__setitem__(key, value)

    counting = Counting(table)
    next_out = need_for(2000, JOBS).measure_id
    through_rows(PoolRows(counting), JOBS, ReleaseMeasure(next_out, "COMPLETED"), 498)
    # the released one closed, the first waiter served (its row deleted), the pool's row
    assert counting.writes == [member_key(JOBS.encode(), next_out), JOBS.encode()]
    assert member_key(JOBS.encode(), state.waiting[0].measure_id) not in counting


def test_a_one_row_pool_from_before_is_read_and_spread_over_rows():
    whole = PoolState(JOBS)
    for index in range(6):
        whole, _ = pool_step(whole, AllocateNeed(need_for(index, JOBS)), 2)
    for index in (0, 4):
        whole, _ = pool_step(
            whole, ReleaseMeasure(need_for(index, JOBS).measure_id, "CANCELLED"), 2
        )
    whole, _ = pool_step(whole, ReleaseMeasure("never-requested", "CANCELLED"), 2)
    table = {JOBS.encode(): legacy_row(whole)}
    rows = PoolRows(table)
    assert rows.load(JOBS.encode(), JOBS, None) == replace(whole, closed=frozenset())
    assert table[JOBS.encode()] == dump_head(whole)
    for measure_id in whole.closed:
        assert rows.load(JOBS.encode(), JOBS, measure_id).closed == {measure_id}
    # and it goes on deciding as the whole state would
    for command in (AllocateNeed(need_for(0, JOBS)), ReleaseMeasure(need_for(1, JOBS).measure_id,
                                                                    "COMPLETED")):  # fmt: skip
        whole, expected = pool_step(whole, command, 2)
        assert through_rows(rows, JOBS, command, 2) == expected


def test_a_queue_naming_a_need_it_does_not_hold_is_refused_not_guessed():
    table: dict[bytes, bytes] = {}
    rows = PoolRows(table)
    for index in range(3):
        through_rows(rows, JOBS, AllocateNeed(need_for(index, JOBS)), 1)
    del table[member_key(JOBS.encode(), need_for(2, JOBS).measure_id)]
    with pytest.raises(KeyError, match="queues measure .* without its need"):
        PoolRows(table).load(JOBS.encode(), JOBS, None)
