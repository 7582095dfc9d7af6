"""Token checks without I/O: who may read a household, the revocation feed's state, the cache
that trusts its entries only while that feed is current, and the HTTP guard."""

from __future__ import annotations

import datetime as dt

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from services.platform.actions.events import token_issued, token_revoked
from services.platform.auth.http import EXEMPT_PATHS, TOKEN_KEY, guard
from services.platform.auth.revocations import Revocations
from services.platform.auth.tokens import (
    CachedTokens,
    InMemoryTokenStore,
    TokenStoreUnavailable,
    hash_secret,
    new_token,
)
from services.platform.http.docs import add_docs
from services.platform.http.problems import PROBLEM_JSON, problem_type

NOW = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_households_are_read_by_operators_and_the_reviewers_of_their_township():
    operator = new_token("operator", "op-1")
    narrowed = new_token("operator", "op-2", ["大石乡"])
    reviewer = new_token("cadre", "review-1", ["大石乡"], ["ReviewDecided"])
    cadre = new_token("cadre", "cadre-1", ["大石乡"])
    feed = new_token("feed", "civil-affairs", ["大石乡"], ["ReviewDecided"])
    assert operator.may_read_household("大石乡") and operator.may_read_household(None)
    assert narrowed.may_read_household("大石乡") and not narrowed.may_read_household("高峰镇")
    assert reviewer.reviewer and reviewer.may_read_household("大石乡")
    assert not reviewer.may_read_household("高峰镇") and not reviewer.may_read_household(None)
    assert not cadre.may_read_households and not cadre.may_read_household("大石乡")
    assert not feed.may_read_households  # a department's system is not a review group


def test_the_feed_takes_revocations_and_knows_how_current_it_is():
    clock = Clock()
    feed = Revocations(clock=clock)
    token = new_token("cadre", "cadre-1", ["大石乡"])
    token = type(token)(**{**token.__dict__, "token_id": "abc123"})
    assert not feed.current()  # nothing read yet: not current
    feed.apply(token_issued(token, "operator:li", NOW))
    assert not feed.is_revoked("abc123")
    feed.apply(token_revoked(token, "operator:li", NOW))
    assert feed.is_revoked("abc123")
    feed.read_up_to(clock.now)
    clock.now += 1.0
    assert feed.current()
    clock.now += 0.01
    assert not feed.current()
    feed.read_up_to(clock.now - 5)  # an older moment never moves it back
    assert not feed.current()


async def _cache(clock: Clock) -> tuple[CachedTokens, InMemoryTokenStore, Revocations, str]:
    store = InMemoryTokenStore()
    stored = await store.issue(new_token("cadre", "cadre-1", ["大石乡"]), hash_secret("sw_a"))
    feed = Revocations(clock=clock)
    feed.read_up_to(clock.now)
    return CachedTokens(store, feed, ttl=30, clock=clock), store, feed, stored.token_id


async def test_a_revocation_read_from_the_log_refuses_a_cached_token_with_the_table_down():
    clock = Clock()
    tokens, store, feed, token_id = await _cache(clock)
    assert (await tokens.authenticate("sw_a")).token_id == token_id
    store.failing = True
    clock.now += 0.5
    feed.read_up_to(clock.now)
    assert await tokens.authenticate("sw_a") is not None  # cached, the feed current
    feed.revoked.add(token_id)
    assert await tokens.authenticate("sw_a") is None


async def test_while_the_feed_is_behind_every_look_up_asks_the_table_and_fails_closed():
    clock = Clock()
    tokens, store, _, token_id = await _cache(clock)
    assert await tokens.authenticate("sw_a") is not None
    await store.revoke(token_id, NOW)  # in the table, not (yet) read from the log
    clock.now += 2.0  # the feed has not confirmed anything for two seconds
    assert await tokens.authenticate("sw_a") is None  # the cache was not trusted
    store.failing = True
    with pytest.raises(TokenStoreUnavailable):
        await tokens.authenticate("sw_a")  # neither source can vouch: 503, not a guess


async def test_the_guard_lets_only_the_exempt_paths_through_without_a_token():
    clock = Clock()
    tokens, store, _, _ = await _cache(clock)
    await store.issue(new_token("operator", "op-1"), hash_secret("sw_op"))

    async def page(request: web.Request) -> web.Response:
        return web.json_response({"holder": request[TOKEN_KEY].holder})

    async def probe(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(
        middlewares=[guard(tokens, lambda route, t: None if t.kind == "operator" else "no")]
    )
    app.router.add_get("/v1/thing/{id}", page)
    for path in EXEMPT_PATHS:
        app.router.add_get(path, probe)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        for path in EXEMPT_PATHS:
            assert (await client.get(path.replace("{name}", "a.css"))).status == 200, path
        refused = await client.get("/v1/thing/1")
        assert refused.status == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert refused.content_type == PROBLEM_JSON
        assert (await refused.json(content_type=None))["type"] == problem_type("unauthenticated")
        wrong = await client.get("/v1/thing/1", headers={"Authorization": "Bearer sw_a"})
        assert wrong.status == 403 and wrong.content_type == PROBLEM_JSON
        assert (await wrong.json(content_type=None))["type"] == problem_type("forbidden")
        ok = await client.get("/v1/thing/1", headers={"Authorization": "Bearer sw_op"})
        assert ok.status == 200 and (await ok.json()) == {"holder": "op-1"}
        assert (await client.get("/nothing-here")).status == 404
    finally:
        await client.close()


async def test_a_route_is_exempt_by_its_template_not_by_the_path_asked():
    tokens, _, _, _ = await _cache(Clock())

    async def page(request: web.Request) -> web.Response:
        return web.json_response({"page": request.match_info["page"]})

    app = web.Application(middlewares=[guard(tokens, lambda route, t: None)])
    add_docs(app.router, "Guarded API")
    app.router.add_get("/{page}", page)  # matches /metrics, but is not the /metrics route
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/openapi.json")).status == 401
        # The docs page and its files open without a token; a name outside the bundle's files
        # is the asset handler's 404 problem, never a file beside them.
        assert (await client.get("/docs")).status == 200
        assert (await client.get("/docs/static/swagger-ui.css")).status == 200
        for name in ("..%2Fdocs.py", "..%2F..%2F__init__.py", "swagger-editor.js", "init.py"):
            missing = await client.get(URL(f"/docs/static/{name}", encoded=True))
            assert missing.status == 404 and missing.content_type == PROBLEM_JSON, name
            assert (await missing.json(content_type=None))["type"] == problem_type("not_found")
    finally:
        await client.close()
