"""The pure projection: each event type the projector reads → the exact rows it writes.

Records go through the codec first (encode, decode), so they have the shape the projector
sees; the few plain-dict records are for fields an older writer schema may lack.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest

from services.contract.codec import Codec
from services.contract.inputs import MONITORING_INPUTS
from services.readmodel.projection import POSITIONED, TOPICS, position_row, rows_for
from services.readmodel.statements import STATEMENTS
from tests import records

CODEC = Codec.default()
T0 = dt.datetime(2020, 5, 16, 10, 0, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(days=3)
LATE = dt.timedelta(minutes=5)  # recorded this long after it happened
HID = "500231-zhou"
POOL = "township:鹤游镇:industry-poultry"


def decoded(event_type: str, record: dict[str, Any]) -> dict[str, Any]:
    return CODEC.decode(CODEC.encode(event_type, record)).record


def rows(topic: str, event: tuple[str, dict[str, Any]]) -> list[tuple[str, tuple]]:
    event_type, record = event
    return rows_for(topic, f"shouwang.events.{event_type}", decoded(event_type, record))


def without_campaign(changes: list[tuple[str, tuple]]) -> list[tuple[str, tuple]]:
    """The rows but each visit's epidemic row (every visit gives one: see the campaign tests)."""
    return [change for change in changes if change[0] != "epidemic_visit"]


def plain(topic: str, event_type: str, record: dict[str, Any]) -> list[tuple[str, tuple]]:
    """Rows for a record as given: fields an older writer schema may lack stay absent."""
    return rows_for(topic, f"shouwang.events.{event_type}", record)


def risk(when: dt.datetime, category: str | None = "UNSTABLE_LIFTED", **fields: Any):
    fields = {
        "reasons": [
            {"code": "rigid_expenditure", "message": "医疗支出", "event_ids": ["e1", "e2"]},
            {"code": "income_drop", "message": "m", "event_ids": []},
        ],
        "overdue": ["visit_overdue"],
        "chain_hash": "abc",
        **fields,
    }
    return records.risk(HID, when, category=category, recorded_at=when + LATE, **fields)


def step(step: str, when: dt.datetime = T0, **fields: Any):
    fields = {
        "pool": POOL,
        "quantities": [{"item": "ducklings", "amount": 50, "unit": "head"}],
        "reasons": ["labour", "poultry"],
        "amount_yuan": 3000,
        "term_months": 12,
        **fields,
    }
    return records.measure(HID, when, "m-1", step, **fields)


def cadre(**fields: Any):
    return records.cadre(
        "cadre-yang",
        T0,
        recorded_at=T0 + LATE,
        department="县农业农村委",
        max_households=5,
        personal={"name": "杨", "phone": "13800000000"},
        **fields,
    )


def operator_action(action: str, token: dict | None, catalogue: dict | None):
    return records.operator_action(
        "token:0a0b" if token else "catalogue:dianjiang",
        T0,
        action,
        recorded_at=T0 + LATE,
        actor="test",
        token=token,
        catalogue=catalogue,
        reason="pilot",
    )


# HouseholdRegistryRecorded


def test_a_registry_record_gives_the_households_place_and_members():
    event = records.registry(HID, T0, labour=2, weak_labour=1, count=4)
    assert rows("household.registry", event) == [
        ("household_registry", (HID, "鹤游镇", "水井村", "7组", "lifted", 4, 2, 1, T0))
    ]


def test_the_registration_status_is_stored_in_lower_case():
    event = records.registry(HID, T0, registration="NEVER_REGISTERED")
    [(_, args)] = rows("household.registry", event)
    assert args[4] == "never_registered"


def test_a_registry_record_without_weak_labour_counts_none():
    _, record = records.registry(HID, T0, labour=2)
    del record["members"]["weak_labour"]  # an older writer's record, as a plain dict
    [(_, args)] = plain("household.registry", "HouseholdRegistryRecorded", record)
    assert args[5:8] == (3, 2, 0)


