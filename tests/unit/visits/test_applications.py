"""A household's own application at a village service point: `POST /v1/applications`, only
for households of the token's village, and a service point's token records nothing else."""

from __future__ import annotations

import uuid

import pytest

from services.platform.auth.tokens import TokenError, new_token
from services.visits.domain.applications import application_decision, application_problems
from tests.unit.visits.conftest import Api
from tests.visits_samples import SAMPLES, sample

HOUSEHOLD = SAMPLES["visits"]["household_id"]


def application(**changes) -> dict:
    body = {
        "event_id": str(uuid.uuid4()),
        "household_id": HOUSEHOLD,
        "occurred_at": "2020-05-16T09:00:00+08:00",
        "reason": "因病支出大，申请纳入监测",
    }
    return {k: v for k, v in {**body, **changes}.items() if v is not ...}


def test_an_application_is_an_apply_of_the_village():
    record = application_decision(application())
    assert (record["decision"], record["body"], record["approving_level"]) == (
        "APPLY", "VILLAGE", "VILLAGE",
    )  # fmt: skip
    assert application_problems([]) == [("", "an application is a JSON object")]
    assert application_problems(application(decision="INCLUDE")) == [("decision", "unknown field")]
    assert application_problems(application(reason=...)) == [("reason", "required")]
    assert application_problems(application(reason="  "))[0][0] == "reason"


def test_a_service_point_is_a_cadre_token_of_one_village_that_records_applications():
    token = new_token("cadre", "sp", ["Gaofeng"], villages=["高峰村"], service_point=True)
    assert token.event_types == {"shouwang.events.ReviewDecided"} and token.service_point
    assert not token.reviewer  # it reads no household
    for kind, townships, villages, types in (
        ("operator", [], ["高峰村"], []),
        ("cadre", ["Gaofeng"], [], []),
        ("cadre", ["Gaofeng"], ["高峰村", "新民村"], []),
        ("cadre", ["Gaofeng"], ["高峰村"], ["VisitRecorded"]),
    ):
        with pytest.raises(TokenError):
            new_token(kind, "sp", townships, types, villages=villages, service_point=True)


async def test_a_service_point_records_an_application_of_its_village(api: Api, codec) -> None:
    response = await api.post("/v1/applications", application(), role="service-point")
    assert response.status == 202, await response.text()
    [(topic, key, value)] = api.sink.records
    record = codec.decode(value, "ReviewDecided").record
    assert (topic, key) == ("household.reviews", HOUSEHOLD.encode())
    assert (record["decision"], record["actor"], record["source"]) == ("APPLY", "sp-1", "APP")
    # A village-level token takes applications too.
    village = await api.post("/v1/applications", application(), role="village")
    assert village.status == 202


@pytest.mark.parametrize(
    ("role", "status", "field"),
    [
        ("other-service-point", 403, "household_id"),  # a household of another village
        ("operator", 403, None),  # not a village's token
        ("reviewer", 403, None),
        ("cadre", 403, None),
        ("auditor", 403, None),
    ],
)
async def test_an_application_is_refused_outside_the_village(
    api: Api, role: str, status: int, field: str | None
) -> None:
    response = await api.post("/v1/applications", application(), role=role)
    answer = await response.json(content_type=None)
    assert response.status == status, answer
    assert [e["field"] for e in answer.get("errors", [])] == ([field] if field else [])
    assert api.sink.records == []


async def test_bad_applications_are_422_naming_the_field_and_need_a_token(api: Api) -> None:
    for body, field in (
        (application(category="MARGINAL"), "category"),
        (application(reason=""), "reason"),
        (application(household_id=...), "household_id"),
        (application(occurred_at="yesterday"), "occurred_at"),
        (application(event_id="not-a-uuid"), "event_id"),
        (["not", "an", "object"], ""),
    ):
        response = await api.post("/v1/applications", body, role="service-point")
        answer = await response.json(content_type=None)
        assert response.status == 422, (body, answer)
        assert field in [e["field"] for e in answer["errors"]], answer
    anonymous = await api.client.post("/v1/applications", json=application())
    assert anonymous.status == 401
    assert api.sink.records == []


async def test_a_service_point_records_no_other_decision_or_record(api: Api) -> None:
    for name in ("START_VERIFICATION", "VILLAGE_DELIBERATION", "NOTICE"):
        body = sample(
            "review-decisions", decision=name, category=None, body="VILLAGE",
            approving_level="VILLAGE", notice_start=None, notice_days=0,
            outcome="PASSED" if name == "VILLAGE_DELIBERATION" else None,
        )  # fmt: skip
        if name == "NOTICE":
            body.update(notice_start="2020-05-10", notice_days=5)
        response = await api.post("/v1/review-decisions", body, role="service-point")
        answer = await response.json(content_type=None)
        assert response.status == 403, answer
        assert (
            "service point records households' own applications" in answer["errors"][0]["message"]
        )
    hardship = await api.post("/v1/hardships", sample("hardships"), role="service-point")
    assert hardship.status == 403
    assert api.sink.records == []
