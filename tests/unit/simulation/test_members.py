"""The simulated county's members (registry v3) and v2 hardship reports: realistic for the seed
county, consistent with the counts, and admitted by the visits door as the demo sends them."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest

from services.contract.codec import Codec
from services.contract.inputs import KINDS
from services.contract.members import age_on, composition_on
from services.tools.simulation import SimulationParameters, generate
from services.tools.simulation import records as rec
from services.tools.simulation.county import CASE_UREMIA, LIFTED, build_county
from services.tools.simulation.sinks.api import request_json
from services.visits.domain.records import Origin, prepare

PARAMETERS = SimulationParameters(seed=5, scale=0.05)
START = PARAMETERS.calendar.start


@pytest.fixture(scope="module")
def county():
    return build_county(PARAMETERS)


@pytest.fixture(scope="module")
def events():
    return list(generate(PARAMETERS))


def test_every_household_lists_its_members_and_the_counts_are_theirs(county):
    for h in county.households:
        assert len(h.people) == h.members.count
        assert [p.relation for p in h.people].count("HEAD") == 1
        head = next(p for p in h.people if p.relation == "HEAD")
        assert head.birth_year == h.head_birth_year
        counted = composition_on([p.record() for p in h.people], START)
        assert counted.as_record() == {k: getattr(h.members, k) for k in counted.as_record()}
        assert all(p.birth_year <= 2019 or p.relation == "HEAD" for p in h.people)


def test_members_look_like_the_seed_county(county):
    lifted = [h for h in county.households if h.registration == LIFTED]
    people = [p for h in lifted for p in h.people]
    # seed: 31,585 people in 9,803 lifted households
    assert 3.1 < len(people) / len(lifted) < 3.35
    ages = [p.age_on(START) for p in people]
    elderly = sum(a >= 65 for a in ages) / len(ages)
    children = sum(a < 16 for a in ages) / len(ages)
    assert 0.08 < elderly < 0.35 and 0.1 < children < 0.35
    school_age = [p for p in people if 7 <= p.age_on(START) <= 14]
    assert all(p.schooling in ("PRIMARY", "JUNIOR") for p in school_age)
    working = [p for p in people if 16 <= p.age_on(START) <= 64 and p.schooling == "NONE"]
    full = sum(p.labour == "FULL" for p in working) / len(working)
    assert 0.6 < full < 0.95
    migrants = sum(p.migrant_work_months > 0 for p in working) / len(working)
    assert 0.2 < migrants < 0.6
    households = Counter(
        next((p.health for p in h.people if p.health != "HEALTHY"), "HEALTHY") for h in lifted
    )
    assert 0.05 < 1 - households["HEALTHY"] / len(lifted) < 0.35
    grades = Counter(p.disability_grade for p in people if p.health == "DISABILITY")
    assert set(grades) <= {1, 2, 3, 4} and None not in grades


def test_the_uremia_case_is_the_seeds_man(county):
    (zhou,) = [h for h in county.households if h.case == CASE_UREMIA]
    head = zhou.people[0]
    assert (head.relation, head.health, head.labour) == ("HEAD", "SERIOUS_ILLNESS", "WEAK")
    assert age_on(head.birth_year, head.birth_month, dt.date(2020, 5, 16)) == 42
    assert [p.schooling for p in zhou.people if p.relation == "CHILD"] == ["PRIMARY"]


def test_hardship_reports_are_v2_and_diagnose_listed_members(county, events):
    by_id = {h.household_id: h for h in county.households}
    reports = [e.record for e in events if e.event_type == rec.HARDSHIP]
    kinds = Counter(r["expense"]["kind"] for r in reports if r["expense"])
    assert kinds["MEDICAL"] and kinds["DISASTER_LOSS"] + kinds["ACCIDENT"]
    diagnosed = [r for r in reports if r["diagnosis"]]
    assert diagnosed
    for report in reports:
        assert (report["expense"] is None) == (report["rigid_expenditure_yuan"] == 0)
        if report["expense"]:
            assert report["expense"]["amount_yuan"] == report["rigid_expenditure_yuan"]
    for report in diagnosed:
        ids = {p.member_id for p in by_id[report["household_id"]].people}
        assert report["diagnosis"]["member_id"] in ids
        grade = report["diagnosis"]["disability_grade"]
        assert (grade is not None) == (report["diagnosis"]["condition"] == "DISABILITY")


def test_registry_and_hardship_records_pass_the_visits_door(events):
    """As the demo sends them (JSON through the API's `prepare`): counts agree with the list on
    each record's own day, member changes included."""
    codec = Codec.default()
    kinds = {k.event_type: k for k in KINDS}
    checked = Counter()
    for event in events:
        if event.event_type not in (rec.REGISTRY, rec.HARDSHIP):
            continue
        body = json.loads(json.dumps(request_json(event)))
        now = event.record["recorded_at"] + dt.timedelta(days=1)
        origin = Origin("simulation", event.record["source"])
        prepared = prepare(codec, kinds[event.event_type], body, origin, now, dt.timedelta(0))
        assert prepared.problems == [], (event.record["household_id"], prepared.problems)
        checked[event.record.get("change", "HARDSHIP")] += 1
    assert checked["BASELINE"] and checked["MEMBERSHIP_CHANGE"] and checked["HARDSHIP"]