def test_registry_records_out_of_order_each_carry_their_own_time():
    # The statement keeps the newest by registry_at; the rows only have to carry it.
    newer = rows("household.registry", records.registry(HID, LATER, labour=2))
    older = rows("household.registry", records.registry(HID, T0, labour=0, label="old"))
    assert (newer[0][1][6], newer[0][1][8]) == (2, LATER)
    assert (older[0][1][6], older[0][1][8]) == (0, T0)


def test_personal_data_is_never_copied():
    _, record = records.registry(HID, T0)
    record["personal"] = {"head_name": "周中勇", "citizen_id": "500231197801010000", "phone": None}
    flat = repr(rows("household.registry", ("HouseholdRegistryRecorded", record)))
    flat += repr(rows("cadre.registry", cadre()))
    assert "周中勇" not in flat and "500231197801010000" not in flat
    assert "杨" not in flat and "13800000000" not in flat


# RiskAssessed


def test_an_assessment_gives_the_households_current_risk_and_one_history_row():
    event = risk(T0)
    reasons = json.dumps(
        [
            {"code": "rigid_expenditure", "event_ids": ["e1", "e2"]},
            {"code": "income_drop", "event_ids": []},
        ]
    )
    event_id = event[1]["event_id"]
    assert rows("household.risk", event) == [
        (
            "household_risk",
            (
                HID,
                "UNSTABLE_LIFTED",
                "HIGH",
                reasons,
                "monitored",
                "dianjiang-2020",
                T0,
                '["visit_overdue"]',
            ),
        ),
        (
            "assessment",
            (
                event_id,
                HID,
                "UNSTABLE_LIFTED",
                "HIGH",
                reasons,
                "dianjiang-2020",
                T0,
                T0 + dt.timedelta(minutes=5),
            ),
        ),
        (
            "household_procedure",
            (HID, T0, event_id, None, None, None, None, None, None, 0, "[]", False, None),
        ),
    ]


def test_an_assessment_without_a_category_stores_none_and_no_reasons_as_empty_lists():
    event = risk(T0, category=None, level="NONE", workflow="NOT_FLAGGED", reasons=[], overdue=[])
    [(_, current), (_, history), _procedure] = rows("household.risk", event)
    assert current[1:5] == (None, "NONE", "[]", "not_flagged") and current[7] == "[]"
    assert history[2:5] == (None, "NONE", "[]")


def test_a_redelivered_assessment_gives_the_same_rows_keyed_by_its_event_id():
    event = risk(T0)
    first, again = rows("household.risk", event), rows("household.risk", event)
    assert first == again
    assert first[1][1][0] == event[1]["event_id"]  # assessments: ON CONFLICT DO NOTHING


PROCEDURE = {
    "direction": "ENTRY",
    "awaiting": "TOWNSHIP_REVIEW",
    "since": T0,
    "due": dt.date(2020, 5, 26),
    "notice_start": dt.date(2020, 5, 8),
    "notice_ends": dt.date(2020, 5, 12),
    "objections": 1,
    "steps": ["s1", "s2", "s3"],
}


def test_an_assessment_with_a_procedure_says_where_the_household_stands_in_it():
    event = risk(T0, workflow="VERIFYING", procedure=PROCEDURE,
                 overdue=["procedure_step_overdue"])  # fmt: skip
    [procedure] = [args for name, args in rows("household.risk", event)
                   if name == "household_procedure"]  # fmt: skip
    assert procedure == (
        HID, T0, event[1]["event_id"], "entry", "township_review", T0, dt.date(2020, 5, 26),
        dt.date(2020, 5, 8), dt.date(2020, 5, 12), 1, '["s1", "s2", "s3"]', True, None,
    )  # fmt: skip


def test_an_assessment_without_a_procedure_ends_it_and_a_v1_record_has_none():
    event = risk(T0)
    [procedure] = [a for n, a in rows("household.risk", event) if n == "household_procedure"]
    assert procedure[3:] == (None, None, None, None, None, None, 0, "[]", False, None)
    record = dict(decoded(*event))
    del record["procedure"]  # as a v1 writer's record reads without the field
    [old] = [a for n, a in plain("household.risk", "RiskAssessed", record)
             if n == "household_procedure"]  # fmt: skip
    assert old == procedure


