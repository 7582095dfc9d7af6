"""The support table codec: profiles and pool states round-trip through Avro exactly and
deterministically, the JSON values of before still load, an unreadable value fails clearly."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.contract.catalogue import load_catalogue
from services.platform.tables import TableFormatError
from services.support.adapters.table_codec import dump_pool, dump_profile, load_pool, load_profile
from services.support.domain.matcher import Cadre, PoolState, allocate, plan, with_cadre
from services.support.domain.profile import (
    MeasureReleased,
    MeasureRequested,
    MeasureState,
    Profile,
    apply,
)
from tests.records import member
from tests.unit.support.households import household

DATA = Path(__file__).parent / "data"
CATALOGUE = load_catalogue()
AT = dt.datetime(2020, 6, 1, 8, tzinfo=dt.UTC)


def samples() -> tuple[list[Profile], list[PoolState]]:
    """Profiles and pools as the support worker makes them: registry (with its member list),
    assessment, measures requested and released; pools with holders, a queue and cadres."""
    zhou = household(
        "zhou",
        labour=0,
        weak_labour=1,
        students=1,
        chronically_ill=1,
        minimum_living_allowance=True,
        reasons=("rigid_expenditure", "income_below_line"),
        people=[member("1", "1978-03", labour="WEAK"), member("2", "2011-09", relation="CHILD")],
    )
    li = household("li", labour=0, weak_labour=1, category=None, reasons=("unsold_produce",))
    needs = plan(zhou, CATALOGUE) + plan(li, CATALOGUE)
    profiles = []
    for profile in (zhou, li, household("empty-ish", workflow="NOT_FLAGGED", level="NONE")):
        for need in needs:
            if need.household_id == profile.household_id:
                profile = apply(
                    profile, MeasureRequested(need.measure_id, need.catalogue_id, need.pool)
                )
        profiles.append(profile)
    first = next(iter(profiles[0].measures))
    profiles[0] = apply(profiles[0], MeasureReleased(first, "workflow NOT_FLAGGED", AT))
    pools = []
    for pool in sorted({n.pool for n in needs if n.pool}):
        state = PoolState(pool)
        state, _ = with_cadre(state, Cadre("c-1", "鹤游镇", None, "town", 1, True))
        for need in (n for n in needs if n.pool == pool):
            state, _ = allocate(state, need, 1)
        pools.append(state)
    return profiles, pools


def test_the_samples_cover_what_the_schemas_hold():
    profiles, pools = samples()
    assert any(p.registry and p.registry.people for p in profiles)
    assert any(m.released and m.at for p in profiles for m in p.measures.values())
    assert any(s.holders and s.waiting and s.cadres for s in pools)


def test_json_values_written_before_the_avro_ones_still_load():
    """data/json_profiles.jsonl and json_pools.jsonl were written by the JSON codec (main at
    d5a0de6) from `samples()`: what a deployed support worker's changelogs hold."""
    profiles, pools = samples()
    raw_profiles = (DATA / "json_profiles.jsonl").read_bytes().splitlines()
    raw_pools = (DATA / "json_pools.jsonl").read_bytes().splitlines()
    assert len(raw_profiles) == len(profiles) and len(raw_pools) == len(pools)
    for raw, profile in zip(raw_profiles, profiles, strict=True):
        assert raw.startswith(b"{") and load_profile(raw) == profile
        assert len(dump_profile(profile)) < len(raw)
    for raw, pool in zip(raw_pools, pools, strict=True):
        assert raw.startswith(b"{") and load_pool(raw) == pool
        assert len(dump_pool(pool)) < len(raw)


def test_samples_round_trip_in_order_and_deterministically():
    profiles, pools = samples()
    for profile in profiles:
        raw = dump_profile(profile)
        back = load_profile(raw)
        assert back == profile and list(back.measures) == list(profile.measures)
        assert dump_profile(back) == raw
    for pool in pools:
        raw = dump_pool(pool)
        back = load_pool(raw)
        assert back == pool and list(back.holders) == list(pool.holders)
        assert list(back.cadres) == list(pool.cadres) and dump_pool(back) == raw


TEXT = st.text(max_size=10)
AWARE = st.datetimes(
    min_value=dt.datetime(1900, 1, 2),
    max_value=dt.datetime(2200, 1, 1),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8))]),
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.builds(
            MeasureState,
            TEXT,
            TEXT,
            st.none() | TEXT,
            TEXT,
            st.none() | AWARE,
            TEXT,
            st.lists(TEXT, max_size=3).map(tuple),
        ),
        max_size=4,
    ),
    st.integers(0, 2),
)
def test_any_measures_of_a_sample_profile_round_trip(measures, which):
    profile = samples()[0][which]
    profile = dataclasses.replace(
        profile, measures=MappingProxyType({m.measure_id: m for m in measures})
    )
    raw = dump_profile(profile)
    assert load_profile(raw) == profile and dump_profile(load_profile(raw)) == raw


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda raw: raw[:2] + bytes(8) + raw[10:], "fingerprint 0000000000000000"),
        (lambda raw: raw[:20], r"Profile v1 \(fingerprint"),
        (lambda raw: b"garbage", "not a support profile"),
        (lambda raw: b'{"household_id": "h"}', "JSON profile: KeyError"),
    ],
)
def test_a_profile_it_cannot_read_fails_naming_its_version_and_why(damage, says):
    with pytest.raises(TableFormatError, match=says):
        load_profile(damage(dump_profile(samples()[0][0])))


def test_a_pool_it_cannot_read_fails_naming_its_version_and_why():
    raw = dump_pool(samples()[1][0])
    with pytest.raises(TableFormatError, match=r"PoolState v1 \(fingerprint"):
        load_pool(raw[:-3])
