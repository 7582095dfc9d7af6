"""Matching reads the registry's member list on the assessment's date: microcredit's borrower
aged 18-65 (birth month counts), public-welfare jobs for weak or partial labour of working age,
and the counts of a household without a list as before."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from services.contract.catalogue import load_catalogue
from services.support.adapters.table_codec import dump_profile, load_profile
from services.support.domain.matcher import ineligibility, plan
from tests.records import member
from tests.unit.support.households import AS_OF, household

CATALOGUE = load_catalogue()
LOAN = next(m for m in CATALOGUE.measures if m.type == "MICROCREDIT")
JOB = next(m for m in CATALOGUE.measures if m.type == "PUBLIC_WELFARE_JOB")
# AS_OF is 16 May 2020; the registry row is 100 days older (6 February 2020)
assert AS_OF.date() == dt.date(2020, 5, 16)


def _types(profile) -> set[str]:
    return {n.measure_type for n in plan(profile, CATALOGUE)}


@pytest.mark.parametrize(
    ("birth", "eligible"),
    [
        ("2002-06", False),  # 17 on 16 May 2020: 18 only from 1 June
        ("2002-05", True),  # 18 from 1 May 2020
        ("1954-06", True),  # 65 until 31 May 2020
        ("1954-05", False),  # 66 from 1 May 2020
    ],
)
def test_microcredit_borrower_age_18_to_65_on_the_assessment_date(birth, eligible):
    # the head (80, no labour) could never borrow; the other member decides
    people = [
        member("1", "1940-01", labour="NONE"),
        member("2", birth, relation="CHILD"),
    ]
    profile = household("hh-loan", people=people, livelihood="FARMING", head_birth_year=1940)
    # the age condition alone: at 65 a member is past working age (16-64), so the entry's
    # labour_min (a working-age labourer) is left out here to see the age bound itself
    failed = ineligibility(replace(LOAN.eligible, labour_min=None), profile)
    if eligible:
        assert failed == []
    else:
        assert failed == ["no member with labour aged 18-65 on 2020-05-16"]
        assert "MICROCREDIT" not in _types(profile)
    assert ("MICROCREDIT" in _types(profile)) is (birth == "2002-05")


def test_a_member_without_labour_is_no_borrower():
    people = [member("1", "1980-01", labour="NONE"), member("2", "1982-01", relation="SPOUSE")]
    profile = household("hh-loan", people=people, livelihood="FARMING")
    assert ineligibility(LOAN.eligible, profile) == []
    people[1] = member("2", "1982-01", relation="SPOUSE", labour="NONE")
    profile = household("hh-loan", people=people, livelihood="FARMING")
    assert "no member with labour aged 18-65 on 2020-05-16" in ineligibility(LOAN.eligible, profile)


def test_public_welfare_jobs_for_weak_or_partial_labour_of_working_age():
    partial = [member("1", "1970-01", labour="PARTIAL"), member("2", "1972-01", labour="NONE")]
    assert ineligibility(JOB.eligible, household("hh-job", people=partial)) == []
    # the same man at 65 (born May 1955) is no longer working-age labour
    aged = [member("1", "1955-05", labour="WEAK"), member("2", "1957-01", labour="NONE")]
    assert ineligibility(JOB.eligible, household("hh-job", people=aged))
    # a member with full labour answers the household's need for work otherwise
    full = [member("1", "1970-01", labour="PARTIAL"), member("2", "1995-01", relation="CHILD")]
    assert ineligibility(JOB.eligible, household("hh-job", people=full))


def test_counts_on_the_assessment_date_not_the_registrys():
    # 64 at the registry row (February 2020), 65 on 16 May 2020: the profile stays elderly-free
    # in its counts, the matching sees an elderly member with no working-age labour
    people = [member("1", "1955-04", labour="FULL")]
    profile = household("hh-age", people=people)
    assert profile.registry.members.labour == 1 and profile.registry.members.elderly == 0
    assert any("labour 0 < 1" in f for f in ineligibility(LOAN.eligible, profile))


def test_a_household_without_a_list_is_matched_by_its_counts():
    profile = household("hh-counts", labour=1, head_birth_year=1978, livelihood="FARMING")
    assert profile.registry.people == ()
    assert ineligibility(LOAN.eligible, profile) == []
    older = household("hh-counts", labour=1, head_birth_year=1954, livelihood="FARMING")
    assert ineligibility(LOAN.eligible, older) == ["head's age 66 not in 18-65"]


def test_the_member_list_survives_the_table_codec():
    people = [member("1", "1970-01", labour="PARTIAL", health="CHRONIC_ILLNESS")]
    profile = household("hh-codec", people=people)
    assert load_profile(dump_profile(profile)) == profile