def test_exceptions_are_rows_keyed_by_household_decision_and_code():
    reasons = [
        {"code": "procedure_exception", "message": "county approved without notice",
         "event_ids": ["d-1", "e-9"]},
        {"code": "policy_exception", "message": "ELIMINATE although ...", "event_ids": ["d-2"]},
        {"code": "invalid_transition", "message": "not one", "event_ids": ["d-3"]},
        {"code": "policy_exception", "message": "no event named", "event_ids": []},
    ]  # fmt: skip
    event = risk(T0, reasons=reasons)
    event_id = event[1]["event_id"]
    found = [a for n, a in rows("household.risk", event) if n == "procedure_exception"]
    assert found == [
        (f"{HID}/d-1/procedure_exception", HID, "d-1", "procedure_exception",
         "county approved without notice", '["d-1", "e-9"]', event_id, T0),
        (f"{HID}/d-2/policy_exception", HID, "d-2", "policy_exception",
         "ELIMINATE although ...", '["d-2"]', event_id, T0),
        (f"{HID}/{event_id}/policy_exception", HID, str(event_id), "policy_exception",
         "no event named", "[]", event_id, T0),
    ]  # fmt: skip
    later = risk(T0 + dt.timedelta(days=1), reasons=reasons[:1], label="later")
    [again] = [a for n, a in rows("household.risk", later) if n == "procedure_exception"]
    assert again[0] == found[0][0]  # a later assessment repeating it: the same row


def test_the_procedure_row_keeps_the_exceptions_the_assessment_lists_for_the_sweep():
    """RiskAssessed v3 lists every exception standing in the household's history; the newest
    assessment's list decides which rows stay (statements.SWEEP_EXCEPTIONS). A v2 record lists
    nothing (None), an empty list withdraws them all."""
    listed = ["d-1/procedure_exception", "d-0/policy_exception"]
    for exceptions, kept in [(listed, json.dumps(listed)), ([], "[]"), (None, None)]:
        event = risk(T0, exceptions=exceptions)
        [procedure] = [a for n, a in rows("household.risk", event) if n == "household_procedure"]
        assert procedure[-1] == kept
    record = dict(decoded(*risk(T0, exceptions=listed)))
    del record["exceptions"]  # as a v2 writer's record reads without the field
    [old] = [a for n, a in plain("household.risk", "RiskAssessed", record)
             if n == "household_procedure"]  # fmt: skip
    assert old[-1] is None


# VisitRecorded


def test_a_visit_without_problems_gives_the_last_visit_time_and_what_it_found_secured():
    event = records.visit(HID, T0, income=4200, causes=("ILLNESS",), checks={"food": "NOT_CHECKED"})
    secured = ["clothing", "education", "medical", "housing", "water", "policy_card",
               "living_environment"]  # fmt: skip
    assert without_campaign(rows("household.visits", event)) == [
        ("household_visit", (HID, T0)),
        *[("secured_check", (HID, kind, "v1", T0)) for kind in secured],
    ]


def test_a_visit_with_the_epidemic_block_gives_its_figures_but_not_the_familys_account():
    event = records.visit(
        HID,
        T0,
        unsold=("chickens", 100, "head", 8000),
        seeking_work=2,
        spring_farming=True,
        family_impact="  两个儿子没能外出务工  ",
        students_at_home=(3, 1),
    )
    event_id = str(event[1]["event_id"])
    (epidemic,) = [
        args for name, args in rows("household.visits", event) if name == "epidemic_visit"
    ]
    assert epidemic[:4] == (HID, "v1", event_id, T0)
    assert epidemic[5:] == (True, True, 2, True, 8000, 3, 1)
    assert "两个儿子" not in repr(epidemic)  # the family's account is not copied
    blank = records.visit(HID, T0, seeking_work=1, family_impact=" ")
    (args,) = [a for name, a in rows("household.visits", blank) if name == "epidemic_visit"]
    assert args[5:8] == (True, False, 1)
    # a visit without the block says so (a correction that drops it must replace the old one)
    (none,) = [
        a
        for name, a in rows("household.visits", records.visit(HID, T0))
        if name == "epidemic_visit"
    ]
    assert none[5:] == (False, False, 0, False, 0, 0, 0)


