"""The procedure's level rule at the door: each step by a token of its level, `body` and
`approving_level` agreeing with it; refused records are never written."""

from __future__ import annotations

import pytest

from services.visits.domain.levels import (
    COUNTY,
    DECISION_LEVEL,
    LEVEL_BODIES,
    TOWNSHIP,
    VILLAGE,
    level_refusal,
    writer_level,
)
from tests.unit.visits.conftest import Api
from tests.visits_samples import sample

ROLE_LEVEL = {"village": VILLAGE, "reviewer": TOWNSHIP, "operator": COUNTY}
ROLE_OF = {level: role for role, level in ROLE_LEVEL.items()}


def decision(name: str, level: str, **changes) -> dict:
    body = {"decision": name, "approving_level": level, "body": LEVEL_BODIES[level][0]}
    body["category"] = "UNSTABLE_LIFTED" if name == "INCLUDE" else None
    if name in ("VILLAGE_DELIBERATION", "TOWNSHIP_REVIEW"):
        body["outcome"] = "PASSED"
    if name != "NOTICE":
        body.update(notice_start=None, notice_days=0)
    return sample("review-decisions", **{**body, **changes})


def test_the_level_of_a_token():
    assert writer_level("operator", False) == COUNTY
    assert writer_level("cadre", True) == VILLAGE
    assert writer_level("cadre", False) == TOWNSHIP
    assert writer_level("feed", False) is None
    assert writer_level("auditor", False) is None


@pytest.mark.parametrize("name", sorted(DECISION_LEVEL))
@pytest.mark.parametrize("level", [VILLAGE, TOWNSHIP, COUNTY])
def test_each_step_only_at_its_level(name: str, level: str):
    record = {"decision": name, "approving_level": level, "body": LEVEL_BODIES[level][0]}
    refusal = level_refusal(record, level)
    if DECISION_LEVEL[name] == level:
        assert refusal is None
    else:
        assert refusal.status == 403 and refusal.field == "decision"
        assert f"{name} is the {DECISION_LEVEL[name].lower()}'s step" in refusal.message


def test_openings_from_any_level_and_a_warning_from_a_feed():
    for level in (VILLAGE, TOWNSHIP, COUNTY):
        for name in ("START_VERIFICATION", "APPLY", "PROPOSE_ELIMINATION"):
            record = {"decision": name, "approving_level": level, "body": LEVEL_BODIES[level][-1]}
            assert level_refusal(record, level) is None
    warning = {"decision": "START_VERIFICATION", "approving_level": "COUNTY", "body": "COUNTY"}
    assert level_refusal(warning, None) is None
    refusal = level_refusal({**warning, "decision": "APPLY"}, None)
    assert refusal.status == 403 and "department feed has no level" in refusal.message


def test_an_exception_is_the_countys_and_fields_must_agree_with_the_level():
    skipped = {"decision": "INCLUDE", "approving_level": "TOWNSHIP", "body": "TOWNSHIP"}
    refusal = level_refusal({**skipped, "exception": True}, TOWNSHIP)
    assert (refusal.status, refusal.field) == (403, "exception")
    assert "the county's to approve" in refusal.message
    # Even a village step marked as an exception needs the county.
    notice = {"decision": "NOTICE", "approving_level": "VILLAGE", "body": "VILLAGE"}
    assert level_refusal({**notice, "exception": True}, VILLAGE).field == "exception"
    wrong_level = level_refusal({**notice, "approving_level": "COUNTY"}, VILLAGE)
    assert (wrong_level.status, wrong_level.field) == (422, "approving_level")
    assert "must be VILLAGE" in wrong_level.message and "not COUNTY" in wrong_level.message
    wrong_body = level_refusal({**notice, "body": "AUDIT_GROUP"}, VILLAGE)
    assert (wrong_body.status, wrong_body.field) == (422, "body")
    assert "VILLAGE, SELF_CHECK_GROUP" in wrong_body.message


@pytest.mark.parametrize(
    ("role", "name", "status", "field"),
    [
        ("village", "VILLAGE_DELIBERATION", 202, None),
        ("village", "NOTICE", 202, None),
        ("village", "OBJECTION", 202, None),
        ("reviewer", "NOTICE", 403, "decision"),
        ("operator", "VILLAGE_DELIBERATION", 403, "decision"),
        ("reviewer", "TOWNSHIP_REVIEW", 202, None),
        ("village", "TOWNSHIP_REVIEW", 403, "decision"),
        ("operator", "TOWNSHIP_REVIEW", 403, "decision"),
        ("operator", "INCLUDE", 202, None),
        ("reviewer", "INCLUDE", 403, "decision"),
        ("reviewer", "REJECT", 403, "decision"),
        ("village", "ELIMINATE", 403, "decision"),
        ("reviewer", "KEEP_MONITORING", 403, "decision"),
        ("other-village", "NOTICE", 403, "household_id"),
    ],
)
async def test_the_door_refuses_a_step_by_the_wrong_level(
    api: Api, role: str, name: str, status: int, field: str | None
) -> None:
    level = ROLE_LEVEL.get(role, VILLAGE)
    body = decision(name, level)
    if name == "NOTICE":
        body.update(notice_start="2020-05-10", notice_days=5)
    response = await api.post("/v1/review-decisions", body, role=role)
    answer = await response.json(content_type=None)
    assert response.status == status, answer
    if status != 202:
        assert [e["field"] for e in answer["errors"]] == [field], answer
        assert api.sink.records == []


async def test_fields_that_disagree_with_the_token_are_422_naming_the_field(api: Api) -> None:
    for role, changes, field in (
        ("village", {"approving_level": "COUNTY"}, "approving_level"),
        ("village", {"body": "REVIEW_GROUP"}, "body"),
        ("reviewer", {"approving_level": "VILLAGE"}, "approving_level"),
        ("operator", {"body": "VILLAGE"}, "body"),
    ):
        name = {"village": "OBJECTION", "reviewer": "TOWNSHIP_REVIEW"}.get(role, "REJECT")
        response = await api.post(
            "/v1/review-decisions", decision(name, ROLE_LEVEL[role], **changes), role=role
        )
        answer = await response.json(content_type=None)
        assert response.status == 422, answer
        assert [e["field"] for e in answer["errors"]] == [field], answer
    assert api.sink.records == []


async def test_an_exception_by_a_reviewer_is_forbidden_and_by_the_county_accepted(
    api: Api,
) -> None:
    skip = decision("INCLUDE", TOWNSHIP, exception=True, reason="灾后紧急纳入")
    refused = await api.post("/v1/review-decisions", skip, role="reviewer")
    assert refused.status == 403
    assert (await refused.json(content_type=None))["errors"][0]["field"] == "exception"
    county = decision("INCLUDE", COUNTY, exception=True, reason="灾后紧急纳入")
    assert (await api.post("/v1/review-decisions", county, role="operator")).status == 202


async def test_a_batch_answers_each_decision_by_its_level(api: Api) -> None:
    records = [decision("OBJECTION", VILLAGE), decision("INCLUDE", VILLAGE)]
    response = await api.post("/v1/review-decisions:batch", {"records": records}, role="village")
    answer = await response.json(content_type=None)
    assert response.status == 207, answer
    assert [r["status"] for r in answer["results"]] == [202, 403]
    assert len(api.sink.records) == 1
