"""The door's rules for registry v3's member list and hardship v2's expense and diagnosis.

Split from `validation.py` (which runs them with the other domain rules and publishes them):
how the members relate to each other, to the counts and to the personal data, and what a
diagnosis and an expense must say. Values are never echoed; each kind of problem names its
first member only. Pure.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from services.contract.members import composition_on

Problems = list[tuple[str, str]]


def people(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """members.people (schema v3): member ids are unique, exactly one member is HEAD, no
    member is born after the month of occurred_at, disability_grade is given exactly when
    health is DISABILITY; and members.count and the other counts are what the list gives on
    the day of occurred_at (ages from the first day of the birth month, labour at working age
    16-64, elderly 65 or over: services/contract/members.py). Each kind of problem names its
    first member only."""
    listed = record["members"].get("people") or []
    if not listed:
        return []
    problems: Problems = []
    seen: set[str] = set()
    day = record["occurred_at"].date()
    for index, person in enumerate(listed):
        where = f"members.people[{index}]"
        if person["member_id"] in seen:
            problems.append((f"{where}.member_id", "repeats an earlier member's id"))
        seen.add(person["member_id"])
        born = (person["birth_year"], person["birth_month"])
        if born > (day.year, day.month):
            field = "birth_year" if born[0] > day.year else "birth_month"
            problems.append((f"{where}.{field}", "cannot be after the month of occurred_at"))
        grade = person.get("disability_grade")
        if person["health"] == "DISABILITY" and grade is None:
            problems.append((f"{where}.disability_grade", "required when health is DISABILITY"))
        elif person["health"] != "DISABILITY" and grade is not None:
            problems.append((f"{where}.disability_grade", "only a DISABILITY has a grade"))
    problems = first_of_each_kind(problems)
    heads = [i for i, p in enumerate(listed) if p["relation"] == "HEAD"]
    if len(heads) != 1:
        where = f"members.people[{heads[1]}].relation" if heads else "members.people"
        problems.append((where, f"exactly one member is HEAD, not {len(heads)}"))
    if problems:  # the counts below need a list that makes sense
        return problems
    counted = composition_on(listed, day).as_record()
    for name, value in counted.items():
        if record["members"].get(name, 0) != value:
            problems.append(
                (
                    f"members.{name}",
                    f"differs from members.people on the day of occurred_at (which gives {value})",
                )
            )
    return problems


def personal_members(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """personal.members[].member_id names a member of members.people, each at most once (the
    first entry with each kind of problem is named)."""
    personal = record.get("personal")
    if personal is None:
        return []
    ids = {p["member_id"] for p in record["members"].get("people") or []}
    problems: Problems = []
    seen: set[str] = set()
    for index, entry in enumerate(personal.get("members") or []):
        member_id = entry["member_id"]
        if member_id not in ids or member_id in seen:
            problems.append(
                (
                    f"personal.members[{index}].member_id",
                    "repeats an earlier entry"
                    if member_id in seen
                    else "names no member of members.people",
                )
            )
        seen.add(member_id)
    return first_of_each_kind(problems)


def first_of_each_kind(problems: Problems) -> Problems:
    """The first member with each kind of problem (field without its index, and message): a
    list of 99 members born in the future is one problem to fix, not 99 lines that crowd out
    the record's other problems."""
    kinds: set[tuple[str, str]] = set()
    first: Problems = []
    for where, problem in problems:
        kind = (re.sub(r"\[\d+\]", "[]", where), problem)
        if kind not in kinds:
            kinds.add(kind)
            first.append((where, problem))
    return first


def expense(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """rigid_expenditure_yuan is 0 or expense.amount_yuan when an expense is given."""
    expense = record.get("expense")
    given = record.get("rigid_expenditure_yuan", 0)
    if expense is not None and given not in (0, expense["amount_yuan"]):
        return [("rigid_expenditure_yuan", "must be 0 or equal expense.amount_yuan")]
    return []


def diagnosis(record: dict, now: dt.datetime, skew: dt.timedelta) -> Problems:
    """diagnosis names its member by member_id or member_index, not both, and has a
    disability_grade exactly when its condition is DISABILITY."""
    diagnosis = record.get("diagnosis")
    if diagnosis is None:
        return []
    problems: Problems = []
    if diagnosis.get("member_id") is not None and diagnosis.get("member_index") is not None:
        problems.append(("diagnosis.member_index", "give member_id or member_index, not both"))
    grade = diagnosis.get("disability_grade")
    if diagnosis["condition"] == "DISABILITY" and grade is None:
        problems.append(("diagnosis.disability_grade", "required when condition is DISABILITY"))
    elif diagnosis["condition"] != "DISABILITY" and grade is not None:
        problems.append(("diagnosis.disability_grade", "only a DISABILITY has a grade"))
    return problems


# What JSON Schema can state of them, as `allOf` members of the published record schema: a
# member's disability grade given exactly for a disability (the rest of `people` relates values
# JSON Schema cannot: counts, ids, dates) ...
PEOPLE_FORMS: list[dict[str, Any]] = [
    {
        "properties": {
            "members": {
                "properties": {
                    "people": {
                        "items": {
                            "if": {
                                "required": ["health"],
                                "properties": {"health": {"const": "DISABILITY"}},
                            },
                            "then": {
                                "required": ["disability_grade"],
                                "properties": {"disability_grade": {"type": "integer"}},
                            },
                            "else": {"properties": {"disability_grade": {"type": "null"}}},
                        }
                    }
                }
            }
        }
    }
]
# ... and a diagnosis's grade and its one way of naming the member (all of `diagnosis`).
DIAGNOSIS_FORMS: list[dict[str, Any]] = [
    {
        "properties": {
            "diagnosis": {
                "anyOf": [
                    {"type": "null"},
                    {
                        "if": {
                            "required": ["condition"],
                            "properties": {"condition": {"const": "DISABILITY"}},
                        },
                        "then": {
                            "required": ["disability_grade"],
                            "properties": {"disability_grade": {"type": "integer"}},
                        },
                        "else": {"properties": {"disability_grade": {"type": "null"}}},
                    },
                ]
            }
        }
    },
    {
        "properties": {
            "diagnosis": {
                "not": {
                    "type": "object",
                    "required": ["member_id", "member_index"],
                    "properties": {
                        "member_id": {"not": {"type": "null"}},
                        "member_index": {"not": {"type": "null"}},
                    },
                }
            }
        }
    },
]