# MeasureStepRecorded


def test_a_recommendation_gives_its_step_and_the_measure_at_rank_2():
    event = step("RECOMMENDED")
    event_id = event[1]["event_id"]
    assert rows("support.measures", event) == [
        (
            "measure_step",
            (event_id, "m-1", HID, "RECOMMENDED", None, "support.measures", T0, T0),
        ),
        (
            "measure",
            (
                "m-1",
                HID,
                "INDUSTRY",
                "recommended",
                2,
                POOL,
                "cadre-yang",
                '{"ducklings": 50}',
                '["labour", "poultry"]',
                "industry.poultry",
                None,
                3000,
                12,
                T0,
                T0,
            ),
        ),
    ]


def test_a_recommendation_waiting_for_a_pool_is_waiting_at_rank_1():
    event = step("RECOMMENDED", pool=None, waiting_for=POOL)
    [(_, history), (_, measure)] = rows("support.measures", event)
    assert history[3:5] == ("RECOMMENDED", POOL)
    assert measure[3:6] == ("waiting", 1, None) and measure[10] == POOL
    assert measure[13:] == (T0, T0)


# Stored ranks (measures.status_rank) as rows in PostgreSQL hold them: the vocabulary's order
# two above its own numbers (projection.py says why). A change here changes stored data.
@pytest.mark.parametrize(
    ("name", "status", "rank"),
    [
        ("RECOMMENDED", "recommended", 2),
        ("ACCEPTED", "accepted", 3),
        ("DELIVERED", "delivered", 4),
        ("COMPLETED", "completed", 5),
        ("CANCELLED", "cancelled", 5),
    ],
)
def test_each_step_is_stored_with_its_status_and_rank(name, status, rank):
    [_, (_, measure)] = rows("household.measures", step(name, LATER))
    assert measure[3:5] == (status, rank)
    assert measure[13:] == ((LATER if name == "RECOMMENDED" else None), LATER)


def test_waiting_for_counts_only_on_a_recommendation():
    [(_, history), (_, measure)] = rows("household.measures", step("ACCEPTED", waiting_for=POOL))
    assert history[4] is None
    assert measure[3:5] == ("accepted", 3) and measure[10] is None


def test_a_step_without_optional_fields_stores_none_and_empty_json():
    event = step("DELIVERED", pool=None, cadre_id=None, amount_yuan=None, term_months=None)
    event[1].update(quantities=[], reasons=[])
    [_, (_, measure)] = rows("household.measures", event)
    assert measure[5:13] == (None, None, "{}", "[]", "industry.poultry", None, None, None)


def test_a_step_record_without_waiting_for_is_not_waiting():
    _, record = step("RECOMMENDED")
    del record["waiting_for"]  # an older writer's record, as a plain dict
    [(_, history), (_, measure)] = plain("support.measures", "MeasureStepRecorded", record)
    assert history[4] is None and measure[3:5] == ("recommended", 2)


def test_steps_out_of_order_each_carry_their_own_rank_and_time():
    # A late-synced ACCEPTED after DELIVERED: the statement's (rank, time) guard decides.
    delivered = rows("household.measures", step("DELIVERED", LATER))
    accepted = rows("household.measures", step("ACCEPTED", T0))
    assert (delivered[1][1][4], delivered[1][1][14]) == (4, LATER)
    assert (accepted[1][1][4], accepted[1][1][14]) == (3, T0)


def test_a_redelivered_step_gives_the_same_rows_keyed_by_its_event_id():
    event = step("ACCEPTED")
    first = rows("household.measures", event)
    assert first == rows("household.measures", event)
    assert first[0][1][0] == event[1]["event_id"]  # measure_steps: ON CONFLICT DO NOTHING


def test_an_unknown_measure_step_is_refused_as_undecodable():
    _, record = step("ACCEPTED")
    record["step"] = "REQUESTED"  # support's internal step, never on a topic
    with pytest.raises(KeyError):
        plain("household.measures", "MeasureStepRecorded", record)


# ProblemRecorded


