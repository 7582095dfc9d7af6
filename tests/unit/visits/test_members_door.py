"""The door's grammar for registry v3's member list and hardship v2's expense and diagnosis:
each bad value is refused naming the member's index and field, nothing else is refused."""

from __future__ import annotations

import datetime as dt

import pytest

from services.contract.codec import Codec
from services.contract.inputs import BY_SLUG
from services.visits.domain.records import Origin, prepare
from tests.records import diagnosis, expense, member
from tests.visits_samples import sample

NOW = dt.datetime(2020, 5, 17, 0, 0, tzinfo=dt.UTC)
SKEW = dt.timedelta(minutes=5)
ORIGIN = Origin(actor="cadre-0042", source="APP")


def run(codec: Codec, slug: str, body: object):
    return prepare(codec, BY_SLUG[slug], body, ORIGIN, NOW, SKEW)


def household(people: list[dict], **counts: int) -> dict:
    """The households sample (occurred 2020-04-01) with `people`."""
    body = sample("households")
    body["members"] = {
        "count": len(people),
        "labour": 0,
        "weak_labour": 0,
        "students": 0,
        "disabled": 0,
        "chronically_ill": 0,
        "elderly": 0,
        **counts,
        "people": people,
    }
    return body


FAMILY = [
    member("1", "1978-03", labour="WEAK", health="SERIOUS_ILLNESS"),
    member("2", "1980-06", relation="SPOUSE", sex="FEMALE"),
    member("3", "2011-09", relation="CHILD", labour="NONE", schooling="PRIMARY"),
    member("4", "1950-01", relation="PARENT", labour="NONE", health="DISABILITY", grade=2),
]
FAMILY_COUNTS = {"labour": 1, "weak_labour": 1, "students": 1, "disabled": 1,
                 "chronically_ill": 1, "elderly": 1}  # fmt: skip


def test_a_member_list_with_its_counts_is_admitted_and_decodes(codec: Codec) -> None:
    body = household(FAMILY, **FAMILY_COUNTS)
    body["personal"]["members"] = [
        {"member_id": "1", "name": "Zhou Yi", "citizen_id": "500228197803010011"},
        {"member_id": "3", "name": "Zhou San"},
    ]
    prepared = run(codec, "households", body)
    assert prepared.problems == []
    decoded = codec.decode(codec.encode(BY_SLUG["households"].event_type, prepared.record))
    people = decoded.record["members"]["people"]
    assert [p["member_id"] for p in people] == ["1", "2", "3", "4"]
    assert people[3]["disability_grade"] == 2 and people[0]["migrant_work_months"] == 0
    assert decoded.record["personal"]["members"][1]["citizen_id"] is None


@pytest.mark.parametrize(
    ("change", "where", "words"),
    [
        (lambda p: p[2].update(birth_month=13), "members.people[2].birth_month", "between 1"),
        (lambda p: p[1].update(birth_month=0), "members.people[1].birth_month", "at least 1"),
        (lambda p: p[2].update(birth_year=2021), "members.people[2].birth_year", "after the"),
        # occurred_at is 1 April 2020 (+08:00): a member born in May 2020 is not born yet
        (
            lambda p: p[2].update(birth_year=2020, birth_month=5),
            "members.people[2].birth_month",
            "after the month",
        ),
        (
            lambda p: p[3].update(disability_grade=None),
            "members.people[3].disability_grade",
            "required when health is DISABILITY",
        ),
        (
            lambda p: p[3].update(disability_grade=5),
            "members.people[3].disability_grade",
            "between 1 and 4",
        ),
        (
            lambda p: p[0].update(disability_grade=1),
            "members.people[0].disability_grade",
            "only a DISABILITY",
        ),
        (
            lambda p: p[1].update(migrant_work_months=13),
            "members.people[1].migrant_work_months",
            "between 0 and 12",
        ),
        (lambda p: p[1].update(member_id="1"), "members.people[1].member_id", "repeats"),
        (lambda p: p[1].update(member_id="a b"), "members.people[1].member_id", "ASCII"),
        (lambda p: p[1].update(relation="HEAD"), "members.people[1].relation", "exactly one"),
        (lambda p: p[0].update(labour="STRONG"), "members.people[0].labour", ""),
        (lambda p: p[0].update(health="ILL"), "members.people[0].health", ""),
        (lambda p: p[2].update(schooling="UNIVERSITY"), "members.people[2].schooling", ""),
    ],
)
def test_a_bad_member_is_refused_by_its_index_and_field(
    codec: Codec, change, where: str, words: str
) -> None:
    people = [dict(p) for p in FAMILY]
    change(people)
    prepared = run(codec, "households", household(people, **FAMILY_COUNTS))
    named = [(w, p) for w, p in prepared.problems if w == where]
    assert named, prepared.problems
    assert words in named[0][1]


