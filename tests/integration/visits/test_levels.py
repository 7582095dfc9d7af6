"""The procedure's level rule through the real door: tokens in PostgreSQL (a village-level one
with its villages), households' villages from the read model, accepted steps on the broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from services.contract.codec import Codec
from services.platform.auth.tokens import PostgresTokenStore, hash_secret, new_secret, new_token
from services.platform.config import VisitsSettings
from services.platform.postgres.migrate import apply_migrations
from tests.integration.visits.conftest import prepare_topics, read_record, running_app
from tests.visits_samples import sample

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def door(kafka_bootstrap: str, database_url: str) -> AsyncIterator[dict]:
    await prepare_topics(kafka_bootstrap)
    await apply_migrations(database_url)
    settings = VisitsSettings(request_timeout_seconds=10.0, token_cache_seconds=0.2)
    async with running_app(kafka_bootstrap, database_url, settings) as (client, pool):
        town = f"town-{uuid.uuid4().hex[:8]}"
        homes = {"H-lv-ours": "高峰村", "H-lv-theirs": "新民村", "H-lv-nowhere": None}
        for household_id, village in homes.items():
            await pool.execute(
                "INSERT INTO households (household_id, township, village) VALUES ($1, $2, $3) "
                "ON CONFLICT (household_id) DO UPDATE SET township = EXCLUDED.township, "
                "village = EXCLUDED.village",
                household_id,
                town,
                village,
            )
        store = PostgresTokenStore(pool)
        secrets = {}
        for role, token in {
            "village": new_token("cadre", "vc-gf", [town], ["ReviewDecided"], villages=["高峰村"]),
            "reviewer": new_token("cadre", "rg-gf", [town], ["ReviewDecided"]),
            "operator": new_token("operator", "op-county"),
            "feed": new_token("feed", "feed-civil-affairs", [], ["ReviewDecided"]),
        }.items():
            secrets[role] = new_secret()
            await store.issue(token, hash_secret(secrets[role]))
        yield {"client": client, "secrets": secrets, "bootstrap": kafka_bootstrap}


def step(name: str, level: str, body: str, household_id: str = "H-lv-ours", **more) -> dict:
    record = {
        "household_id": household_id,
        "decision": name,
        "approving_level": level,
        "body": body,
        "category": "MARGINAL" if name == "INCLUDE" else None,
        "notice_start": None,
        "notice_days": 0,
        "reason": "评议",
    }
    if name in ("VILLAGE_DELIBERATION", "TOWNSHIP_REVIEW"):
        record["outcome"] = "PASSED"
    if name == "NOTICE":
        record.update(notice_start="2020-05-10", notice_days=5)
    return sample("review-decisions", **{**record, **more})


async def post(door: dict, role: str, body: dict):
    headers = {"Authorization": f"Bearer {door['secrets'][role]}"}
    response = await door["client"].post("/v1/review-decisions", json=body, headers=headers)
    return response.status, await response.json(content_type=None)


async def test_each_level_records_its_own_steps_and_they_reach_the_log(door) -> None:
    codec = Codec.default()
    for role, body, holder in (
        ("village", step("VILLAGE_DELIBERATION", "VILLAGE", "VILLAGE"), "vc-gf"),
        ("village", step("NOTICE", "VILLAGE", "SELF_CHECK_GROUP"), "vc-gf"),
        ("reviewer", step("TOWNSHIP_REVIEW", "TOWNSHIP", "REVIEW_GROUP"), "rg-gf"),
        ("operator", step("INCLUDE", "COUNTY", "COUNTY"), "op-county"),
        ("feed", step("START_VERIFICATION", "COUNTY", "AUDIT_GROUP"), "feed-civil-affairs"),
    ):
        status, answer = await post(door, role, body)
        assert status == 202, (role, answer)
        _, decoded = await read_record(
            door["bootstrap"], codec, answer["topic"], answer["partition"], answer["offset"]
        )
        assert str(decoded.record["event_id"]) == body["event_id"]
        assert (decoded.record["actor"], decoded.record["decision"]) == (holder, body["decision"])


@pytest.mark.parametrize(
    ("role", "body", "status", "field", "says"),
    [
        ("reviewer", step("NOTICE", "TOWNSHIP", "TOWNSHIP"), 403, "decision", "village's step"),
        ("operator", step("OBJECTION", "COUNTY", "COUNTY"), 403, "decision", "village-level"),
        ("village", step("TOWNSHIP_REVIEW", "VILLAGE", "VILLAGE"), 403, "decision", "reviewer"),
        ("reviewer", step("INCLUDE", "TOWNSHIP", "REVIEW_GROUP"), 403, "decision", "operator"),
        ("village", step("REJECT", "VILLAGE", "VILLAGE"), 403, "decision", "county-level"),
        ("reviewer", step("ELIMINATE", "TOWNSHIP", "TOWNSHIP"), 403, "decision", "county"),
        (
            "reviewer",
            step("INCLUDE", "TOWNSHIP", "TOWNSHIP", exception=True),
            403,
            "exception",
            "county's to approve",
        ),
        ("feed", step("APPLY", "VILLAGE", "VILLAGE"), 403, "decision", "department feed"),
        (
            "village",
            step("NOTICE", "VILLAGE", "VILLAGE", "H-lv-theirs"),
            403,
            "household_id",
            "'新民村'",
        ),
        (
            "village",
            step("NOTICE", "VILLAGE", "VILLAGE", "H-lv-nowhere"),
            403,
            "household_id",
            "None",
        ),
        ("village", step("OBJECTION", "COUNTY", "VILLAGE"), 422, "approving_level", "VILLAGE"),
        ("village", step("OBJECTION", "VILLAGE", "COUNTY"), 422, "body", "SELF_CHECK_GROUP"),
        ("operator", step("REJECT", "COUNTY", "TOWNSHIP"), 422, "body", "AUDIT_GROUP"),
        ("reviewer", step("TOWNSHIP_REVIEW", "COUNTY", "COUNTY"), 422, "approving_level", "TOWN"),
    ],
)
async def test_a_step_by_the_wrong_level_is_refused_naming_the_field(
    door, role: str, body: dict, status: int, field: str, says: str
) -> None:
    got, answer = await post(door, role, body)
    assert got == status, answer
    [error] = answer["errors"]
    assert error["field"] == field and says in error["message"], answer
    assert "offset" not in answer  # nothing was written
