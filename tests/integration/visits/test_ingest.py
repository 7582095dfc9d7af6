"""Against the real broker and PostgreSQL: each route's record lands on its topic, decodes equal
to what was sent, with the household (or cadre) as key and the token's holder as actor."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from services.contract.inputs import BY_SLUG
from services.contract.personal import PERSONAL_FIELDS, unseal
from services.platform.personal.keys import PostgresKeyStore, load_master_key
from services.visits.domain.records import Origin, prepare
from tests.integration.visits.conftest import Service, normalised, read_record
from tests.visits_samples import SAMPLES, sample

pytestmark = pytest.mark.integration

# Which token writes each route in these tests, and the source that token implies.
WRITER = {slug: ("operator", "op-1", "OPERATOR") for slug in SAMPLES}
WRITER.update(
    {
        slug: ("cadre", "cadre-0042", "APP")
        for slug in ("visits", "households", "income-updates", "measure-steps", "problems")
    }
)
WRITER["hardships"] = ("feed", "feed-health", "FEED")


def body_for(service: Service, slug: str) -> dict:
    body = sample(slug, occurred_at=dt.datetime.now(dt.UTC).isoformat())
    if "township" in body:
        body["township"] = service.township
    return body


@pytest.mark.parametrize("slug", sorted(SAMPLES))
async def test_each_route_lands_on_its_topic(service: Service, slug: str) -> None:
    role, holder, source = WRITER[slug]
    body = body_for(service, slug)
    if "household_id" in body:
        await service.register(body["household_id"])
    before = dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=1)
    response = await service.client.post(f"/v1/{slug}", json=body, headers=service.auth(role))
    assert response.status == 202, await response.text()
    answer = await response.json()
    kind = BY_SLUG[slug]
    assert answer["topic"] == kind.topic.name
    key, decoded = await read_record(
        service.bootstrap, service.codec, answer["topic"], answer["partition"], answer["offset"]
    )
    assert key == body[kind.topic.key].encode()
    assert decoded.event_type == kind.event_type
    record = decoded.record
    assert (record["actor"], record["source"]) == (holder, source)
    assert before <= record["recorded_at"] <= dt.datetime.now(dt.UTC)
    expected = prepare(
        service.codec,
        kind,
        body,
        Origin(holder, source),
        record["recorded_at"],
        dt.timedelta(minutes=5),
    ).record
    spec = PERSONAL_FIELDS.get(kind.event_type)
    if spec is not None and body.get("personal") is not None:
        # Personal data lands sealed; opened with the subject's key it is what was sent.
        subject = spec.subject_of(record)
        key = await PostgresKeyStore(service.pool, load_master_key()).get_or_create(subject)
        opened = unseal(record["personal_sealed"], subject, str(record["event_id"]), key)
        assert record["personal"] is None
        record = {**record, "personal": opened, "personal_sealed": None}
        # an empty list (registry v3's members' data, its default) is not sealed: a record
        # without members opens as it did before version 3 (contract.personal.seal)
        personal = {k: v for k, v in expected["personal"].items() if v != []}
        expected = {**expected, "personal": personal}
    assert normalised(record) == normalised(expected)


async def test_batch_lands_every_accepted_record(service: Service) -> None:
    household = "H-batch-1"
    await service.register(household)
    records = [sample("visits", household_id=household, visit_id=f"V-{i}") for i in range(10)]
    records.append(sample("visits", household_id=household, occurred_at="not a time"))
    response = await service.client.post(
        "/v1/visits:batch", json={"records": records}, headers=service.auth("cadre")
    )
    assert response.status == 207
    answer = await response.json()
    assert answer["accepted"] == 10 and answer["results"][10]["status"] == 422
    partitions = {r["partition"] for r in answer["results"][:10]}
    assert len(partitions) == 1  # one household, one partition, in order
    offsets = [r["offset"] for r in answer["results"][:10]]
    assert offsets == sorted(offsets)
    _, last = await read_record(
        service.bootstrap, service.codec, "household.visits", partitions.pop(), offsets[-1]
    )
    assert last.record["visit_id"] == "V-9"


async def test_resend_is_accepted_and_not_written_twice(service: Service) -> None:
    await service.register("H-resend")
    body = sample("visits", household_id="H-resend")
    first = await service.client.post("/v1/visits", json=body, headers=service.auth("cadre"))
    second = await service.client.post("/v1/visits", json=body, headers=service.auth("cadre"))
    assert (first.status, second.status) == (202, 202)
    one, two = await first.json(), await second.json()
    assert two["duplicate"] is True and two["offset"] == one["offset"]


async def test_out_of_scope_and_bad_tokens_write_nothing(service: Service) -> None:
    await service.register("H-scope")
    body = sample("visits", household_id="H-scope", cadre_id="cadre-9")
    response = await service.client.post("/v1/visits", json=body, headers=service.auth("elsewhere"))
    assert response.status == 403
    assert (await response.json())["errors"][0]["field"] == "household_id"
    response = await service.client.post(
        "/v1/visits", json=body, headers={"Authorization": "Bearer sw_nope"}
    )
    assert response.status == 401


async def test_revoked_token_stops_working_within_the_cache_ttl(service: Service) -> None:
    from tests.integration.visits.conftest import issue

    secret = await issue(service.pool, "cadre", "cadre-0042", [service.township])
    headers = {"Authorization": f"Bearer {secret}"}
    await service.register("H-revoke")
    ok = await service.client.post(
        "/v1/visits", json=sample("visits", household_id="H-revoke"), headers=headers
    )
    assert ok.status == 202
    await service.pool.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE token_sha256 = encode(sha256($1), 'hex')",
        secret.encode(),
    )
    deadline = time.monotonic() + 10
    while True:
        response = await service.client.post(
            "/v1/visits", json=sample("visits", household_id="H-revoke"), headers=headers
        )
        if response.status == 401:
            break
        assert response.status == 202
        assert time.monotonic() < deadline, "revocation not effective within 10 s"
        await asyncio.sleep(0.1)


async def test_ready_and_metrics(service: Service) -> None:
    ready = await service.client.get("/readyz")
    assert ready.status == 200
    assert await ready.json() == {"status": "ready", "checks": ["kafka", "database"]}
    text = await (await service.client.get("/metrics")).text()
    assert "shouwang_visits_records_produced_total" in text