# The shipped policies' rectification period (deadlines.problem_rectification_days).
RECTIFY = dt.timedelta(days=30)


@pytest.mark.parametrize(
    ("name", "status", "rectified"),
    [("FOUND", "open", False), ("TASK_ASSIGNED", "open", False),
     ("RECTIFIED", "rectified", True), ("REOPENED", "open", False)],
)  # fmt: skip
def test_each_problem_step_gives_its_status(name, status, rectified):
    event = records.problem(HID, LATER, "p-1", name)
    # a rectification names no new responsible person; the default due date counts from the
    # step's day (the earliest step's wins in the statement)
    responsible = None if rectified else "cadre-chen"
    assert rows("household.problems", event) == [
        (
            "problem",
            ("p-1", HID, "policy_card", status, responsible, LATER, LATER if rectified else None,
             "list", None, (LATER + RECTIFY).date(), None, None),
        )
    ]  # fmt: skip


def test_a_task_carries_its_due_date_and_when_it_was_set():
    event = records.problem(HID, LATER, "p-1", "TASK_ASSIGNED", due="2020-06-25")
    [(_, args)] = rows("household.problems", event)
    assert args[10:] == (dt.date(2020, 6, 25), LATER)
    # a due date on another step is not a task's
    [(_, args)] = rows("household.problems", records.problem(HID, LATER, due="2020-06-25"))
    assert args[10:] == (None, None)


def test_a_visit_gives_a_problem_per_failed_check_and_per_listed_problem():
    event = records.visit(
        HID,
        T0,
        visit_id="v-9",
        checks={"housing": "PROBLEM", "water": "NOT_CHECKED", "education": "PROBLEM"},
        card="MISSING",
        living="DIRTY",
        problems=(("POLICY_CARD", "card fell off the wall", True), ("HOUSING", "roof", False),
                  ("HOUSING", "damp wall", False)),
    )  # fmt: skip
    due = (T0 + RECTIFY).date()
    secured = ["food", "clothing", "medical"]  # water NOT_CHECKED, card MISSING, home DIRTY
    assert without_campaign(rows("household.visits", event)) == [
        ("household_visit", (HID, T0)),
        *[("secured_check", (HID, kind, "v-9", T0)) for kind in secured],
        ("problem", ("v-9/POLICY_CARD", HID, "policy_card", "rectified", "cadre-yang", T0, T0,
                     "visit", "v-9", due, None, None)),
        ("problem", ("v-9/HOUSING", HID, "housing", "open", "cadre-yang", T0, None,
                     "visit", "v-9", due, None, None)),
        ("problem", ("v-9/HOUSING/2", HID, "housing", "open", "cadre-yang", T0, None,
                     "visit", "v-9", due, None, None)),
        # a failed check not on the list opens its own problem, as does the dirty home
        ("problem", ("v-9/EDUCATION", HID, "education", "open", "cadre-yang", T0, None,
                     "visit", "v-9", due, None, None)),
        ("problem", ("v-9/LIVING_ENVIRONMENT", HID, "living_environment", "open", "cadre-yang",
                     T0, None, "visit", "v-9", due, None, None)),
    ]  # fmt: skip


def test_the_due_date_follows_the_policy_in_force_on_the_day_found(tmp_path):
    from services.readmodel.rectification import load_periods

    for name, start, until, days in (
        ("a", "2019-11-01", "2021-01-01", 30),
        ("b", "2021-01-01", None, 10),
    ):
        end = f"effective_until = {until}\n" if until else ""
        (tmp_path / f"{name}.toml").write_text(
            f'[policy]\nid = "{name}"\neffective_from = {start}\n{end}'
            f"[deadlines]\nproblem_rectification_days = {days}\n"
        )
    periods = load_periods(sorted(tmp_path.glob("*.toml")))
    december = dt.datetime(2020, 12, 31, 23, tzinfo=dt.UTC)
    january = dt.datetime(2021, 1, 2, tzinfo=dt.UTC)
    assert periods.due_date(december) == dt.date(2021, 1, 30)
    assert periods.due_date(january) == dt.date(2021, 1, 12)
    assert periods.due_date(dt.datetime(2019, 1, 1, tzinfo=dt.UTC)) == dt.date(2019, 1, 31)
    event = records.visit(HID, january, checks={"water": "PROBLEM"})
    written = rows_for(
        "household.visits", "shouwang.events.VisitRecorded", decoded(*event), periods
    )
    [(_, args)] = [row for row in written if row[0] == "problem"]
    assert args[9] == dt.date(2021, 1, 12)


