"""Domain checks beyond Avro types: what a well-typed record may still get wrong.

Each check takes a record whose types are already right (see `records.prepare`), the time the
request arrived and the allowed clock skew, and returns (field path, problem) pairs. Values are
never echoed. Policy numbers (income lines, notice days) are not checked here: they belong to
the effective-dated policy, and a record is a fact, not a decision.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

Problems = list[tuple[str, str]]
Check = Callable[[dict[str, Any], dt.datetime, dt.timedelta], Problems]

# Ids are keys and labels in Kafka and PostgreSQL: printable, no spaces, bounded.
ID_PATTERN = re.compile(r"^[^\s\x00-\x1f\x7f]{1,64}$")
MAX_TEXT = 4000  # free-text notes and descriptions
MAX_NAME = 200  # township, village, group, department, item names
FIRST_LIFTED_YEAR = 2013  # targeted poverty alleviation registers date from 2013-2014
OLDEST_BIRTH_YEAR = 1900


def _id(record: dict, name: str, problems: Problems, required: bool = True) -> None:
    value = record.get(name)
    if value is None and not required:
        return
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        problems.append((name, "must be 1-64 characters without spaces or control characters"))


def _name(record: dict, name: str, problems: Problems, path: str | None = None) -> None:
    value = record.get(name)
    where = path or name
    if value is None:
        return
    if not value.strip():
        problems.append((where, "must not be blank"))
    elif len(value) > MAX_NAME:
        problems.append((where, f"at most {MAX_NAME} characters"))


def _text(value: str | None, where: str, problems: Problems) -> None:
    if value is not None and len(value) > MAX_TEXT:
        problems.append((where, f"at most {MAX_TEXT} characters"))


def _not_negative(value: int | float | None, where: str, problems: Problems) -> None:
    if value is not None and value < 0:
        problems.append((where, "must not be negative"))


def _common(record: dict, now: dt.datetime, skew: dt.timedelta, key: str) -> Problems:
    problems: Problems = []
    _id(record, key, problems)
    occurred_at: dt.datetime = record["occurred_at"]
    if occurred_at > now + skew:
        problems.append(
            (
                "occurred_at",
                f"is in the future by more than the allowed clock skew of "
                f"{int(skew.total_seconds())} s",
            )
        )
    return problems


def check_visit(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    problems = _common(record, now, skew, "household_id")
    _id(record, "visit_id", problems)
    _id(record, "cadre_id", problems)
    for name, check in record["checks"].items():
        _text(check.get("note"), f"checks.{name}.note", problems)
    estimate = record.get("income_estimate")
    if estimate is not None:
        _not_negative(estimate["per_capita_yuan"], "income_estimate.per_capita_yuan", problems)
        _text(estimate.get("note"), "income_estimate.note", problems)
    for index, problem in enumerate(record["problems"]):
        if not problem["description"].strip():
            problems.append((f"problems[{index}].description", "must not be blank"))
        _text(problem["description"], f"problems[{index}].description", problems)
    five = record.get("five_visits")
    if five is not None:
        for name in (
            "members_seeking_work",
            "students_learning_at_home",
            "students_without_access",
        ):
            _not_negative(five[name], f"five_visits.{name}", problems)
        if five["students_without_access"] > five["students_learning_at_home"]:
            problems.append(
                (
                    "five_visits.students_without_access",
                    "cannot exceed five_visits.students_learning_at_home",
                )
            )
        unsold = five.get("unsold_produce")
        if unsold is not None:
            _not_negative(unsold["quantity"], "five_visits.unsold_produce.quantity", problems)
            _not_negative(unsold["value_yuan"], "five_visits.unsold_produce.value_yuan", problems)
            _name(unsold, "item", problems, "five_visits.unsold_produce.item")
        _text(five.get("family_impact"), "five_visits.family_impact", problems)
        _text(five.get("note"), "five_visits.note", problems)
    geo = record.get("geo")
    if geo is not None:
        if not -90.0 <= geo["lat"] <= 90.0:
            problems.append(("geo.lat", "must be between -90 and 90"))
        if not -180.0 <= geo["lon"] <= 180.0:
            problems.append(("geo.lon", "must be between -180 and 180"))
    _text(record.get("note"), "note", problems)
    return problems


def check_household(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    problems = _common(record, now, skew, "household_id")
    for name in ("township", "village", "village_group"):
        _name(record, name, problems)
    year = record["occurred_at"].year
    members = record["members"]
    for name, value in members.items():
        _not_negative(value, f"members.{name}", problems)
    count = members["count"]
    if count < 1:
        problems.append(("members.count", "a household has at least one member"))
    if members["labour"] + members["weak_labour"] > count:
        problems.append(
            ("members.labour", "members.labour + members.weak_labour cannot exceed members.count")
        )
    for name in ("students", "disabled", "chronically_ill", "elderly"):
        if members[name] > count:
            problems.append((f"members.{name}", "cannot exceed members.count"))
    lifted_year = record.get("lifted_year")
    if record["registration"] == "LIFTED":
        if lifted_year is None:
            problems.append(("lifted_year", "required when registration is LIFTED"))
        elif not FIRST_LIFTED_YEAR <= lifted_year <= year:
            problems.append(
                ("lifted_year", f"must be between {FIRST_LIFTED_YEAR} and the year of occurred_at")
            )
    elif lifted_year is not None:
        problems.append(("lifted_year", "only a LIFTED household has a lifted_year"))
    birth_year = record.get("head_birth_year")
    if birth_year is not None and not OLDEST_BIRTH_YEAR <= birth_year <= year:
        problems.append(
            ("head_birth_year", f"must be between {OLDEST_BIRTH_YEAR} and the year of occurred_at")
        )
    income = record.get("baseline_income")
    if income is not None:
        _not_negative(
            income["per_capita_net_yuan"], "baseline_income.per_capita_net_yuan", problems
        )
        if income["year"] > year:
            problems.append(("baseline_income.year", "cannot be after the year of occurred_at"))
    personal = record.get("personal")
    if personal is not None:
        for name in ("head_name", "citizen_id"):
            if not personal[name].strip():
                problems.append((f"personal.{name}", "must not be blank"))
            elif len(personal[name]) > MAX_NAME:
                problems.append((f"personal.{name}", f"at most {MAX_NAME} characters"))
    return problems


def check_income(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    problems = _common(record, now, skew, "household_id")
    if record["period_start"] > record["period_end"]:
        problems.append(("period_end", "cannot be before period_start"))
    if record["members_counted"] < 1:
        problems.append(("members_counted", "must be at least 1"))
    # Net business income may be a loss (a failed industry project is a hardship cause);
    # the other components and the per-capita figure cannot be negative.
    for name in ("per_capita_net_yuan", "wages_yuan", "property_yuan", "transfers_yuan"):
        _not_negative(record[name], name, problems)
    return problems


def check_hardship(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    problems = _common(record, now, skew, "household_id")
    _id(record, "hardship_id", problems)
    _not_negative(record["rigid_expenditure_yuan"], "rigid_expenditure_yuan", problems)
    if record["origin"] == "DEPARTMENT_FEED" and not (record.get("department") or "").strip():
        problems.append(("department", "required when origin is DEPARTMENT_FEED"))
    _name(record, "department", problems)
    _text(record.get("description"), "description", problems)
    return problems


def check_measure(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    problems = _common(record, now, skew, "household_id")
    _id(record, "measure_id", problems)
    _id(record, "catalogue_id", problems)
    _id(record, "cadre_id", problems, required=False)
    _name(record, "pool", problems)
    _name(record, "waiting_for", problems)
    for index, quantity in enumerate(record["quantities"]):
        _not_negative(quantity["amount"], f"quantities[{index}].amount", problems)
        _name(quantity, "item", problems, f"quantities[{index}].item")
        _name(quantity, "unit", problems, f"quantities[{index}].unit")
    _not_negative(record.get("amount_yuan"), "amount_yuan", problems)
    term = record.get("term_months")
    if term is not None and term < 1:
        problems.append(("term_months", "must be at least 1"))
    if record.get("waiting_for") is not None and record["step"] != "RECOMMENDED":
        problems.append(("waiting_for", "only a RECOMMENDED step waits for a pool"))
    _text(record.get("note"), "note", problems)
    return problems


def check_problem(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    problems = _common(record, now, skew, "household_id")
    _id(record, "problem_id", problems)
    _id(record, "responsible_cadre_id", problems, required=False)
    _id(record, "visit_id", problems, required=False)
    if record["step"] == "TASK_ASSIGNED" and record.get("responsible_cadre_id") is None:
        problems.append(("responsible_cadre_id", "required when step is TASK_ASSIGNED"))
    due = record.get("due_date")
    if due is not None and due < record["occurred_at"].date() - dt.timedelta(days=1):
        problems.append(("due_date", "cannot be before the day of occurred_at"))
    _text(record.get("description"), "description", problems)
    return problems


def check_review(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    problems = _common(record, now, skew, "household_id")
    decision, category = record["decision"], record.get("category")
    if decision == "INCLUDE" and category is None:
        problems.append(("category", "required when decision is INCLUDE"))
    if decision in ("REJECT", "ELIMINATE", "START_VERIFICATION") and category is not None:
        problems.append(("category", f"a {decision} decision has no category"))
    if record["notice_days"] < 0:
        problems.append(("notice_days", "must not be negative"))
    if record["notice_days"] > 0 and record.get("notice_start") is None:
        problems.append(("notice_start", "required when notice_days is given"))
    _id(record, "assessment_event_id", problems, required=False)
    _text(record.get("reason"), "reason", problems)
    return problems


def check_cadre(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    problems = _common(record, now, skew, "cadre_id")
    _name(record, "township", problems)
    _name(record, "village", problems)
    _name(record, "department", problems)
    if record["max_households"] < 0:
        problems.append(("max_households", "must not be negative"))
    return problems


DOMAIN_CHECKS: dict[str, Check] = {
    "shouwang.events.VisitRecorded": check_visit,
    "shouwang.events.HouseholdRegistryRecorded": check_household,
    "shouwang.events.IncomeUpdated": check_income,
    "shouwang.events.HardshipReported": check_hardship,
    "shouwang.events.MeasureStepRecorded": check_measure,
    "shouwang.events.ProblemRecorded": check_problem,
    "shouwang.events.ReviewDecided": check_review,
    "shouwang.events.CadreRegistryRecorded": check_cadre,
}
