"""The operator API against the real PostgreSQL read model: each route's answer, filters,
paging, operator-only tokens, metrics; and the OpenAPI document matches the routes."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from yarl import URL

from services.platform.auth.tokens import CachedTokens, InMemoryTokenStore, hash_secret, new_token
from services.platform.http.problems import PROBLEM_JSON, openapi_components, problem_type
from services.platform.postgres.migrate import apply_migrations
from services.readmodel.api import OPENAPI_PATH, ApiDependencies, build_api, init_connection
from services.readmodel.metrics import ApiMetrics
from tests.revocation_feeds import complete_feed

pytestmark = pytest.mark.integration
T0 = dt.datetime(2020, 5, 16, 12, 0, tzinfo=dt.UTC)
DOCUMENT = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@dataclass
class Api:
    client: TestClient
    prefix: str
    township: str
    operator: dict[str, str]
    cadre: dict[str, str]

    async def get(self, path: str, headers: dict | None = None, **params) -> tuple[int, dict]:
        response = await self.client.get(path, params=params, headers=headers or self.operator)
        return response.status, await response.json()


async def seed(pool: asyncpg.Pool, p: str, town: str) -> None:
    households = [
        (f"{p}-h1", town, "UNSTABLE_LIFTED", "monitored", ["visit_overdue"], f"{p}-c1"),
        (f"{p}-h2", town, "MARGINAL", "monitored", [], f"{p}-c1"),
        (f"{p}-h3", town, "UNSTABLE_LIFTED", "elimination_proposed", [], None),
        (f"{p}-h4", town, None, "flagged", ["decision_overdue"], None),
        (f"{p}-h5", f"{town}-other", "MARGINAL", "eliminated", [], None),
    ]
    await pool.executemany(
        """INSERT INTO households (household_id, township, village, category, level,
               workflow_status, overdue, responsible_cadre_id, assessed_at, reasons)
           VALUES ($1, $2, '水井村', $3, 'HIGH', $4, $5, $6, $7, '[]')""",
        [(h, t, c, w, o, r, T0) for h, t, c, w, o, r in households],
    )
    await pool.execute(
        """INSERT INTO cadres (cadre_id, township, village, department, max_households, active)
           VALUES ($1, $2, '水井村', 'town', 5, true)""",
        f"{p}-c1",
        town,
    )
    pairing, jobs = f"township:{town}:pairing", "county:public-welfare-jobs"
    measures = [
        (f"{p}-m1", f"{p}-h1", "PAIRING", "recommended", pairing, None, f"{p}-c1"),
        (f"{p}-m2", f"{p}-h2", "PAIRING", "accepted", pairing, None, f"{p}-c1"),
        (f"{p}-m3", f"{p}-h3", "PUBLIC_WELFARE_JOB", "waiting", None, jobs, None),
        (f"{p}-m4", f"{p}-h1", "MEDICAL", "recommended", None, None, None),
        (f"{p}-m5", f"{p}-h4", "PAIRING", "cancelled", pairing, None, f"{p}-c1"),
    ]  # fmt: skip
    await pool.executemany(
        """INSERT INTO measures (measure_id, household_id, type, status, pool, waiting_for,
               cadre_id, reasons, recommended_at, status_changed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, '["rule"]', $8, $8)""",
        [(*m, T0) for m in measures],
    )


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    await apply_migrations(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2, init=init_connection)
    prefix = f"api-{uuid.uuid4().hex[:8]}"
    township = f"镇-{prefix}"
    await seed(pool, prefix, township)
    store = InMemoryTokenStore()
    secrets = {}
    for kind, holder, towns in (("operator", "op-1", []), ("cadre", "c-9", [township])):
        secrets[kind] = f"sw_{uuid.uuid4().hex}"
        await store.issue(new_token(kind, holder, towns), hash_secret(secrets[kind]))
    registry = CollectorRegistry()
    deps = ApiDependencies(
        pool, CachedTokens(store, complete_feed()), registry, ApiMetrics(registry)
    )
    client = TestClient(TestServer(build_api(deps)))
    await client.start_server()
    try:
        yield Api(
            client,
            prefix,
            township,
            {"Authorization": f"Bearer {secrets['operator']}"},
            {"Authorization": f"Bearer {secrets['cadre']}"},
        )
    finally:
        await client.close()
        await pool.close()


async def test_monitored_households_by_township_and_category(api: Api):
    status, body = await api.get("/v1/monitored-households", township=api.township)
    assert status == 200
    assert [h["household_id"] for h in body["items"]] == [f"{api.prefix}-h{i}" for i in (1, 2, 3)]
    assert body["items"][0]["overdue"] == ["visit_overdue"]  # jsonb as JSON, not text
    assert body["items"][0]["assessed_at"].startswith("2020-05-16T12:00:00")
    _, marginal = await api.get(
        "/v1/monitored-households", township=api.township, category="MARGINAL"
    )
    assert [h["household_id"] for h in marginal["items"]] == [f"{api.prefix}-h2"]
    _, first = await api.get("/v1/monitored-households", township=api.township, limit="2")
    assert first["next_after"] == f"{api.prefix}-h2"
    _, rest = await api.get(
        "/v1/monitored-households", township=api.township, limit="2", after=first["next_after"]
    )
    assert [h["household_id"] for h in rest["items"]] == [f"{api.prefix}-h3"]
    assert rest["next_after"] is None
    _, counts = await api.get("/v1/monitored-households/counts")
    mine = {(c["category"], c["households"]) for c in counts["items"]
            if c["township"] == api.township}  # fmt: skip
    assert mine == {("UNSTABLE_LIFTED", 2), ("MARGINAL", 1)}


async def test_waiting_overdue_measures_and_a_cadres_households(api: Api):
    _, waiting = await api.get("/v1/waiting-households", township=api.township)
    assert [(w["household_id"], w["waiting_for"]) for w in waiting["items"]] == [
        (f"{api.prefix}-h3", "county:public-welfare-jobs")
    ]
    _, overdue = await api.get("/v1/overdue-households", township=api.township)
    assert [h["household_id"] for h in overdue["items"]] == [f"{api.prefix}-h1", f"{api.prefix}-h4"]
    _, decisions = await api.get(
        "/v1/overdue-households", township=api.township, kind="decision_overdue"
    )
    assert [h["household_id"] for h in decisions["items"]] == [f"{api.prefix}-h4"]
    _, pairings = await api.get("/v1/measures", township=api.township, type="PAIRING")
    assert [m["status"] for m in pairings["items"]] == ["recommended", "accepted", "cancelled"]
    _, recommended = await api.get("/v1/measures", township=api.township, status="recommended")
    assert {m["measure_type"] for m in recommended["items"]} == {"PAIRING", "MEDICAL"}
    assert recommended["items"][0]["reasons"] == ["rule"]
    _, counts = await api.get("/v1/measures/counts")
    assert any(c["measure_type"] == "PUBLIC_WELFARE_JOB" and c["status"] == "waiting"
               for c in counts["items"])  # fmt: skip
    status, cadre = await api.get(f"/v1/cadres/{api.prefix}-c1/households")
    assert status == 200
    assert cadre["cadre"]["households"] == 2 and cadre["cadre"]["max_households"] == 5
    assert [h["household_id"] for h in cadre["households"]] == [
        f"{api.prefix}-h1",
        f"{api.prefix}-h2",
    ]
    status, missing = await api.get("/v1/cadres/nobody/households")
    assert status == 404 and missing["type"] == problem_type("not_found")
    assert missing["detail"] == "cadre nobody not found"


async def test_only_operators_read_and_bad_queries_are_400(api: Api):
    assert (await api.get("/v1/measures", headers={"X": "y"}))[0] == 401
    assert (await api.get("/v1/measures", headers={"Authorization": "Bearer sw_nope"}))[0] == 401
    assert (await api.get("/v1/measures", headers=api.cadre))[0] == 403
    assert (await api.get("/v1/measures", limit="0"))[0] == 400
    assert (await api.get("/v1/overdue-households", kind="late"))[0] == 400
    assert (await api.client.get("/healthz")).status == 200
    text = await (await api.client.get("/metrics")).text()
    assert (
        'shouwang_support_api_requests_total{method="GET",route="/v1/measures",status="403"} 1.0'
        in text
    )
    assert api.prefix not in text  # no ids in labels


async def test_the_openapi_document_lists_exactly_the_routes(api: Api):
    routes = {
        (resource.canonical, route.method.lower())
        for resource in api.client.server.app.router.resources()
        for route in resource
        if route.method != "HEAD"
    }
    documented = {(path, method) for path, ops in DOCUMENT["paths"].items() for method in ops}
    assert routes == documented
    served = await (await api.client.get("/openapi.json")).json()  # no token: public contract
    assert served == DOCUMENT and served["openapi"].startswith("3.1")
    for path, ops in DOCUMENT["paths"].items():
        for op in ops.values():
            assert op["summary"] and "200" in op["responses"], path
            if path.startswith("/v1/"):
                assert op["security"] == [{"bearer": []}] and "401" in op["responses"]
            for status, response in op["responses"].items():
                if int(status) >= 400 and "content" in response:
                    assert response["content"] == {PROBLEM_JSON: {"schema": PROBLEM_REF}}, path
    schemas = DOCUMENT["components"]["schemas"]
    for name, schema in openapi_components().items():
        assert schemas[name] == schema  # the shape every API declares, from one place


async def test_every_error_is_a_problem(api: Api):
    """401, 403, 400 (naming the parameter), 404, 405 and a NUL byte: each answered as
    application/problem+json (RFC 9457), never plain text, never a 500."""
    cases = [
        ("GET", "/v1/measures", {}, {"X": "y"}, 401, "unauthenticated"),
        ("GET", "/v1/measures", {}, api.cadre, 403, "forbidden"),
        ("GET", "/v1/measures", {"limit": "0"}, api.operator, 400, "bad_request"),
        ("GET", "/v1/measures", {"township": "a\x00b"}, api.operator, 400, "bad_request"),
        ("GET", "/v1/measures", {"after": "\x00"}, api.operator, 400, "bad_request"),
        ("GET", "/v1/nothing", {}, api.operator, 404, None),
        ("POST", "/v1/measures", {}, api.operator, 405, None),
    ]
    for method, path, params, headers, status, code in cases:
        response = await api.client.request(method, path, params=params, headers=headers)
        assert response.status == status, (path, params, await response.text())
        assert response.content_type == PROBLEM_JSON, (path, params)
        body = await response.json()
        assert body["status"] == status and body["title"] and body["instance"] == path
        assert body["type"] == (problem_type(code) if code else "about:blank"), body
        if status == 400 and params:
            assert [e["field"] for e in body["errors"]] == list(params), body
        if status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        if status == 405:
            assert response.headers["Allow"] == "GET"
    # NUL, and bytes that are not UTF-8 (aiohttp would read them as U+FFFD): 400 problems
    for raw in (
        "/v1/cadres/a%00b/households",
        "/v1/measures?after=%00",
        "/v1/measures?%00=1",
        "/v1/measures?after=%ff",
        "/v1/cadres/a%ffb/households",
    ):
        response = await api.client.get(URL(raw, encoded=True), headers=api.operator)
        assert response.status == 400 and response.content_type == PROBLEM_JSON, raw