def test_a_policy_without_a_rectification_period_is_refused(tmp_path):
    from services.readmodel.rectification import PeriodError, load_periods

    (tmp_path / "p.toml").write_text('[policy]\nid = "p"\neffective_from = 2020-01-01\n')
    with pytest.raises(PeriodError, match="problem_rectification_days"):
        load_periods([tmp_path / "p.toml"])
    with pytest.raises(PeriodError, match="no policy file"):
        load_periods([])


def test_a_problem_without_a_responsible_cadre_stores_none():
    _, record = records.problem(HID, T0, "p-1", "FOUND")
    record["responsible_cadre_id"] = None
    [(_, args)] = rows("household.problems", ("ProblemRecorded", record))
    assert args[4] is None
    del record["responsible_cadre_id"]
    [(_, args)] = plain("household.problems", "ProblemRecorded", record)
    assert args[4] is None


def test_an_unknown_problem_step_is_refused_as_undecodable():
    _, record = records.problem(HID, T0, "p-1", "FOUND")
    record["step"] = "CLOSED"
    with pytest.raises(KeyError):
        plain("household.problems", "ProblemRecorded", record)


# CadreRegistryRecorded


def test_a_cadre_record_gives_the_cadres_place_and_load_limit():
    assert rows("cadre.registry", cadre()) == [
        ("cadre", ("cadre-yang", "鹤游镇", "水井村", "县农业农村委", 5, True, T0))
    ]


def test_a_cadre_record_without_village_or_active_flag_is_a_county_cadre_still_active():
    _, record = cadre()
    del record["village"], record["active"]  # an older writer's record, as a plain dict
    [(_, args)] = plain("cadre.registry", "CadreRegistryRecorded", record)
    assert args[2] is None and args[5] is True
    [(_, args)] = rows("cadre.registry", cadre(village=None, active=False))
    assert args[2] is None and args[5] is False


# OperatorActionRecorded


def test_a_token_action_gives_its_public_facts_and_no_catalogue():
    token = {
        "token_id": "0a0b",
        "kind": "FEED",
        "holder": "feed-health",
        "townships": None,
        "event_types": ["HardshipReported"],
        "note": "pilot",
    }
    event = operator_action("TOKEN_ISSUED", token, None)
    event_id = event[1]["event_id"]
    assert rows("operator.actions", event) == [
        (
            "operator_action",
            (
                event_id,
                "token:0a0b",
                "TOKEN_ISSUED",
                "test",
                "OPERATOR",
                T0,
                T0 + dt.timedelta(minutes=5),
                "0a0b",
                "FEED",
                "feed-health",
                None,
                None,
                None,
                "[]",
                "pilot",
            ),
        )
    ]


def test_a_catalogue_activation_gives_its_version_digest_and_changes():
    change = {"change": "POOL_CAPACITY_CHANGED", "item": "industry-poultry", "detail": "40 → 60"}
    catalogue = {
        "catalogue_id": "dianjiang",
        "version": 2,
        "content_sha256": "c" * 64,
        "previous_sha256": "b" * 64,
        "file_name": "dianjiang.toml",
        "measures": [],
        "pools": [],
        "sections": {},
        "changes": [change],
    }
    [(_, args)] = rows("operator.actions", operator_action("CATALOGUE_ACTIVATED", None, catalogue))
    assert args[7:13] == (None, None, None, "dianjiang", 2, "c" * 64)
    assert json.loads(args[13]) == [change]


def test_an_action_record_without_token_or_catalogue_stores_none():
    _, record = operator_action("TOKEN_REVOKED", None, None)
    del record["token"], record["catalogue"]
    [(_, args)] = plain("operator.actions", "OperatorActionRecorded", record)
    assert args[7:14] == (None, None, None, None, None, None, "[]")