def test_counts_must_be_what_the_list_gives_on_the_day(codec: Codec) -> None:
    # the spouse turns 40 in June; the parent, born January 1950, is 70: elderly
    wrong = {**FAMILY_COUNTS, "labour": 2, "elderly": 0}
    problems = dict(run(codec, "households", household(FAMILY, **wrong)).problems)
    assert problems["members.labour"] == (
        "differs from members.people on the day of occurred_at (which gives 1)"
    )
    assert problems["members.elderly"].endswith("(which gives 1)")
    body = household(FAMILY, **FAMILY_COUNTS)
    body["members"]["count"] = 5
    assert "members.count" in dict(run(codec, "households", body).problems)


def test_a_members_personal_data_names_a_listed_member(codec: Codec) -> None:
    body = household(FAMILY, **FAMILY_COUNTS)
    body["personal"]["members"] = [{"member_id": "9", "name": "Nobody"}]
    problems = dict(run(codec, "households", body).problems)
    assert problems["personal.members[0].member_id"] == "names no member of members.people"


def test_counts_alone_are_still_admitted(codec: Codec) -> None:
    assert run(codec, "households", sample("households")).problems == []


def test_a_v2_hardship_with_expense_and_diagnosis(codec: Codec) -> None:
    body = {k: v for k, v in sample("hardships").items() if k != "rigid_expenditure_yuan"}
    body["expense"] = expense(10000, "MEDICAL")
    body["diagnosis"] = {"member_id": "1", "condition": "SERIOUS_ILLNESS"}
    prepared = run(codec, "hardships", body)
    assert prepared.problems == []
    assert prepared.record["rigid_expenditure_yuan"] == 0  # the default; readers use expense
    assert prepared.record["diagnosis"]["disability_grade"] is None


@pytest.mark.parametrize(
    ("fields", "where", "words"),
    [
        ({"diagnosis": diagnosis("DISABILITY", "1")}, "diagnosis.disability_grade", "required"),
        (
            {"diagnosis": diagnosis("CHRONIC_ILLNESS", "1", grade=2)},
            "diagnosis.disability_grade",
            "only a DISABILITY",
        ),
        (
            {"diagnosis": diagnosis("DISABILITY", "1", grade=0)},
            "diagnosis.disability_grade",
            "at least 1",
        ),
        (
            {"diagnosis": diagnosis("SERIOUS_ILLNESS", "1", member_index=0)},
            "diagnosis.member_index",
            "not both",
        ),
        (
            {"diagnosis": diagnosis("SERIOUS_ILLNESS", member_index=-1)},
            "diagnosis.member_index",
            "negative",
        ),
        ({"expense": expense(-5)}, "expense.amount_yuan", "negative"),
        ({"expense": expense(500, "FOOD")}, "expense.kind", ""),
        (
            {"expense": expense(500), "rigid_expenditure_yuan": 400},
            "rigid_expenditure_yuan",
            "equal expense.amount_yuan",
        ),
    ],
)
def test_a_bad_expense_or_diagnosis_names_its_field(
    codec: Codec, fields: dict, where: str, words: str
) -> None:
    body = {**sample("hardships"), "rigid_expenditure_yuan": 0, **fields}
    problems = [(w, p) for w, p in run(codec, "hardships", body).problems if w == where]
    assert problems, run(codec, "hardships", body).problems
    assert words in problems[0][1]


@pytest.mark.parametrize(
    ("slug", "fields"),
    [
        ("hardships", {"diagnosis": diagnosis("DISABILITY", "1", grade=2)}),
        ("hardships", {"diagnosis": diagnosis("DISABILITY", "1")}),
        ("hardships", {"diagnosis": diagnosis("CHRONIC_ILLNESS", "1", grade=2)}),
        ("hardships", {"diagnosis": diagnosis("SERIOUS_ILLNESS", "1", member_index=0)}),
        ("hardships", {"diagnosis": diagnosis("SERIOUS_ILLNESS", member_index=2)}),
        ("households", {"grade": None}),
        ("households", {"grade": 2}),
    ],
)
def test_the_published_forms_agree_with_the_server(codec: Codec, slug: str, fields: dict) -> None:
    """What the document states of the grade and member rules (JSON Schema `allOf`), a client's
    validator decides as the server does."""
    import jsonschema_rs

    from services.visits.domain.validation import in_schema

    if slug == "households":
        people = [dict(p) for p in FAMILY]
        people[3]["disability_grade"] = fields["grade"]
        body = household(people, **FAMILY_COUNTS)
    else:
        body = {**sample("hardships"), "rigid_expenditure_yuan": 0, **fields}
    forms = in_schema(BY_SLUG[slug].event_type)
    stated = all(jsonschema_rs.validator_for(form).is_valid(body) for form in forms)
    assert stated is (run(codec, slug, body).problems == [])
