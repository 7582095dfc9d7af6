"""Domain checks beyond one field's grammar: how a record's fields relate to each other.

What a single field may hold (patterns, lengths, bounds, item counts) is `grammar.py`'s, which
the OpenAPI document publishes. Here are the rules that relate fields (labour cannot exceed
members, a LIFTED household has a lifted year) and the one that needs the request's time
(`occurred_at` not in the future beyond the allowed skew). Each rule is a small function
returning (field path, problem) pairs; `domain_problems` runs every rule of the record's event
type and skips one whose fields are missing or of a wrong type (the Avro validation names
those), so every problem of a record is reported at once. Values are never echoed. Policy
numbers (income lines, notice days) are not checked here: they belong to the effective-dated
policy, and a record is a fact, not a decision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from services.visits.domain.grammar import FIRST_YEAR
from services.visits.domain.member_rules import DIAGNOSIS_FORMS, PEOPLE_FORMS
from services.visits.domain.member_rules import diagnosis as _diagnosis
from services.visits.domain.member_rules import expense as _expense
from services.visits.domain.member_rules import people as _people
from services.visits.domain.member_rules import personal_members as _personal_members

Problems = list[tuple[str, str]]
Rule = Callable[[dict[str, Any], dt.datetime, dt.timedelta], Problems]
OLDEST_BIRTH_YEAR = 1900


def _not_in_future(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """occurred_at is at most SHOUWANG_VISITS_FUTURE_SKEW_SECONDS (300 unless configured)
    ahead of the server's clock."""
    if record["occurred_at"] > now + skew:
        seconds = int(skew.total_seconds())
        skewed = f"is in the future by more than the allowed clock skew of {seconds} s"
        return [("occurred_at", skewed)]
    return []