# ReviewDecided


def test_a_review_decision_is_a_step_with_its_outcome_and_exception_but_not_its_grounds():
    event = records.review(HID, T0, "TOWNSHIP_REVIEW", outcome="RETURNED",
                           reason="公示期间有群众反映其子女在城里有房")  # fmt: skip
    [(name, args)] = rows("household.reviews", event)
    assert name == "review_step"
    assert args == (
        str(event[1]["event_id"]), HID, "TOWNSHIP_REVIEW", "RETURNED", False, None,
        "REVIEW_GROUP", "TOWNSHIP", None, 0, "review-group-1", T0, T0,
    )  # fmt: skip
    assert "公示期间" not in repr(args)  # free text stays in the log
    exception = records.review(HID, T0, "INCLUDE", "MARGINAL", exception=True, reason="县批")
    assert rows("household.reviews", exception)[0][1][3:6] == (None, True, "MARGINAL")
    old = dict(decoded(*exception))
    del old["outcome"], old["exception"]  # as a v1 writer's record reads
    assert plain("household.reviews", "ReviewDecided", old)[0][1][3:5] == (None, False)


# What the projection does not write


@pytest.mark.parametrize(
    "event",
    [
        records.income(HID, T0, 3000),
        records.hardship(HID, T0, "ILLNESS", 20000),
    ],
    ids=["income", "hardship"],
)
def test_events_the_read_model_does_not_project_give_no_rows(event):
    assert rows("household.any", event) == []


def test_a_record_missing_a_required_field_is_refused_as_undecodable():
    _, record = records.registry(HID, T0)
    del record["members"]
    with pytest.raises(KeyError):
        plain("household.registry", "HouseholdRegistryRecorded", record)


def test_every_topic_read_carries_an_event_type_that_gives_rows_or_positions():
    assert len({t.name for t in TOPICS}) == len(TOPICS) == 11
    assert {t.event_type.rsplit(".", 1)[-1] for t in TOPICS} == {
        "HouseholdRegistryRecorded",
        "RiskAssessed",
        "VisitRecorded",
        "MeasureStepRecorded",
        "ProblemRecorded",
        "CadreRegistryRecorded",
        "OperatorActionRecorded",
        # read for where each record sits (the history page), no rows of their own
        "IncomeUpdated",
        "HardshipReported",
        "ReviewDecided",  # and review_steps
    }
    # every monitoring input is read, so every record of a household's history is positioned
    assert POSITIONED == {t.name for t in MONITORING_INPUTS} <= {t.name for t in TOPICS}


def test_a_monitoring_input_record_is_positioned_under_its_household_and_nothing_else_is():
    assert position_row("household.visits", 3, 41, b"H-1") == (
        "household_record",
        ("H-1", "household.visits", 3, 41),
    )
    assert position_row("household.risk", 3, 41, b"H-1") is None  # monitoring's output
    assert position_row("cadre.registry", 0, 1, b"C-1") is None
    assert position_row("household.visits", 3, 41, None) is None
    assert position_row("household.visits", 3, 41, b"\xff\xfe") is None  # no household's


def test_every_row_fills_exactly_its_statements_arguments():
    events = [
        records.registry(HID, T0),
        risk(
            T0,
            procedure=PROCEDURE,
            reasons=[{"code": "policy_exception", "message": "m", "event_ids": ["d"]}],
        ),
        records.visit(HID, T0, seeking_work=1),
        step("RECOMMENDED", waiting_for=POOL),
        records.problem(HID, T0, "p-1", "RECTIFIED"),
        cadre(),
        operator_action("TOKEN_REVOKED", None, None),
        records.review(HID, T0, "NOTICE", notice_start=T0.date(), notice_days=5),
    ]
    written = {}
    for event in events:
        for name, args in rows("any.topic", event):
            written[name] = len(args)
    name, args = position_row("household.visits", 0, 7, HID.encode())
    written[name] = len(args)
    assert set(written) == set(STATEMENTS) - {"position"}
    for name, count in written.items():
        assert max(int(n) for n in re.findall(r"\$(\d+)", STATEMENTS[name])) == count, name
