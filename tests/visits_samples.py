"""Valid JSON bodies for every route of the visits API, for unit and integration tests."""

from __future__ import annotations

import copy
import uuid
from typing import Any

TOWNSHIP = "Gaofeng"
OTHER_TOWNSHIP = "Baishi"
CADRE = "cadre-0042"

_SECURED = {"status": "SECURED"}

SAMPLES: dict[str, dict[str, Any]] = {
    "visits": {
        "household_id": "H-500228-0001",
        "occurred_at": "2020-05-16T09:30:00+08:00",
        "visit_id": "V-1",
        "cadre_id": CADRE,
        "checks": {
            "food": _SECURED,
            "clothing": _SECURED,
            "education": _SECURED,
            "medical": {"status": "PROBLEM", "note": "pays 10% of dialysis"},
            "housing": _SECURED,
            "water": _SECURED,
        },
        "income_estimate": {"per_capita_yuan": 5800, "method": "DETAILED_ACCOUNTS"},
        "policy_card": "MISSING",
        "living_environment": "UNTIDY",
        "hardship_causes": ["ILLNESS"],
        "problems": [
            {"kind": "POLICY_CARD", "description": "card fell off the wall", "fixed_on_spot": True}
        ],
        "geo": {"lat": 30.33, "lon": 107.35},
    },
    "households": {
        "household_id": "H-500228-0001",
        "occurred_at": "2020-04-01T00:00:00+08:00",
        "change": "BASELINE",
        "township": TOWNSHIP,
        "village": "Qingshan",
        "village_group": "3",
        "registration": "LIFTED",
        "lifted_year": 2015,
        "members": {
            "count": 3,
            "labour": 1,
            "students": 1,
            "disabled": 0,
            "chronically_ill": 1,
            "elderly": 0,
        },
        "head_birth_year": 1978,
        "minimum_living_allowance": True,
        "housing": "SAFE",
        "water": "SAFE",
        "baseline_income": {"year": 2019, "per_capita_net_yuan": 6200},
        "personal": {"head_name": "Zhang San", "citizen_id": "500228197801010011"},
    },
    "income-updates": {
        "household_id": "H-500228-0001",
        "occurred_at": "2020-05-16T10:00:00+08:00",
        "period_start": "2019-05-01",
        "period_end": "2020-04-30",
        "members_counted": 3,
        "per_capita_net_yuan": 5800,
        "wages_yuan": 9000,
        "business_yuan": 4000,
        "property_yuan": 0,
        "transfers_yuan": 4400,
        "origin": "CADRE_ACCOUNTS",
    },
    "hardships": {
        "household_id": "H-500228-0001",
        "occurred_at": "2020-05-10T00:00:00+08:00",
        "hardship_id": "HS-77",
        "cause": "ILLNESS",
        "rigid_expenditure_yuan": 12000,
        "origin": "DEPARTMENT_FEED",
        "department": "health-insurance",
        "description": "dialysis, 10% self-paid",
    },
    "measure-steps": {
        "household_id": "H-500228-0001",
        "occurred_at": "2020-05-16T11:00:00+08:00",
        "measure_id": "M-9",
        "step": "DELIVERED",
        "measure_type": "INDUSTRY",
        "catalogue_id": "industry.fruit-seedlings",  # in the shipped catalogue
        "quantities": [{"item": "pomelo seedlings", "amount": 80, "unit": "plant"}],
    },
    "problems": {
        "household_id": "H-500228-0001",
        "occurred_at": "2020-05-16T09:45:00+08:00",
        "problem_id": "P-3",
        "step": "RECTIFIED",
        "kind": "POLICY_CARD",
        "description": "card put back on the wall",
        "visit_id": "V-1",
    },
    "review-decisions": {
        "household_id": "H-500228-0001",
        "occurred_at": "2020-05-16T20:00:00+08:00",
        "decision": "INCLUDE",
        "category": "UNSTABLE_LIFTED",
        "body": "REVIEW_GROUP",
        "approving_level": "COUNTY",
        "notice_start": "2020-05-17",
        "notice_days": 5,
        "reason": "uremia, high medical costs",
    },
    "cadres": {
        "cadre_id": CADRE,
        "occurred_at": "2020-04-01T00:00:00+08:00",
        "township": TOWNSHIP,
        "department": "county-agriculture",
        "max_households": 5,
    },
}


def sample(slug: str, **changes: Any) -> dict[str, Any]:
    """A valid body for route `slug` with a fresh event_id, then `changes` applied on top."""
    body = copy.deepcopy(SAMPLES[slug])
    body["event_id"] = str(uuid.uuid4())
    body.update(changes)
    return body


def value_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside `value` (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(value_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(value_paths(item, (*prefix, index)))
    return found
