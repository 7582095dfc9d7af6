"""The auditor's token without I/O: what it may be issued with, what it reads, that it writes
nothing (by type, by source, by HTTP method on any guarded route), its quota, its record on
operator.actions, and its console role."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import fastavro
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.console.roles import may_decide, may_open_personal, role_of
from services.contract.codec import MAGIC, Codec
from services.contract.inputs import KINDS
from services.contract.schemas import load_version
from services.platform.actions.events import EVENT_TYPE, token_issued
from services.platform.auth.http import guard
from services.platform.auth.revocations import Revocations
from services.platform.auth.tokens import (
    TOKEN_KINDS,
    CachedTokens,
    InMemoryTokenStore,
    TokenError,
    hash_secret,
    new_token,
)
from services.platform.config import Settings
from services.platform.http.problems import PROBLEM_JSON, problem_type
from services.platform.quotas import DEFAULT_QUOTAS
from services.readmodel.projection import rows_for
from services.visits.commands import add_commands

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
NOW = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)
CODEC = Codec.default()


def test_an_auditor_token_reads_every_township_unless_narrowed_and_takes_no_event_type():
    county = new_token("auditor", "audit-county")
    narrowed = new_token("auditor", "audit-b", ["大石乡"])
    assert county.townships is None and county.event_types is None and county.read_only
    assert county.oversees and county.may_read_households
    assert county.may_read_household("高峰镇") and county.may_read_household(None)
    assert narrowed.may_read_household("大石乡") and not narrowed.may_read_household("高峰镇")
    assert not narrowed.may_read_household(None)  # an unknown household may be anywhere
    with pytest.raises(TokenError, match="auditor token writes nothing"):
        new_token("auditor", "audit-x", [], ["HardshipReported"])
    with pytest.raises(TokenError, match="auditor token writes nothing"):
        new_token("auditor", "audit-x", [], ["Visit"])  # whatever the type, known or not
    with pytest.raises(TokenError, match="auditor"):  # the message lists the kinds
        new_token("inspector", "x")
    assert "auditor" in TOKEN_KINDS


def test_an_auditor_token_writes_no_event_type_and_has_no_source():
    for token in (new_token("auditor", "a"), new_token("auditor", "a", ["大石乡"])):
        assert not any(token.permits_type(kind.event_type) for kind in KINDS)
        assert not token.reviewer
        with pytest.raises(TokenError, match="read-only"):
            _ = token.source
    # Operators and cadres keep theirs: the read-only rule is the kind's, not a scope's.
    assert new_token("operator", "op").permits_type("shouwang.events.HardshipReported")
    assert not new_token("operator", "op").read_only


def test_the_cli_issues_auditor_tokens():
    import argparse

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["tokens", "issue", "--kind", "auditor", "--holder", "audit-1", "--township", "大石乡"]
    )
    assert (args.kind, args.township, args.event_type) == ("auditor", ["大石乡"], [])


def test_an_auditor_has_its_own_quota_read_from_the_environment():
    assert set(DEFAULT_QUOTAS) == set(TOKEN_KINDS)  # every kind reaching admission has limits
    assert DEFAULT_QUOTAS["auditor"].concurrency == 4
    visits = Settings.from_env({"SHOUWANG_VISITS_AUDITOR_BURST": "7"}).visits
    assert visits.quotas["auditor"].burst == 7
    assert visits.quotas["auditor"].concurrency == DEFAULT_QUOTAS["auditor"].concurrency


def test_an_auditor_tokens_issue_is_recorded_and_projected_with_its_kind():
    token = new_token("auditor", "audit-county", ["大石乡"], note="2026 inspection")
    token = type(token)(**{**token.__dict__, "token_id": "0a0b0c0d0e0f"})
    record = CODEC.decode(CODEC.encode(EVENT_TYPE, token_issued(token, "operator:li", NOW)))
    assert record.record["token"]["kind"] == "AUDITOR"
    [(_statement, args)] = rows_for("operator.actions", EVENT_TYPE, record.record)
    assert args[7:10] == ("0a0b0c0d0e0f", "AUDITOR", "audit-county")


def test_actions_written_before_the_auditor_kind_still_decode():
    old = load_version(
        json.loads((SCHEMAS / "history" / "operator_action.v2.avsc").read_text()), "v2"
    )
    assert old.fingerprint != CODEC.registry.schema(EVENT_TYPE).fingerprint
    token = new_token("cadre", "cadre-1", ["大石乡"])
    token = type(token)(**{**token.__dict__, "token_id": "0a0b0c0d0e0f"})
    body = io.BytesIO()
    fastavro.schemaless_writer(body, old.parsed, token_issued(token, "operator:li", NOW))
    decoded = CODEC.decode(MAGIC + old.fingerprint + body.getvalue()).record
    assert decoded["token"]["kind"] == "CADRE" and decoded["action"] == "TOKEN_ISSUED"


async def test_the_guard_lets_an_auditor_read_and_refuses_it_every_other_method():
    store = InMemoryTokenStore()
    await store.issue(new_token("auditor", "audit-1"), hash_secret("sw_audit"))
    await store.issue(new_token("operator", "op-1"), hash_secret("sw_op"))
    revocations = Revocations()
    revocations.read_up_to(revocations.clock())
    tokens = CachedTokens(store, revocations)

    async def page(request: web.Request) -> web.Response:
        return web.json_response({"method": request.method})

    app = web.Application(middlewares=[guard(tokens, lambda route, t: None)])
    app.router.add_route("*", "/v1/thing", page)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        auditor = {"Authorization": "Bearer sw_audit"}
        assert (await client.get("/v1/thing", headers=auditor)).status == 200
        assert (await client.head("/v1/thing", headers=auditor)).status == 200
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            refused = await client.request(method, "/v1/thing", headers=auditor)
            assert refused.status == 403 and refused.content_type == PROBLEM_JSON, method
            answer = await refused.json(content_type=None)
            assert answer["type"] == problem_type("forbidden")
            assert "read-only" in answer["detail"], answer
            operator = await client.request(method, "/v1/thing", headers={
                "Authorization": "Bearer sw_op"
            })  # fmt: skip
            assert operator.status == 200, method
    finally:
        await client.close()


def test_the_console_role_of_an_auditor_reads_and_never_decides_or_opens_personal_data():
    county, narrowed = new_token("auditor", "audit-1"), new_token("auditor", "audit-2", ["A"])
    role = role_of(county)
    assert role.name == "auditor" and role.reads_queue and role.read_only
    assert role.townships is None and role_of(narrowed).townships == {"A"}
    assert role.may_read(county, "B") and not role_of(narrowed).may_read(narrowed, "B")
    for token in (county, narrowed):
        assert not may_decide(token, "A") and not may_open_personal(token, "A")
    operator = new_token("operator", "op")
    assert may_decide(operator, "A") and may_open_personal(operator, "A")
    assert not role_of(operator).read_only
