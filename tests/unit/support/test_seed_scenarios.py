"""The seed's households, matched against the Dianjiang default catalogue."""

from __future__ import annotations

import pytest

from services.contract.catalogue import load_catalogue
from services.support.domain.matcher import Cadre, PoolState, Recommendation, match, plan
from tests.unit.support.households import household

CATALOGUE = load_catalogue()
CADRES = [
    Cadre("c-wang", "鹤游镇", "水井村", "town-office", 5),
    Cadre("c-yang", "鹤游镇", "新溪村", "agriculture", 5),
    Cadre("c-town", "鹤游镇", None, "town-office", 20),
]


def by_type(recommendations: tuple[Recommendation, ...], household_id: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for r in recommendations:
        if r.need.household_id == household_id:
            found.setdefault(r.need.measure_type, []).append(r)
    return found


def test_the_uremia_patient_gets_a_cadre_medical_aid_and_light_industry():
    # 周中勇: 42, uremia (cannot do heavy work), son in primary school, on 低保, lifted in 2015.
    zhou = household(
        "hh-zhou",
        village="水井村",
        count=2,
        labour=0,
        weak_labour=1,
        students=1,
        chronically_ill=1,
        head_birth_year=1978,
        livelihood="MIXED",
        minimum_living_allowance=True,
        reasons=("rigid_expenditure", "income_below_line"),
    )
    result = match([zhou], CATALOGUE, cadres=CADRES)
    got = by_type(result.recommendations, "hh-zhou")

    assert [r.cadre_id for r in got["PAIRING"]] == ["c-wang"]  # same village first
    assert [r.need.catalogue_id for r in got["MEDICAL"]] == ["medical.serious-illness"]
    assert "rigid_expenditure" in got["MEDICAL"][0].need.rule
    industry = got["INDUSTRY"]
    assert [r.need.catalogue_id for r in industry] == ["industry.poultry"]
    assert not CATALOGUE.measure("industry.poultry").eligible.labour_min  # no full labour needed
    assert "MICROCREDIT" not in got  # no full labour
    assert "MINIMUM_LIVING" not in got  # already on the allowance
    assert result.waiting == ()


def test_the_poultry_farmer_with_unsold_chickens_gets_sales_aid():
    # 吴茂国 of 新溪村: lifted, lives on poultry, 100+ chickens unsold in the epidemic.
    wu = household(
        "hh-wu",
        village="新溪村",
        labour=2,
        livelihood="LIVESTOCK",
        level="MEDIUM",
        reasons=("unsold_produce",),
    )
    result = match([wu], CATALOGUE, cadres=CADRES)
    got = by_type(result.recommendations, "hh-wu")

    assert [r.need.catalogue_id for r in got["SALES_AID"]] == ["sales.produce-buyers"]
    assert got["SALES_AID"][0].need.reasons == (
        "risk reason unsold_produce is answered by sales.produce-buyers",
    )
    assert [r.cadre_id for r in got["PAIRING"]] == ["c-yang"]


@pytest.mark.parametrize(
    ("birth_year", "labour", "livelihood", "expected"),
    [
        (1978, 1, "BUSINESS", True),  # 42, labour, runs a business
        (2003, 1, "FARMING", False),  # 17 in 2020: under age
        (1954, 1, "FARMING", False),  # 66: over age
        (1978, 0, "FARMING", False),  # no labour
        (1978, 1, "TRANSFERS", False),  # lives on transfers: no production use
        (None, 1, "FARMING", False),  # age unknown: not assumed eligible
    ],
)
def test_microcredit_goes_to_households_with_labour_and_a_business_within_caps(
    birth_year, labour, livelihood, expected
):
    candidate = household(
        "hh-loan", labour=labour, head_birth_year=birth_year, livelihood=livelihood
    )
    loans = [n for n in plan(candidate, CATALOGUE) if n.measure_type == "MICROCREDIT"]
    assert bool(loans) is expected
    for loan in loans:
        assert loan.amount_yuan is not None and 0 < loan.amount_yuan <= 50_000
        assert loan.term_months is not None and 0 < loan.term_months <= 36


def test_the_499th_public_welfare_job_request_waits():
    # Weak-labour households, spread over townships, all asking the county's 498 jobs.
    applicants = [
        household(
            f"hh-{i:04d}",
            township=f"town-{i % 26:02d}",
            labour=0,
            weak_labour=1,
            livelihood="TRANSFERS",
            level="MEDIUM",
        )
        for i in range(499)
    ]
    result = match(applicants, CATALOGUE)
    jobs = [r for r in result.recommendations if r.need.measure_type == "PUBLIC_WELFARE_JOB"]
    assert len(jobs) == 498
    [waiting] = [w for w in result.waiting if w.pool == "county:public-welfare-jobs"]
    assert waiting.need.household_id == "hh-0498"
    assert waiting.position == 1
    assert len(result.pools["county:public-welfare-jobs"].holders) == 498


def test_a_released_job_goes_to_the_waiting_household():
    from services.support.domain.matcher import release

    applicants = [
        household(f"hh-{i}", labour=0, weak_labour=1, livelihood="TRANSFERS") for i in range(3)
    ]
    small = {"county:public-welfare-jobs": PoolState("county:public-welfare-jobs")}
    catalogue = CATALOGUE
    result = match(applicants, catalogue, pools=small)
    state = result.pools["county:public-welfare-jobs"]
    assert len(state.holders) == 3  # capacity 498: nobody waits
    first = next(iter(state.holders))
    state, decisions = release(state, first, 2)  # capacity cut to 2 meanwhile: nobody promoted
    assert decisions == [] and len(state.holders) == 2
    state, again = release(state, first, 2)
    assert again == [] and first in state.closed


def test_no_cadre_with_room_means_the_household_waits_for_pairing():
    busy = [Cadre("c-only", "鹤游镇", "水井村", "office", 1)]
    first = household("hh-a", level="HIGH")
    second = household("hh-b", level="LOW")
    result = match([second, first], CATALOGUE, cadres=busy)
    pairings = [r for r in result.recommendations if r.need.measure_type == "PAIRING"]
    assert [(r.need.household_id, r.cadre_id) for r in pairings] == [("hh-a", "c-only")]
    [waiting] = [w for w in result.waiting if w.need.measure_type == "PAIRING"]
    assert (waiting.need.household_id, waiting.pool) == ("hh-b", "township:鹤游镇:pairing")


def test_households_not_in_a_served_workflow_get_nothing():
    for workflow in ("NOT_FLAGGED", "ELIMINATED", "REJECTED", "ELIMINATION_PROPOSED"):
        assert plan(household("hh-x", workflow=workflow), CATALOGUE) == ()


def test_protective_measures_for_a_household_without_labour():
    elderly = household(
        "hh-old", labour=0, weak_labour=0, elderly=2, count=2, livelihood="TRANSFERS"
    )
    types = {n.catalogue_id for n in plan(elderly, CATALOGUE)}
    assert "industry.asset-dividend" in types
    assert "protection.minimum-living" in types
    assert not types & {"industry.livestock", "industry.poultry", "credit.microcredit"}
