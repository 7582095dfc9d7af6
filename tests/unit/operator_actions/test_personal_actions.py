"""Personal-data actions on operator.actions: what an opening and an erasure record (never a
personal value), their ids, what they refuse, how they read, and that actions written before
these kinds existed still decode."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from pathlib import Path

import fastavro
import pytest

from services.audit.action_listing import subjects_matching
from services.contract.codec import MAGIC, Codec
from services.contract.personal import Subject
from services.contract.schemas import load_version
from services.platform.actions.events import (
    EVENT_TYPE,
    OperatorActionError,
    describe,
    personal_data_forgotten,
    personal_data_opened,
    personal_subject,
)
from tests import records

CODEC = Codec.default()
NOW = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)
HOUSEHOLD = Subject("household", "H-500228-0001")
SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def roundtrip(record: dict) -> dict:
    return CODEC.decode(CODEC.encode(EVENT_TYPE, record), expected=EVENT_TYPE).record


def test_an_opening_says_who_whose_which_events_and_why():
    record = roundtrip(
        personal_data_opened(
            HOUSEHOLD, ["e-1", "e-2"], "operator:li", NOW, str(uuid.uuid4()), "appeal 31"
        )
    )
    assert record["action"] == "PERSONAL_DATA_OPENED"
    assert record["subject_id"] == "household:H-500228-0001" == personal_subject(HOUSEHOLD)
    assert (record["actor"], record["reason"], record["source"]) == (
        "operator:li",
        "appeal 31",
        "OPERATOR",
    )
    assert record["personal"] == {
        "subject_kind": "HOUSEHOLD",
        "subject_id": "H-500228-0001",
        "event_ids": ["e-1", "e-2"],
        "key_id": None,
    }
    assert record["token"] is None and record["catalogue"] is None
    # The schema has nowhere a personal value could go.
    schema = CODEC.registry.schema(EVENT_TYPE).parsed
    access = next(f for f in schema["fields"] if f["name"] == "personal")["type"][1]
    assert [f["name"] for f in access["fields"]] == [
        "subject_kind", "subject_id", "event_ids", "key_id",
    ]  # fmt: skip


def test_each_opening_is_its_own_event_and_an_erasure_is_one_per_key():
    first = personal_data_opened(HOUSEHOLD, [], "operator:li", NOW, "access-1", "r")
    retried = personal_data_opened(HOUSEHOLD, [], "operator:li", NOW, "access-1", "r")
    second = personal_data_opened(HOUSEHOLD, [], "operator:li", NOW, "access-2", "r")
    assert first["event_id"] == retried["event_id"] != second["event_id"]
    erased = personal_data_forgotten(HOUSEHOLD, "k-1", "operator:li", NOW, "ruling 9")
    again = personal_data_forgotten(
        HOUSEHOLD, "k-1", "operator:wang", NOW + dt.timedelta(hours=1), "ruling 9 again"
    )
    assert erased["event_id"] == again["event_id"]
    cadre = personal_data_forgotten(
        Subject("cadre", HOUSEHOLD.subject_id), "k-1", "operator:li", NOW, "ruling 9"
    )
    assert cadre["event_id"] != erased["event_id"]
    assert roundtrip(cadre)["personal"]["subject_kind"] == "CADRE"
    assert roundtrip(erased)["personal"]["key_id"] == "k-1"


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda: personal_data_opened(HOUSEHOLD, [], "operator:li", NOW, "a", " "), "reason"),
        (lambda: personal_data_forgotten(HOUSEHOLD, "k", "operator:li", NOW, ""), "reason"),
        (lambda: personal_data_opened(HOUSEHOLD, [], "op li", NOW, "a", "r"), "actor"),
        (lambda: personal_data_forgotten(HOUSEHOLD, "", "operator:li", NOW, "r"), "key_id"),
        (
            lambda: personal_data_opened(Subject("token", "t"), [], "op", NOW, "a", "r"),
            "subject: a household or cadre",
        ),
        (lambda: personal_data_opened(Subject("cadre", ""), [], "op", NOW, "a", "r"), "empty"),
    ],
)
def test_what_cannot_be_recorded_is_refused_naming_the_field(build, problem):
    with pytest.raises(OperatorActionError, match=problem):
        build()


def test_the_listing_line_says_what_was_shown_or_deleted():
    opened = personal_data_opened(HOUSEHOLD, ["e-1"], "operator:li", NOW, "a", "appeal 31")
    line = describe(roundtrip(opened))
    assert "PERSONAL_DATA_OPENED" in line and "household:H-500228-0001" in line
    assert "by operator:li" in line and "1 registry event(s) shown" in line
    assert line.endswith("reason: appeal 31")
    erased = describe(roundtrip(personal_data_forgotten(HOUSEHOLD, "k-1", "op", NOW, "r")))
    assert "key k-1 deleted" in erased


def test_a_bare_id_matches_every_kind_of_subject_a_recorded_one_only_itself():
    assert subjects_matching("household:H-1") == {"household:H-1"}
    assert subjects_matching("token:abc") == {"token:abc"}
    assert subjects_matching("H-1") == {
        "H-1", "token:H-1", "catalogue:H-1", "household:H-1", "cadre:H-1",
    }  # fmt: skip
    assert "other:x:y" in subjects_matching("other:x:y")


def test_actions_written_before_the_personal_kinds_still_decode():
    old = load_version(
        json.loads((SCHEMAS / "history" / "operator_action.v1.avsc").read_text()), "v1"
    )
    assert old.fingerprint != CODEC.registry.schema(EVENT_TYPE).fingerprint
    _, record = records.operator_action("token:0a0b0c0d0e0f", NOW)
    record = {k: v for k, v in record.items() if k != "personal"}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, old.parsed, record)
    decoded = CODEC.decode(MAGIC + old.fingerprint + body.getvalue()).record
    assert decoded["action"] == "TOKEN_REVOKED" and decoded["personal"] is None
