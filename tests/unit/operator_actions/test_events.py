"""Operator action records: what they carry, their ids, and what they refuse."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest

from services.contract.catalogue import DEFAULT_CATALOGUE, parse_catalogue
from services.contract.catalogue_changes import digest
from services.contract.codec import Codec
from services.platform.actions.events import (
    EVENT_TYPE,
    OperatorActionError,
    catalogue_activated,
    check_actor,
    default_actor,
    describe,
    digest_of,
    last_activation,
    token_issued,
    token_revoked,
)
from services.platform.auth.tokens import hash_secret, new_secret, new_token

CODEC = Codec.default()
NOW = dt.datetime(2026, 11, 29, 10, 0, tzinfo=dt.UTC)
TOKEN = new_token("cadre", "cadre-0042", ["Gaofeng"], ["VisitRecorded"], note="new phone")
TOKEN = type(TOKEN)(**{**TOKEN.__dict__, "token_id": "a1b2c3d4e5f6"})
CONTENT = DEFAULT_CATALOGUE.read_bytes()
DIGEST = digest(parse_catalogue(tomllib.loads(CONTENT.decode()), "t"), CONTENT)


def roundtrip(record: dict) -> dict:
    return CODEC.decode(CODEC.encode(EVENT_TYPE, record), expected=EVENT_TYPE).record


def test_a_token_issue_carries_the_public_part_and_the_actor():
    record = roundtrip(token_issued(TOKEN, "operator:li", NOW, reason="new phone"))
    assert record["action"] == "TOKEN_ISSUED"
    assert record["subject_id"] == "token:a1b2c3d4e5f6"
    assert record["actor"] == "operator:li" and record["source"] == "OPERATOR"
    assert record["token"] == {
        "token_id": "a1b2c3d4e5f6",
        "kind": "CADRE",
        "holder": "cadre-0042",
        "townships": ["Gaofeng"],
        "event_types": ["shouwang.events.VisitRecorded"],
        "villages": None,
        "service_point": False,
        "note": "new phone",
    }
    assert record["catalogue"] is None and record["occurred_at"] == NOW


def test_the_secret_and_its_hash_have_no_place_in_the_record():
    secret = new_secret()
    frame = CODEC.encode(EVENT_TYPE, token_issued(TOKEN, "operator:li", NOW))
    assert secret.encode() not in frame and hash_secret(secret).encode() not in frame
    # The schema itself has no field a secret could go in: only these, all public.
    schema = CODEC.registry.schema(EVENT_TYPE).parsed
    grant = next(f for f in schema["fields"] if f["name"] == "token")["type"][1]
    assert [f["name"] for f in grant["fields"]] == [
        "token_id", "kind", "holder", "townships", "event_types", "villages", "service_point",
        "note",
    ]  # fmt: skip


def test_unscoped_tokens_say_null_not_empty():
    operator = new_token("operator", "op-li")
    operator = type(operator)(**{**operator.__dict__, "token_id": "ff00ff00ff00"})
    token = roundtrip(token_revoked(operator, "operator:wang", NOW))["token"]
    assert token["townships"] is None and token["event_types"] is None


def test_event_ids_derive_from_subject_and_action():
    issued = token_issued(TOKEN, "operator:li", NOW)
    again = token_issued(TOKEN, "operator:zhang", NOW + dt.timedelta(minutes=5))
    revoked = token_revoked(TOKEN, "operator:li", NOW)
    assert issued["event_id"] == again["event_id"]  # a retried command: one event downstream
    assert issued["event_id"] != revoked["event_id"]


def test_a_token_without_its_id_is_refused():
    unsaved = new_token("operator", "op-li")
    with pytest.raises(OperatorActionError, match="token_id"):
        token_issued(unsaved, "operator:li", NOW)


@pytest.mark.parametrize(
    ("actor", "problem"),
    [
        ("", "must name who acts"),
        ("   ", "must name who acts"),
        ("operator li", "no spaces"),
        ("operator:li\x00", "control"),
        ("operator:" + "x" * 200, "at most 128"),
    ],
)
def test_bad_actors_are_refused_naming_the_field(actor, problem):
    with pytest.raises(OperatorActionError, match=f"actor: .*{problem}"):
        token_issued(TOKEN, actor, NOW)
    with pytest.raises(OperatorActionError, match="actor"):
        check_actor(actor)


def test_other_bad_inputs_are_refused_naming_the_field():
    with pytest.raises(OperatorActionError, match="source"):
        token_issued(TOKEN, "operator:li", NOW, source="APP")
    with pytest.raises(OperatorActionError, match="occurred_at"):
        token_issued(TOKEN, "operator:li", NOW.replace(tzinfo=None))
    with pytest.raises(OperatorActionError, match="reason"):
        token_revoked(TOKEN, "operator:li", NOW, reason="x" * 1001)
    with pytest.raises(OperatorActionError, match="reason"):
        token_revoked(TOKEN, "operator:li", NOW, reason="bell\x07")


def test_the_default_actor_is_the_login_name():
    assert default_actor("li") == "operator:li"


def test_the_first_activation_is_version_one_without_changes():
    record = roundtrip(catalogue_activated(DIGEST, None, "dianjiang.toml", "operator:li", NOW))
    c = record["catalogue"]
    assert record["subject_id"] == "catalogue:dianjiang-2020"
    assert (c["version"], c["previous_sha256"], c["changes"]) == (1, None, [])
    assert c["content_sha256"] == DIGEST.content_sha256 and c["file_name"] == "dianjiang.toml"
    assert digest_of(record) == DIGEST


def test_the_same_content_again_records_nothing():
    first = roundtrip(catalogue_activated(DIGEST, None, "d.toml", "operator:li", NOW))
    assert catalogue_activated(DIGEST, first, "d.toml", "service:support", NOW, "SERVICE") is None


def test_a_changed_catalogue_is_the_next_version_with_its_changes():
    first = roundtrip(catalogue_activated(DIGEST, None, "d.toml", "operator:li", NOW))
    doc = tomllib.loads(CONTENT.decode())
    next(p for p in doc["pools"] if p["id"] == "microcredit")["capacity"] = 450
    changed = digest(parse_catalogue(doc, "t"), b"edited")
    second = roundtrip(catalogue_activated(changed, first, "d.toml", "service:support", NOW,
                                           "SERVICE"))  # fmt: skip
    c = second["catalogue"]
    assert c["version"] == 2 and c["previous_sha256"] == DIGEST.content_sha256
    assert c["changes"] == [
        {"change": "POOL_CAPACITY_CHANGED", "item": "microcredit", "detail": "capacity 400 -> 450"}
    ]
    assert second["event_id"] != first["event_id"] and second["source"] == "SERVICE"
    # Going back to the first content is a third activation, not a duplicate of the first.
    third = catalogue_activated(DIGEST, second, "d.toml", "operator:li", NOW)
    assert third["catalogue"]["version"] == 3 and third["event_id"] != first["event_id"]
    # And forward again (A, B, A, B): the pair of contents repeats, the event id must not, or
    # readers would drop the fourth activation as a copy of the second.
    fourth = catalogue_activated(changed, roundtrip(third), "d.toml", "operator:li", NOW)
    assert fourth["catalogue"]["version"] == 4
    assert fourth["catalogue"]["previous_sha256"] == second["catalogue"]["previous_sha256"]
    earlier = {str(r["event_id"]) for r in (first, second, third)}  # decoded ids are UUIDs
    assert str(fourth["event_id"]) not in earlier
    # A retry of the same command (same log) repeats its id.
    assert (
        catalogue_activated(changed, roundtrip(third), "d.toml", "op:x", NOW)["event_id"]
        == (fourth["event_id"])
    )
    assert "microcredit" in describe(second) and "by service:support" in describe(second)


def test_an_activation_cannot_follow_another_catalogues():
    first = roundtrip(catalogue_activated(DIGEST, None, "d.toml", "operator:li", NOW))
    doc = tomllib.loads(CONTENT.decode())
    doc["catalogue"]["id"] = "other-county"
    other = digest(parse_catalogue(doc, "t"), b"other")
    with pytest.raises(OperatorActionError, match="catalogue_id"):
        catalogue_activated(other, first, "o.toml", "operator:li", NOW)
    with pytest.raises(OperatorActionError, match="action"):
        digest_of(token_issued(TOKEN, "operator:li", NOW))


def test_the_last_activation_is_the_last_of_that_catalogue_in_log_order():
    first = catalogue_activated(DIGEST, None, "d.toml", "operator:li", NOW)
    doc = tomllib.loads(CONTENT.decode())
    doc["catalogue"]["id"] = "other-county"
    other = catalogue_activated(digest(parse_catalogue(doc, "t"), b"o"), None, "o", "op:x", NOW)
    log = [first, token_issued(TOKEN, "operator:li", NOW), other]
    assert last_activation(log, "dianjiang-2020") is first
    assert last_activation(log, "other-county") is other
    assert last_activation(log, "nowhere") is None
