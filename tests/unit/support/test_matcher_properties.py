"""Properties of the matcher over generated households, cadres and pool sizes."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.catalogue import load_catalogue
from services.support.domain.matcher import Cadre, allocate, match, release
from tests.unit.support.households import household

CATALOGUE = load_catalogue()
TOWNSHIPS = ("大石乡", "鹤游镇")
VILLAGES = ("大石村", "水井村", "新溪村")
REASONS = [*sorted(CATALOGUE.reasons), "unmapped_code"]


@st.composite
def households(draw, index: int):
    return household(
        f"hh-{index:03d}",
        township=draw(st.sampled_from(TOWNSHIPS)),
        village=draw(st.sampled_from(VILLAGES)),
        labour=draw(st.integers(0, 3)),
        weak_labour=draw(st.integers(0, 2)),
        students=draw(st.integers(0, 2)),
        chronically_ill=draw(st.integers(0, 1)),
        elderly=draw(st.integers(0, 2)),
        head_birth_year=draw(st.one_of(st.none(), st.integers(1940, 2010))),
        livelihood=draw(st.sampled_from(["FARMING", "LIVESTOCK", "BUSINESS", "TRANSFERS"])),
        minimum_living_allowance=draw(st.booleans()),
        workflow=draw(st.sampled_from(["FLAGGED", "MONITORED", "NOT_FLAGGED"])),
        level=draw(st.sampled_from(["LOW", "MEDIUM", "HIGH"])),
        reasons=tuple(draw(st.lists(st.sampled_from(REASONS), max_size=3, unique=True))),
    )


cadres = st.lists(
    st.builds(
        Cadre,
        cadre_id=st.sampled_from([f"c-{i}" for i in range(8)]),
        township=st.sampled_from(TOWNSHIPS),
        village=st.one_of(st.none(), st.sampled_from(VILLAGES)),
        department=st.just("dept"),
        max_households=st.integers(0, 3),
        active=st.booleans(),
    ),
    max_size=6,
    unique_by=lambda c: c.cadre_id,
)


@st.composite
def scenarios(draw):
    count = draw(st.integers(1, 25))
    profiles = [draw(households(i)) for i in range(count)]
    # Shrink every slot pool so that capacity binds in most examples.
    small = {
        pool_id: replace(pool, capacity=draw(st.integers(0, 4)), capacity_by_township={})
        for pool_id, pool in CATALOGUE.pools.items()
        if pool.kind == "slots"
    }
    catalogue = replace(CATALOGUE, pools={**CATALOGUE.pools, **small})
    return profiles, catalogue, draw(cadres)


PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios())
def test_never_over_capacity(scenario):
    profiles, catalogue, cadre_list = scenario
    result = match(profiles, catalogue, cadres=cadre_list)
    for instance, state in result.pools.items():
        pool, township = catalogue.pool_of_instance(instance)
        if pool.kind == "slots":
            assert len(state.holders) <= pool.capacity_of(township)
        else:
            for cadre in state.cadres.values():
                assert state.cadre_load(cadre.cadre_id) <= cadre.max_households
            assert all(
                state.cadres[h.cadre_id].active for h in state.holders.values()
            )  # inactive cadres get nobody new
    held = [r.need.measure_id for r in result.recommendations]
    assert len(held) == len(set(held))  # nobody holds the same slot twice


@PROPERTY
@given(scenarios())
def test_deterministic_for_the_same_input(scenario):
    profiles, catalogue, cadre_list = scenario
    first = match(profiles, catalogue, cadres=cadre_list)
    second = match(list(reversed(profiles)), catalogue, cadres=list(reversed(cadre_list)))
    assert first.recommendations == second.recommendations
    assert first.waiting == second.waiting


@PROPERTY
@given(scenarios())
def test_every_served_household_gets_a_cadre_when_capacity_allows(scenario):
    profiles, catalogue, cadre_list = scenario
    result = match(profiles, catalogue, cadres=cadre_list)
    paired = {
        r.need.household_id for r in result.recommendations if r.need.measure_type == "PAIRING"
    }
    waiting = {w.need.household_id for w in result.waiting if w.need.measure_type == "PAIRING"}
    served = [p for p in profiles if p.assessment.workflow in catalogue.serve_workflows]
    assert paired | waiting == {p.household_id for p in served}
    for township in TOWNSHIPS:
        if any(
            w.need.township == township for w in result.waiting if w.need.measure_type == "PAIRING"
        ):
            room = [c for c in cadre_list if c.township == township and c.active]
            state = result.pools.get(f"township:{township}:pairing")
            # Someone waits only when every active cadre of the township is full.
            assert all(state.cadre_load(c.cadre_id) >= c.max_households for c in room)


@PROPERTY
@given(scenarios())
def test_no_recommendation_without_a_rule_and_a_reason(scenario):
    profiles, catalogue, cadre_list = scenario
    result = match(profiles, catalogue, cadres=cadre_list)
    by_id = {p.household_id: p for p in profiles}
    for decision in [*result.recommendations, *result.waiting]:
        need = decision.need
        assert need.rule and need.reasons
        measure = catalogue.measure(need.catalogue_id)
        if measure.trigger == "reason":
            codes = set(by_id[need.household_id].assessment.reason_codes)
            assert any(
                need.catalogue_id in catalogue.reasons[c] for c in codes if c in catalogue.reasons
            )


@PROPERTY
@given(scenarios(), st.data())
def test_allocation_is_idempotent_and_releases_free_exactly_one_slot(scenario, data):
    profiles, catalogue, cadre_list = scenario
    result = match(profiles, catalogue, cadres=cadre_list)
    for decision in result.recommendations:
        need = decision.need
        if need.pool is None:
            continue
        state = result.pools[need.pool]
        capacity = catalogue.capacity(need.pool)
        again, made = allocate(state, need, capacity)
        assert again == state and made == []
        freed, promoted = release(state, need.measure_id, capacity)
        assert need.measure_id not in freed.holders
        assert len(freed.holders) <= len(state.holders)
        assert len(promoted) <= 1 or need.measure_type == "PAIRING"
        break
