"""The console's pure parts: the catalogue covers every message, every code has a label, the
decision form's checks, sessions' expiry, settings and roles."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from babel.messages.pofile import read_po

from services.console import labels
from services.console.catalogue import msgids
from services.console.i18n import catalogue_path, translations
from services.console.roles import (
    VILLAGE_DECISIONS,
    LoginRefused,
    decision_choices,
    may_decide,
    may_open_personal,
    may_read,
    role_of,
)
from services.console.sessions import Sessions
from services.console.settings import ConsoleSettings
from services.console.web import decision_record
from services.contract.vocabulary import symbols
from services.monitoring.domain.reasons import REASON_CODES
from services.platform.auth.tokens import new_token
from services.platform.config import SettingsError

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)


def test_every_message_has_a_chinese_translation_and_none_is_stale():
    with catalogue_path("zh").open("rb") as po:
        catalogue = read_po(po)
    translated = {m.id for m in catalogue if m.id and m.string}
    assert msgids() - translated == set()
    assert translated - msgids() == set()
    assert translations("zh").gettext("Review queue") == "审核队列"
    assert translations("en").gettext("Review queue") == "Review queue"


@pytest.mark.parametrize(
    ("kind", "codes"),
    [
        ("decision", symbols("Decision")),
        ("category", symbols("Category")),
        ("body", symbols("ReviewBody")),
        ("level", symbols("ApprovingLevel")),
        ("risk", symbols("RiskLevel")),
        ("workflow", tuple(s.lower() for s in symbols("WorkflowStatus"))),
        ("reason", REASON_CODES),
    ],
)
def test_every_code_of_the_contract_has_a_label(kind, codes):
    assert [c for c in codes if c not in labels.LABELS[kind]] == []


def form(**changes):
    base = {
        "event_id": str(uuid.uuid4()),
        "decision": "INCLUDE",
        "category": "MARGINAL",
        "body": "REVIEW_GROUP",
        "approving_level": "TOWNSHIP",
        "decided_on": "2026-03-10",
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def test_a_decision_of_today_happens_now_and_an_earlier_one_at_noon_in_china():
    record, errors = decision_record("H-1", form(), NOW)
    assert errors == []
    assert record["occurred_at"] == NOW.isoformat() and record["decision"] == "INCLUDE"
    record, errors = decision_record("H-1", form(decided_on="2026-03-01"), NOW)
    assert errors == [] and record["occurred_at"] == "2026-03-01T12:00:00+08:00"


def test_the_procedures_steps_carry_their_outcome_and_an_exception_its_reason():
    record, errors = decision_record(
        "H-1", form(decision="TOWNSHIP_REVIEW", category=None, outcome="RETURNED"), NOW
    )
    assert errors == [] and record["outcome"] == "RETURNED" and "exception" not in record
    record, errors = decision_record(
        "H-1", form(exception="1", reason="公示期间无异议，县里特批"), NOW
    )
    assert errors == [] and record["exception"] is True and "outcome" not in record
    record, _ = decision_record("H-1", form(), NOW)  # a plain decision: the body as before
    assert "outcome" not in record and "exception" not in record


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"category": None}, "category"),
        ({"decision": "MAYBE"}, "decision"),
        ({"decision": None}, "decision"),
        ({"body": "ME"}, "body"),
        ({"decided_on": "2026-03-11"}, "decided_on"),
        ({"decided_on": "10/03/2026"}, "decided_on"),
        ({"notice_days": "x"}, "notice_days"),
        ({"notice_days": "61", "notice_start": "2026-03-01"}, "notice_days"),
        ({"notice_days": "5"}, "notice_start"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"reason": "长" * 1001}, "reason"),
        ({"decision": "TOWNSHIP_REVIEW"}, "outcome"),
        ({"decision": "VILLAGE_DELIBERATION", "outcome": "MAYBE"}, "outcome"),
        ({"outcome": "PASSED"}, "outcome"),
        ({"exception": "1"}, "reason"),
        (
            {
                "decision": "NOTICE",
                "exception": "1",
                "reason": "why",
                "notice_start": "2026-03-01",
                "notice_days": "5",
            },
            "exception",
        ),
        ({"decision": "NOTICE", "notice_days": "5"}, "notice_start"),
        ({"decision": "NOTICE", "notice_start": "2026-03-01"}, "notice_days"),
        ({"decision": "OBJECTION", "reason": "  "}, "reason"),
    ],
)
def test_each_wrong_field_is_named(changes, field):
    _, errors = decision_record("H-1", form(**changes), NOW)
    assert [f for f, _ in errors] == [field]


def test_sessions_end_when_idle_or_old():
    now = [0.0]
    sessions = Sessions(idle_seconds=60, clock=lambda: now[0])
    session = sessions.open("sw_secret")
    assert session.csrf != session.session_id and "sw_secret" not in session.session_id
    now[0] = 59
    assert sessions.find(session.session_id) is session
    now[0] = 59 + 61
    assert sessions.find(session.session_id) is None
    other = sessions.open("sw_secret")
    started = now[0]
    while now[0] - started <= 12 * 3600:  # used every minute, yet ended after 12 hours
        assert sessions.find(other.session_id) is other
        now[0] += 60
    assert sessions.find(other.session_id) is None


def test_settings_defaults_and_refusals():
    settings = ConsoleSettings.from_env({})
    assert (settings.port, settings.visits_url, settings.language) == (
        8084,
        "http://127.0.0.1:8081",
        "zh",
    )
    assert ConsoleSettings.from_env({"SHOUWANG_VISITS_PORT": "9000"}).visits_url.endswith(":9000")
    for name, value in (
        ("SHOUWANG_CONSOLE_PORT", "70000"),
        ("SHOUWANG_CONSOLE_VISITS_URL", "ftp://x"),
        ("SHOUWANG_CONSOLE_SESSION_MINUTES", "0"),
        ("SHOUWANG_CONSOLE_SECURE_COOKIE", "yes"),
        ("SHOUWANG_CONSOLE_LANGUAGE", "fr"),
    ):
        with pytest.raises(SettingsError, match=name):
            ConsoleSettings.from_env({name: value})


def test_roles_come_from_the_token():
    operator = new_token("operator", "op")
    reviewer = new_token("cadre", "r", ["A"], ["ReviewDecided"])
    cadre = new_token("cadre", "c", ["A"])
    assert role_of(operator).name == "operator" and role_of(operator).townships is None
    assert role_of(reviewer).name == "reviewer" and role_of(reviewer).townships == {"A"}
    assert role_of(cadre).name == "cadre" and not role_of(cadre).reads_queue
    with pytest.raises(LoginRefused):
        role_of(new_token("feed", "f", [], ["HardshipReported"]))
    assert may_decide(reviewer, "A") and not may_decide(reviewer, "B")
    assert may_decide(operator, "B") and not may_decide(cadre, "A")


def test_a_village_committee_reads_and_decides_its_villages_steps_only():
    village = new_token("cadre", "v", ["A"], ["ReviewDecided"], villages=["水井村"])
    role = role_of(village)
    assert role.name == "village" and role.villages == {"水井村"} and role.townships == {"A"}
    assert role.reads_queue and not role.reads_townships and not role.read_only
    assert may_read(village, "A", "水井村") and may_decide(village, "A", "水井村")
    # another village of its township, a household whose village is not known, another township
    for township, other in (("A", "V1"), ("A", None), ("B", "水井村")):
        assert not may_read(village, township, other) and not may_decide(village, township, other)
    assert not may_open_personal(village, "A")  # roles.py says why
    choices = decision_choices(role)
    assert (
        choices["decision"] == VILLAGE_DECISIONS == ("VILLAGE_DELIBERATION", "NOTICE", "OBJECTION")
    )
    assert choices["level"] == ("VILLAGE",) and choices["category"] == ()
    assert set(choices["body"]) == {"VILLAGE", "SELF_CHECK_GROUP"}
    assert (choices["default_body"], choices["default_level"]) == ("VILLAGE", "VILLAGE")
    # a village service point (no ReviewDecided) records visits: a cadre, reading no household
    service_point = new_token("cadre", "sp", ["A"], villages=["水井村"])
    assert role_of(service_point).name == "cadre" and not may_read(service_point, "A", "水井村")
    # the other roles' form is the whole vocabulary, as before
    reviewer = role_of(new_token("cadre", "r", ["A"], ["ReviewDecided"]))
    assert decision_choices(reviewer)["decision"] == labels.DECISIONS


def test_a_village_step_carries_what_it_needs():
    village = {"body": "VILLAGE", "approving_level": "VILLAGE", "category": None}
    record, errors = decision_record(
        "H-1", form(**village, decision="VILLAGE_DELIBERATION", outcome="PASSED"), NOW
    )
    assert errors == [] and record["outcome"] == "PASSED"
    record, errors = decision_record(
        "H-1",
        form(**village, decision="NOTICE", notice_start="2026-03-02", notice_days="7"),
        NOW,
    )
    assert errors == [] and (record["notice_start"], record["notice_days"]) == ("2026-03-02", 7)
    record, errors = decision_record(
        "H-1", form(**village, decision="OBJECTION", reason="收入未如实申报"), NOW
    )
    assert errors == [] and record["reason"] == "收入未如实申报"