def _students_with_access(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """five_visits.students_without_access cannot exceed five_visits.students_learning_at_home."""
    five = record.get("five_visits")
    if five is not None and five["students_without_access"] > five["students_learning_at_home"]:
        return [
            (
                "five_visits.students_without_access",
                "cannot exceed five_visits.students_learning_at_home",
            )
        ]
    return []


def _members(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """members.labour + members.weak_labour, and each of members.students, disabled,
    chronically_ill and elderly, cannot exceed members.count."""
    members = record["members"]
    count = members["count"]
    problems: Problems = []
    if members["labour"] + members["weak_labour"] > count:
        problems.append(
            ("members.labour", "members.labour + members.weak_labour cannot exceed members.count")
        )
    for name in ("students", "disabled", "chronically_ill", "elderly"):
        if members[name] > count:
            problems.append((f"members.{name}", "cannot exceed members.count"))
    return problems


def _lifted_year(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """lifted_year is given exactly when registration is LIFTED, between 2013 and the year
    of occurred_at."""
    lifted_year = record.get("lifted_year")
    if record["registration"] == "LIFTED":
        if lifted_year is None:
            return [("lifted_year", "required when registration is LIFTED")]
        if not FIRST_YEAR <= lifted_year <= record["occurred_at"].year:
            return [("lifted_year", f"must be between {FIRST_YEAR} and the year of occurred_at")]
    elif lifted_year is not None:
        return [("lifted_year", "only a LIFTED household has a lifted_year")]
    return []


def _birth_year(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """head_birth_year is not after the year of occurred_at."""
    birth_year = record.get("head_birth_year")
    if birth_year is not None and birth_year > record["occurred_at"].year:
        return [
            ("head_birth_year", f"must be between {OLDEST_BIRTH_YEAR} and the year of occurred_at")
        ]
    return []


def _baseline_income_year(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """baseline_income.year is not after the year of occurred_at."""
    income = record.get("baseline_income")
    if income is not None and income["year"] > record["occurred_at"].year:
        return [("baseline_income.year", "cannot be after the year of occurred_at")]
    return []


def _income_period(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """period_end is not before period_start."""
    if record["period_start"] > record["period_end"]:
        return [("period_end", "cannot be before period_start")]
    return []


def _department_of_feed(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """department is given when origin is DEPARTMENT_FEED."""
    if record["origin"] == "DEPARTMENT_FEED" and record.get("department") is None:
        return [("department", "required when origin is DEPARTMENT_FEED")]
    return []


def _waiting_for(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """waiting_for is given only on a RECOMMENDED step."""
    if record.get("waiting_for") is not None and record["step"] != "RECOMMENDED":
        return [("waiting_for", "only a RECOMMENDED step waits for a pool")]
    return []


def _responsible_cadre(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """responsible_cadre_id is given when step is TASK_ASSIGNED."""
    if record["step"] == "TASK_ASSIGNED" and record.get("responsible_cadre_id") is None:
        return [("responsible_cadre_id", "required when step is TASK_ASSIGNED")]
    return []


def _due_date(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """due_date is not before the day before occurred_at."""
    due = record.get("due_date")
    if due is not None and due < record["occurred_at"].date() - dt.timedelta(days=1):
        return [("due_date", "cannot be before the day of occurred_at")]
    return []


def _category(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """category is given when decision is INCLUDE, and not on REJECT, ELIMINATE or
    START_VERIFICATION."""
    decision, category = record["decision"], record.get("category")
    if decision == "INCLUDE" and category is None:
        return [("category", "required when decision is INCLUDE")]
    if decision in ("REJECT", "ELIMINATE", "START_VERIFICATION") and category is not None:
        return [("category", f"a {decision} decision has no category")]
    return []


def _notice(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """notice_start is given when notice_days is more than 0."""
    if record["notice_days"] > 0 and record.get("notice_start") is None:
        return [("notice_start", "required when notice_days is given")]
    return []


DOMAIN_RULES: dict[str, tuple[Rule, ...]] = {
    "shouwang.events.VisitRecorded": (_not_in_future, _students_with_access),
    "shouwang.events.HouseholdRegistryRecorded": (
        _not_in_future,
        _members,
        _people,
        _personal_members,
        _lifted_year,
        _birth_year,
        _baseline_income_year,
    ),
    "shouwang.events.IncomeUpdated": (_not_in_future, _income_period),
    "shouwang.events.HardshipReported": (
        _not_in_future,
        _department_of_feed,
        _expense,
        _diagnosis,
    ),
    "shouwang.events.MeasureStepRecorded": (_not_in_future, _waiting_for),
    "shouwang.events.ProblemRecorded": (_not_in_future, _responsible_cadre, _due_date),
    "shouwang.events.ReviewDecided": (_not_in_future, _category, _notice),
    "shouwang.events.CadreRegistryRecorded": (_not_in_future,),
}


def _given(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def _when(name: str, condition: dict[str, Any], then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"required": [name], "properties": {name: condition}}, "then": then}


_ABSENT = {"properties": {"lifted_year": {"type": "null"}}}
# The rules JSON Schema can state, as the `allOf` of the record's schema in the published
# document: a client's validator and a fuzzer then know them as well as the server does.
IN_SCHEMA: dict[Rule, list[dict[str, Any]]] = {
    _lifted_year: [
        {
            "if": {
                "required": ["registration"],
                "properties": {"registration": {"const": "LIFTED"}},
            },
            "then": _given("lifted_year"),
            "else": _ABSENT,
        }
    ],
    _department_of_feed: [_when("origin", {"const": "DEPARTMENT_FEED"}, _given("department"))],
    _waiting_for: [
        _when(
            "waiting_for",
            {"not": {"type": "null"}},
            {"properties": {"step": {"const": "RECOMMENDED"}}},
        )
    ],
    _responsible_cadre: [_when("step", {"const": "TASK_ASSIGNED"}, _given("responsible_cadre_id"))],
    _category: [
        _when("decision", {"const": "INCLUDE"}, _given("category")),
        _when(
            "decision",
            {"enum": ["REJECT", "ELIMINATE", "START_VERIFICATION"]},
            {"properties": {"category": {"type": "null"}}},
        ),
    ],
    _notice: [_when("notice_days", {"minimum": 1}, _given("notice_start"))],
    _people: PEOPLE_FORMS,
    _diagnosis: DIAGNOSIS_FORMS,
}
# The rules JSON Schema cannot state, whole or in part: a relation between two values (a sum,
# an order, a year of a timestamp) or the server's clock. They are published in words only
# (`x-rules-beyond-schema`); the fuzz test tolerates a valid-by-schema record refused by these
# rules and by nothing else (services/tools/faults/fuzz_checks.py).
BEYOND_SCHEMA: frozenset[Rule] = frozenset(
    {
        _not_in_future,
        _students_with_access,
        _members,
        _people,  # all but the disability grade
        _personal_members,
        _expense,
        _lifted_year,  # its upper bound, the year of occurred_at
        _birth_year,
        _baseline_income_year,
        _income_period,
        _due_date,
    }
)


def in_schema(event_type: str) -> list[dict[str, Any]]:
    """The JSON Schema forms of an event type's rules that have one (`allOf` members)."""
    return [form for rule in DOMAIN_RULES[event_type] for form in IN_SCHEMA.get(rule, ())]


def beyond_schema(event_type: str) -> list[str]:
    """In words, the rules of an event type that JSON Schema cannot state."""
    return [_words(rule) for rule in DOMAIN_RULES[event_type] if rule in BEYOND_SCHEMA]


def _words(rule: Rule) -> str:
    return " ".join((rule.__doc__ or "").split())


def stated(event_type: str) -> list[str]:
    """The domain rules of an event type, in words (the OpenAPI document publishes them)."""
    return [_words(rule) for rule in DOMAIN_RULES[event_type]]


def domain_problems(
    event_type: str, record: dict[str, Any], now: dt.datetime, skew: dt.timedelta
) -> Problems:
    """Every domain rule's problems for `record`, whose fields may still be of a wrong type
    or missing: a rule that cannot read its fields is skipped (the type problem is named
    elsewhere), so the others are still reported."""
    found: Problems = []
    for rule in DOMAIN_RULES[event_type]:
        try:
            found.extend(rule(record, now, skew))
        except (KeyError, TypeError, AttributeError, ValueError):
            continue
    return found
