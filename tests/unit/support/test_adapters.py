"""The support app's adapters: contract records ↔ domain (avro_translation), table values
(table_codec), and the standing decision a pool re-emits for a redelivered request."""

from __future__ import annotations

import datetime as dt

from services.contract.catalogue import load_catalogue
from services.contract.codec import Codec
from services.platform.kafka.worker import DEAD_LETTER, dead_letter_record
from services.support.adapters import avro_translation as avro
from services.support.adapters.pool_rows import PoolRows
from services.support.adapters.table_codec import (
    dump_profile,
    load_profile,
    need_from_json,
    need_to_json,
)
from services.support.domain.matcher import (
    Cadre,
    PoolState,
    Recommendation,
    Waiting,
    allocate,
    plan,
    standing,
    with_cadre,
)
from services.support.domain.profile import MeasureRequested, apply
from tests.records import cadre as cadre_record
from tests.records import registry
from tests.unit.support.households import household

CATALOGUE = load_catalogue()
CODEC = Codec.default()
NOW = dt.datetime(2020, 5, 16, 18, 0, tzinfo=dt.UTC)


def uremia():
    return household(
        "zhou",
        labour=0,
        weak_labour=1,
        students=1,
        chronically_ill=1,
        minimum_living_allowance=True,
        reasons=("rigid_expenditure",),
    )


def test_profiles_needs_and_pools_survive_their_table_encoding():
    profile = uremia()
    needs = plan(profile, CATALOGUE)
    assert needs
    for need in needs:
        profile = apply(profile, MeasureRequested(need.measure_id, need.catalogue_id, need.pool))
        assert need_from_json(need_to_json(need)) == need
    assert load_profile(dump_profile(profile)) == profile

    pairing = next(n for n in needs if n.measure_type == "PAIRING")
    state = PoolState(pairing.pool)
    state, _ = with_cadre(state, Cadre("c-1", "鹤游镇", "水井村", "town", 2, True))
    state, made = allocate(state, pairing, None)
    assert made == [Recommendation(pairing, "c-1")]
    table: dict[bytes, bytes] = {}
    PoolRows(table).store(pairing.pool.encode(), PoolState(pairing.pool), state)
    assert PoolRows(table).load(pairing.pool.encode(), pairing.pool, None) == state


def test_a_redelivered_request_gets_the_same_decision_and_event_id_again():
    needs = [n for n in plan(uremia(), CATALOGUE) if n.measure_type == "PUBLIC_WELFARE_JOB"]
    [job] = needs
    held, first = allocate(PoolState(job.pool), job, 1)
    again, nothing = allocate(held, job, 1)
    assert nothing == [] and again == held  # the pool itself changes nothing
    assert standing(held, job) == first
    ids = {avro.recommended_record(d, NOW)["event_id"] for d in first + standing(held, job)}
    assert len(ids) == 1

    other = next(n for n in plan(household("li", labour=0, weak_labour=1), CATALOGUE)
             if n.measure_type == "PUBLIC_WELFARE_JOB")  # fmt: skip
    queued, waits = allocate(held, other, 1)
    assert waits == [Waiting(other, job.pool, 1)] == standing(queued, other)
    assert standing(PoolState(job.pool, closed=frozenset({job.measure_id})), job) == []


def test_recommendations_encode_under_the_contract_and_translate_back():
    need = next(n for n in plan(uremia(), CATALOGUE) if n.measure_type == "MEDICAL")
    for decision in (need, Recommendation(need), Waiting(need, "county:medical", 3)):
        record = avro.recommended_record(decision, NOW)
        decoded = CODEC.decode(CODEC.encode(avro.MEASURE_STEP, record)).record
        step = avro.step_from(decoded)
        assert (step.measure_id, step.step, step.catalogue_id) == (
            need.measure_id,
            "RECOMMENDED",
            need.catalogue_id,
        )
        assert decoded["reasons"][0] == need.rule  # each says which rule produced it
        assert (decoded["waiting_for"] is None) == (not isinstance(decision, Waiting))


def test_registry_assessment_and_cadre_records_translate():
    event = registry("h1", NOW, students=1, chronically_ill=1, allowance=True)
    decoded = CODEC.decode(CODEC.encode(*event)).record
    fact = avro.registry_from(decoded)
    assert (fact.township, fact.members.students, fact.minimum_living_allowance) == (
        "鹤游镇",
        1,
        True,
    )
    cadre = avro.cadre_from(cadre_record("c1", NOW, village=None, max_households=5)[1])
    assert cadre == Cadre("c1", "鹤游镇", None, "town", 5, True)


def test_dead_letter_ids_are_stable_per_origin_position():
    def record(offset: int) -> dict:
        return dead_letter_record(avro.ACTOR, avro.DEAD_LETTER_NAMESPACE, "household.risk", 2,
                                  offset, b"k", b"x", "UNDECODABLE", "bad", NOW)  # fmt: skip

    a, b, c = record(7), record(7), record(8)
    assert a["event_id"] == b["event_id"] != c["event_id"]
    CODEC.encode(DEAD_LETTER, a)  # valid under the contract


def test_a_recommendation_happens_when_its_assessment_speaks_for_not_when_it_is_processed():
    profile = uremia()
    need = next(n for n in plan(profile, CATALOGUE) if n.measure_type == "MEDICAL")
    processed_years_later = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    record = avro.recommended_record(Recommendation(need), processed_years_later)
    assert record["occurred_at"] == profile.assessment.as_of
    assert record["recorded_at"] == processed_years_later
