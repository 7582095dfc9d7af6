"""The HTTP layer over fakes: statuses, messages, idempotency, scope; refused input never
reaches the sink."""

from __future__ import annotations

import json

import pytest

from services.contract.inputs import BY_SLUG
from services.platform.http.problems import PROBLEM_JSON, problem_type
from services.visits.service import scope_problem
from tests.unit.visits.conftest import Api
from tests.visits_samples import OTHER_TOWNSHIP, SAMPLES, sample


async def test_a_visit_is_accepted_keyed_and_framed(api: Api, codec) -> None:
    body = sample("visits")
    response = await api.post("/v1/visits", body)
    assert response.status == 202
    answer = await response.json()
    assert answer["event_id"] == body["event_id"] and answer["topic"] == "household.visits"
    [(topic, key, value)] = api.sink.records
    assert (topic, key) == ("household.visits", body["household_id"].encode())
    record = codec.decode(value, "VisitRecorded").record
    assert record["actor"] == "cadre-0042" and record["source"] == "APP"


@pytest.mark.parametrize("slug", sorted(SAMPLES))
async def test_every_route_accepts_its_sample(api: Api, slug: str) -> None:
    response = await api.post(f"/v1/{slug}", sample(slug), role="operator")
    assert response.status == 202, await response.text()
    assert api.sink.records[-1][0] == BY_SLUG[slug].topic.name


def _raw(data: bytes, content_type: str = "application/json") -> dict:
    return {"data": data, "headers": {"Content-Type": content_type}}


# (case, role, path, request kwargs, status, error, words in the message)
REFUSED = [
    (
        "malformed json",
        "cadre",
        "/v1/visits",
        _raw(b'{"household_id": '),
        422,
        "malformed_json",
        "line 1 column",
    ),
    ("NaN", "cadre", "/v1/visits", _raw(b'{"x": NaN}'), 422, "malformed_json", "NaN"),
    ("not utf-8", "cadre", "/v1/visits", _raw(b'{"x": "\xff"}'), 422, "malformed_json", "UTF-8"),
    (
        "deep nesting",
        "cadre",
        "/v1/visits",
        _raw(b"[" * 100_000 + b"]" * 100_000),
        413,
        "body_too_large",
        "exceeds",
    ),
    (
        "wrong content type",
        "cadre",
        "/v1/visits",
        _raw(b"{}", "text/plain"),
        415,
        "unsupported_media_type",
        "application/json",
    ),
    (
        "no content type",
        "cadre",
        "/v1/visits",
        {"data": b"{}"},
        415,
        "unsupported_media_type",
        "application/json",
    ),
    (
        "oversized body",
        "cadre",
        "/v1/visits",
        _raw(b" " * (65 * 1024)),
        413,
        "body_too_large",
        "exceeds",
    ),
    (
        "oversized batch",
        "cadre",
        "/v1/visits:batch",
        {"json": {"records": [sample("visits") for _ in range(21)]}},
        413,
        "batch_too_large",
        "at most 20",
    ),
    (
        "batch not an object",
        "cadre",
        "/v1/visits:batch",
        {"json": [sample("visits")]},
        422,
        "invalid",
        "records",
    ),
    (
        "empty batch",
        "cadre",
        "/v1/visits:batch",
        {"json": {"records": []}},
        422,
        "invalid",
        "non-empty",
    ),
    (
        "missing token",
        None,
        "/v1/visits",
        {"json": sample("visits")},
        401,
        "unauthenticated",
        "Bearer",
    ),
    (
        "invalid token",
        "bogus",
        "/v1/visits",
        {"json": sample("visits")},
        401,
        "unauthenticated",
        "unknown or revoked",
    ),
    (
        "revoked token",
        "revoked",
        "/v1/visits",
        {"json": sample("visits")},
        401,
        "unauthenticated",
        "unknown or revoked",
    ),
    (
        "out-of-scope township",
        "elsewhere",
        "/v1/visits",
        {"json": sample("visits", cadre_id="cadre-9")},
        403,
        "forbidden",
        "township",
    ),
    (
        "registry out of scope",
        "cadre",
        "/v1/households",
        {"json": sample("households", township=OTHER_TOWNSHIP)},
        403,
        "forbidden",
        "township",
    ),
    (
        "unknown household",
        "cadre",
        "/v1/visits",
        {"json": sample("visits", household_id="H-unknown")},
        403,
        "forbidden",
        "registry",
    ),
    (
        "another cadre's visit",
        "cadre",
        "/v1/visits",
        {"json": sample("visits", cadre_id="cadre-7")},
        403,
        "forbidden",
        "own visits",
    ),
    (
        "feed outside its types",
        "feed",
        "/v1/visits",
        {"json": sample("visits")},
        403,
        "forbidden",
        "may not write VisitRecorded",
    ),
    (
        "cadre writes the cadre registry",
        "cadre",
        "/v1/cadres",
        {"json": sample("cadres")},
        403,
        "forbidden",
        "may not write",
    ),
    (
        "invalid record",
        "cadre",
        "/v1/visits",
        {"json": sample("visits", occurred_at="soon")},
        422,
        "invalid",
        "contract",
    ),
    (
        "negative income",
        "cadre",
        "/v1/income-updates",
        {"json": sample("income-updates", per_capita_net_yuan=-1)},
        422,
        "invalid",
        "contract",
    ),
    (
        "future occurred_at",
        "cadre",
        "/v1/visits",
        {"json": sample("visits", occurred_at="2020-05-18T00:00:00+08:00")},
        422,
        "invalid",
        "contract",
    ),
]


