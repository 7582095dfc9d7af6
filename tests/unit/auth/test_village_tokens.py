"""Village-level tokens: a cadre token narrowed to villages of its one township, its scope at
the door, and its issue on operator.actions (v4), older actions still decoding."""

from __future__ import annotations

import datetime as dt
import io
import json

import fastavro
import pytest

from services.contract.codec import MAGIC, Codec
from services.contract.inputs import KINDS
from services.contract.schemas import load_version
from services.platform.actions.events import EVENT_TYPE, describe, token_issued
from services.platform.auth.tokens import TokenError, new_token
from services.visits.adapters.directory import Place
from services.visits.service import scope_problem
from tests.unit.contract.test_codec import SCHEMAS

CODEC = Codec.default()
NOW = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)
HOUSEHOLDS = next(k for k in KINDS if k.slug == "households")
HARDSHIPS = next(k for k in KINDS if k.slug == "hardships")


def _village_token():
    return new_token("cadre", "village-gf", ["Gaofeng"], villages=[" 高峰村 ", "新民村", ""])


def test_a_village_scope_narrows_a_cadre_token_of_one_township():
    token = _village_token()
    assert token.villages == {"高峰村", "新民村"} and token.townships == {"Gaofeng"}
    assert token.permits_village("高峰村") and not token.permits_village("大石村")
    assert not token.permits_village(None)  # a household of no known village is outside
    assert new_token("cadre", "c", ["Gaofeng"]).villages is None
    assert new_token("cadre", "c", ["Gaofeng"]).permits_village(None)
    refusals = {
        "at least one --township": ("cadre", []),
        "exactly one --township": ("cadre", ["Gaofeng", "大石乡"]),
        "an operator token takes none": ("operator", []),
        "an auditor token takes none": ("auditor", []),
        "a feed token takes none": ("feed", ["Gaofeng"]),
    }
    for message, (kind, townships) in refusals.items():
        with pytest.raises(TokenError, match=message):
            new_token(kind, "x", townships, ["HardshipReported"] if kind == "feed" else [],
                      villages=["高峰村"])  # fmt: skip
    with pytest.raises(TokenError, match="at most 200"):
        new_token("cadre", "x", ["Gaofeng"], villages=["村" * 201])


def test_a_village_token_writes_only_about_households_of_its_villages():
    token = _village_token()
    known = {"H-1": Place("Gaofeng", "高峰村"), "H-2": Place("Gaofeng", "大石村")}
    hardship = {"household_id": "H-1"}
    assert scope_problem(HARDSHIPS, token, hardship, known) is None
    field, why = scope_problem(HARDSHIPS, token, {"household_id": "H-2"}, known)
    assert field == "household_id" and "'大石村'" in why and "village-level" in why
    unknown = scope_problem(HARDSHIPS, token, {"household_id": "H-3"}, known)
    assert unknown[0] == "household_id"
    registering = {"household_id": "H-9", "township": "Gaofeng", "village": "大石村"}
    assert scope_problem(HOUSEHOLDS, token, registering, known)[0] == "village"
    assert scope_problem(HOUSEHOLDS, token, {**registering, "village": "新民村"}, known) is None
    # A township token is not narrowed by the village.
    wide = new_token("cadre", "c", ["Gaofeng"])
    assert scope_problem(HARDSHIPS, wide, {"household_id": "H-2"}, known) is None


def test_a_village_tokens_issue_is_recorded_with_its_villages():
    token = type(_village_token())(**{**_village_token().__dict__, "token_id": "0a0b0c0d0e0f"})
    record = CODEC.decode(CODEC.encode(EVENT_TYPE, token_issued(token, "operator:li", NOW)))
    assert record.record["token"]["villages"] == ["新民村", "高峰村"]
    assert "villages=新民村,高峰村" in describe(record.record)


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_actions_written_before_the_village_scope_still_decode_without_villages(version):
    old = load_version(
        json.loads((SCHEMAS / "history" / f"operator_action.{version}.avsc").read_text()), version
    )
    assert old.fingerprint != CODEC.registry.schema(EVENT_TYPE).fingerprint
    token = new_token("cadre", "cadre-1", ["大石乡"])
    token = type(token)(**{**token.__dict__, "token_id": "0a0b0c0d0e0f"})
    body = io.BytesIO()
    fastavro.schemaless_writer(body, old.parsed, token_issued(token, "operator:li", NOW))
    decoded = CODEC.decode(MAGIC + old.fingerprint + body.getvalue()).record
    assert decoded["token"]["villages"] is None and decoded["token"]["townships"] == ["大石乡"]
    assert "villages=" not in describe(decoded)