@pytest.mark.parametrize(
    ("role", "path", "kwargs", "status", "error", "words"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
async def test_refused_requests(api: Api, role, path, kwargs, status, error, words) -> None:
    headers = dict(kwargs.pop("headers", {}))
    if role == "bogus":
        headers["Authorization"] = "Bearer sw_not_a_real_token"
    elif role is not None:
        headers.update(api.auth(role))
    response = await api.client.post(path, headers=headers, **kwargs)
    assert response.status == status, await response.text()
    answer = await response.json()
    if "results" in answer:
        [outcome] = answer["results"]
        answer = outcome
    else:
        assert response.content_type == PROBLEM_JSON
    assert answer["type"] == problem_type(error) and answer["status"] == status
    assert answer["title"]
    assert words in answer["detail"] or any(
        words in p["message"] for p in answer.get("errors", [])
    ), answer
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.sink.records == []


@pytest.mark.parametrize("slug", sorted(SAMPLES))
async def test_an_auditors_token_writes_nothing_on_any_route(api: Api, slug: str) -> None:
    """An auditor reads what an operator reads; every write refuses it, before the body is read,
    with a problem that says why (not the event type: no type would do)."""
    for path, body in ((f"/v1/{slug}", sample(slug)), (f"/v1/{slug}:batch", [sample(slug)])):
        response = await api.post(path, body, role="auditor")
        assert response.status == 403 and response.content_type == PROBLEM_JSON, path
        answer = await response.json(content_type=None)
        assert answer["type"] == problem_type("forbidden"), answer
        assert "auditor's token is read-only" in answer["detail"], answer
    assert api.sink.records == []


async def test_problem_list_is_specific(api: Api) -> None:
    body = sample("visits")
    body["checks"]["water"]["status"] = "FINE"
    del body["visit_id"]
    response = await api.post("/v1/visits", body)
    assert response.status == 422
    problems = {(p["field"], p["message"]) for p in (await response.json())["errors"]}
    assert ("visit_id", "required field missing") in problems
    assert ("checks.water.status", "expected one of SECURED, PROBLEM, NOT_CHECKED") in problems


async def test_unknown_route_and_method(api: Api) -> None:
    response = await api.post("/v1/nothing", {})
    assert response.status == 404 and response.content_type == PROBLEM_JSON
    answer = await response.json()
    assert answer["status"] == 404 and answer["instance"] == "/v1/nothing"
    response = await api.client.get("/v1/visits")
    assert response.status == 405 and "POST" in response.headers["Allow"]
    assert response.content_type == PROBLEM_JSON and (await response.json())["status"] == 405


async def test_resend_is_accepted_once_and_reuse_is_a_conflict(api: Api) -> None:
    body = sample("visits")
    first = await (await api.post("/v1/visits", body)).json()
    again = await api.post("/v1/visits", body)
    assert again.status == 202
    answer = await again.json()
    assert answer["duplicate"] is True and answer["offset"] == first["offset"]
    assert len(api.sink.records) == 1
    reused = await api.post("/v1/visits", {**body, "note": "different"})
    assert reused.status == 409
    assert (await reused.json())["errors"][0]["field"] == "event_id"
    assert len(api.sink.records) == 1


async def test_batch_reports_each_record(api: Api) -> None:
    good = sample("visits")
    records = [
        good,
        sample("visits", occurred_at="later"),
        good,  # the same event twice in one batch is written once
        sample("visits", household_id="H-unknown"),
        {**good, "note": "reused id"},
    ]
    response = await api.post("/v1/visits:batch", {"records": records})
    assert response.status == 207
    answer = await response.json()
    assert [r["status"] for r in answer["results"]] == [202, 422, 202, 403, 409]
    assert answer["accepted"] == 2 and answer["refused"] == 3
    assert answer["results"][2]["duplicate"] is True
    assert answer["results"][1]["errors"][0]["field"] == "occurred_at"
    assert len(api.sink.records) == 1


async def test_all_accepted_batch_is_202(api: Api) -> None:
    records = [sample("visits") for _ in range(5)]
    response = await api.post("/v1/visits:batch", {"records": records})
    assert response.status == 202
    assert len(api.sink.records) == 5


async def test_broker_down_is_503_with_retry_after_then_succeeds(api: Api) -> None:
    api.sink.down = True
    body = sample("visits")
    response = await api.post("/v1/visits", body)
    assert response.status == 503 and response.headers["Retry-After"] == "5"
    assert "same event_id" in (await response.json())["detail"]
    batch = await api.post("/v1/visits:batch", {"records": [sample("visits"), body]})
    assert batch.status == 503 and batch.headers["Retry-After"] == "5"
    assert [r["status"] for r in (await batch.json())["results"]] == [503, 503]
    ready = await api.client.get("/readyz")
    assert ready.status == 503
    api.sink.down = False
    assert (await api.post("/v1/visits", body)).status == 202
    assert (await api.client.get("/readyz")).status == 200


async def test_token_store_outage_uses_cached_tokens_only(api: Api) -> None:
    assert (await api.post("/v1/visits", sample("visits"))).status == 202
    api.store.failing = True
    assert (await api.post("/v1/visits", sample("visits"))).status == 202  # cached
    response = await api.post("/v1/hardships", sample("hardships"), role="feed")
    assert response.status == 503 and "Retry-After" in response.headers


async def test_directory_outage_is_503_for_uncached_households(api: Api) -> None:
    api.directory.failing = True
    response = await api.post("/v1/visits", sample("visits"))
    assert response.status == 503
    assert api.sink.records == []


async def test_registry_record_makes_household_visitable_at_once(api: Api) -> None:
    household = sample("households", household_id="H-new")
    assert (await api.post("/v1/households", household)).status == 202
    response = await api.post("/v1/visits", sample("visits", household_id="H-new"))
    assert response.status == 202


async def test_health_metrics_and_openapi(api: Api) -> None:
    assert (await api.client.get("/healthz")).status == 200
    await api.post("/v1/visits", sample("visits"))
    await api.post("/v1/visits", sample("visits", occurred_at="x"))
    await api.client.post("/v1/visits", json={})
    text = await (await api.client.get("/metrics")).text()
    assert (
        'shouwang_visits_requests_total{method="POST",route="/v1/visits",status="202"} 1.0' in text
    )
    assert 'shouwang_visits_records_produced_total{event_type="VisitRecorded"} 1.0' in text
    assert 'shouwang_visits_rejections_total{reason="invalid"} 1.0' in text
    assert 'shouwang_visits_rejections_total{reason="unauthenticated"} 1.0' in text
    assert "shouwang_visits_produce_duration_seconds_bucket" in text
    assert "shouwang_visits_requests_in_flight" in text
    assert "H-500228-0001" not in text
    # The public contract needs no token (platform/auth/http.py EXEMPT_PATHS), nor its page.
    document = await (await api.client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert (
        document == await (await api.client.get("/openapi.json", headers=api.auth("feed"))).json()
    )
    assert (await api.client.get("/docs")).status == 200


def test_scope_rules_for_tokens_without_townships() -> None:
    from services.platform.auth.tokens import new_token

    feed = new_token("feed", "feed-health", [], ["HardshipReported"])
    record = {"household_id": "H-1", "township": "X"}
    assert scope_problem(BY_SLUG["hardships"], feed, record, {}) is None


async def test_no_client_input_is_logged(api: Api, caplog) -> None:
    body = sample("households", township="Nowhere")
    body["personal"]["citizen_id"] = "SECRET-ID-123"
    with caplog.at_level("DEBUG"):
        await api.post("/v1/households", body)
        await api.post("/v1/households", json.loads(json.dumps(body)) | {"x": 1})
    assert "SECRET-ID-123" not in caplog.text


async def test_a_batch_refused_alike_is_a_problem_naming_each_records_fields(api: Api) -> None:
    records = [sample("visits", occurred_at="later"), sample("visits", household_id="")]
    response = await api.post("/v1/visits:batch", {"records": records})
    assert response.status == 422 and response.content_type == PROBLEM_JSON
    answer = await response.json()
    assert answer["type"] == problem_type("invalid") and answer["status"] == 422
    assert answer["detail"] == "2 of 2 records refused: the record does not fit the contract"
    fields = [e["field"] for e in answer["errors"]]
    assert "records[0].occurred_at" in fields and "records[1].household_id" in fields
    assert answer["accepted"] == 0 and answer["refused"] == 2  # the batch result rides along
    assert [r["status"] for r in answer["results"]] == [422, 422]
    assert api.sink.records == []
