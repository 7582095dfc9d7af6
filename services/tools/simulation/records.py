"""Contract records for the simulated county: the one place the generator speaks Avro field names.

Every function returns a record dict for the current schema of its event type, with
time-zone-aware datetimes for timestamps and `datetime.date` for dates, as `Codec` expects.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from services.contract.members import composition_on
from services.tools.simulation.county import Cadre, Household

REGISTRY = "shouwang.events.HouseholdRegistryRecorded"
CADRE = "shouwang.events.CadreRegistryRecorded"
VISIT = "shouwang.events.VisitRecorded"
INCOME = "shouwang.events.IncomeUpdated"
HARDSHIP = "shouwang.events.HardshipReported"
REVIEW = "shouwang.events.ReviewDecided"
MEASURE = "shouwang.events.MeasureStepRecorded"
PROBLEM = "shouwang.events.ProblemRecorded"
INPUT_TYPES = (REGISTRY, CADRE, VISIT, INCOME, HARDSHIP, REVIEW, MEASURE, PROBLEM)

# Namespace of every id the generator derives; ids are uuid5 of (run seed, purpose, counters).
SIMULATION_NAMESPACE = uuid.UUID("6f1c1a36-5f8e-4a53-9d0e-3b0d1c2a2020")
CHECKS = ("food", "clothing", "education", "medical", "housing", "water")


def derived_id(seed: int, *parts: object) -> str:
    """A deterministic UUID for `parts` in the run with `seed`."""
    return str(uuid.uuid5(SIMULATION_NAMESPACE, "/".join(str(p) for p in (seed, *parts))))


def _envelope(
    event_id: str,
    occurred_at: dt.datetime,
    recorded_at: dt.datetime,
    source: str,
    actor: str,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
        "source": source,
        "actor": actor,
    }


def registry_record(
    event_id: str,
    household: Household,
    occurred_at: dt.datetime,
    recorded_at: dt.datetime,
    *,
    change: str = "BASELINE",
    source: str = "IMPORT",
    actor: str = "import:county-table",
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    overrides = dict(overrides or {})
    people = overrides.pop("people", household.people)
    # With a member list the counts are what it gives on the record's day, as the door checks.
    m = (
        composition_on([p.record() for p in people], occurred_at.date())
        if people
        else household.members
    )
    record = {
        **_envelope(event_id, occurred_at, recorded_at, source, actor),
        "household_id": household.household_id,
        "change": change,
        "township": household.township,
        "village": household.village,
        "village_group": household.village_group,
        "registration": household.registration,
        "lifted_year": household.lifted_year,
        "members": {
            "count": m.count,
            "labour": m.labour,
            "weak_labour": m.weak_labour,
            "students": m.students,
            "disabled": m.disabled,
            "chronically_ill": m.chronically_ill,
            "elderly": m.elderly,
            "people": [p.record() for p in people],
        },
        "head_birth_year": household.head_birth_year,
        "main_livelihood": household.livelihood,
        "minimum_living_allowance": household.minimum_living_allowance,
        "housing": household.housing,
        "water": household.water,
        "baseline_income": {"year": 2019, "per_capita_net_yuan": household.income_2019},
        "personal": {
            "head_name": household.head_name,
            "citizen_id": household.citizen_id,
            "phone": household.phone,
            "members": [p.personal() for p in people],
        },
    }
    for key, value in overrides.items():
        if key == "members":
            record["members"] = {**record["members"], **value}
        else:
            record[key] = value
    return record


def cadre_record(
    event_id: str, cadre: Cadre, occurred_at: dt.datetime, recorded_at: dt.datetime
) -> dict[str, Any]:
    return {
        **_envelope(event_id, occurred_at, recorded_at, "IMPORT", "import:cadre-roster"),
        "cadre_id": cadre.cadre_id,
        "township": cadre.township,
        "village": cadre.village,
        "department": cadre.department,
        "max_households": cadre.max_households,
        "active": True,
        "personal": {"name": cadre.name, "phone": cadre.phone},
    }


def visit_record(
    event_id: str,
    household_id: str,
    occurred_at: dt.datetime,
    recorded_at: dt.datetime,
    *,
    cadre_id: str,
    visit_id: str,
    problems: dict[str, str],
    findings: list[dict[str, Any]],
    living_environment: str,
    policy_card: str,
    income: tuple[int, str, str] | None,
    hardship_causes: list[str],
    five_visits: dict[str, Any] | None,
    note: str,
    geo: tuple[float, float] | None,
) -> dict[str, Any]:
    """A visit; `problems` maps a check name (food, ..., water) to the note of its problem."""
    checks = {
        name: (
            {"status": "PROBLEM", "note": problems[name]}
            if name in problems
            else {"status": "SECURED", "note": ""}
        )
        for name in CHECKS
    }
    return {
        **_envelope(event_id, occurred_at, recorded_at, "APP", cadre_id),
        "household_id": household_id,
        "visit_id": visit_id,
        "cadre_id": cadre_id,
        "checks": checks,
        "income_estimate": (
            None
            if income is None
            else {"per_capita_yuan": income[0], "method": income[1], "note": income[2]}
        ),
        "living_environment": living_environment,
        "policy_card": policy_card,
        "hardship_causes": hardship_causes,
        "problems": findings,
        "five_visits": five_visits,
        "note": note,
        "geo": None if geo is None else {"lat": geo[0], "lon": geo[1]},
    }


def income_record(
    event_id: str,
    household: Household,
    occurred_at: dt.datetime,
    recorded_at: dt.datetime,
    *,
    source: str,
    actor: str,
    origin: str,
    period_start: dt.date,
    period_end: dt.date,
    per_capita: int,
) -> dict[str, Any]:
    total = per_capita * household.members.count
    # Split the household's income by what it lives on; the parts sum to the total.
    shares = {
        "MIGRANT_WORK": (0.75, 0.1, 0.02),
        "LOCAL_WAGES": (0.65, 0.15, 0.02),
        "FARMING": (0.25, 0.55, 0.02),
        "LIVESTOCK": (0.2, 0.6, 0.02),
        "BUSINESS": (0.15, 0.7, 0.05),
        "TRANSFERS": (0.0, 0.15, 0.0),
        "MIXED": (0.45, 0.35, 0.03),
    }[household.livelihood]
    wages, business, property_ = (round(total * s) for s in shares)
    transfers = total - wages - business - property_
    return {
        **_envelope(event_id, occurred_at, recorded_at, source, actor),
        "household_id": household.household_id,
        "period_start": period_start,
        "period_end": period_end,
        "members_counted": household.members.count,
        "per_capita_net_yuan": per_capita,
        "wages_yuan": wages,
        "business_yuan": business,
        "property_yuan": property_,
        "transfers_yuan": transfers,
        "origin": origin,
    }


def hardship_record(
    event_id: str,
    household_id: str,
    occurred_at: dt.datetime,
    recorded_at: dt.datetime,
    *,
    source: str,
    actor: str,
    hardship_id: str,
    cause: str,
    rigid_expenditure_yuan: int,
    origin: str,
    department: str | None,
    resolved: bool,
    description: str,
    expense_kind: str | None = None,
    diagnosis: tuple[str, str, int | None] | None = None,
) -> dict[str, Any]:
    """A v2 report: the amount as an expense of `expense_kind` (none without an amount), and
    `diagnosis` as (member id, condition, disability grade)."""
    return {
        **_envelope(event_id, occurred_at, recorded_at, source, actor),
        "household_id": household_id,
        "hardship_id": hardship_id,
        "cause": cause,
        "rigid_expenditure_yuan": rigid_expenditure_yuan,
        "origin": origin,
        "department": department,
        "resolved": resolved,
        "description": description,
        "expense": {"amount_yuan": rigid_expenditure_yuan, "kind": expense_kind or "OTHER"}
        if rigid_expenditure_yuan
        else None,
        "diagnosis": None
        if diagnosis is None
        else {
            "member_id": diagnosis[0],
            "member_index": None,
            "condition": diagnosis[1],
            "disability_grade": diagnosis[2],
        },
    }


def review_record(
    event_id: str,
    household_id: str,
    occurred_at: dt.datetime,
    recorded_at: dt.datetime,
    *,
    source: str,
    actor: str,
    decision: str,
    category: str | None,
    body: str,
    approving_level: str,
    notice_start: dt.date | None,
    notice_days: int,
    reason: str,
    outcome: str | None = None,
    exception: bool = False,
) -> dict[str, Any]:
    return {
        **_envelope(event_id, occurred_at, recorded_at, source, actor),
        "household_id": household_id,
        "decision": decision,
        "category": category,
        "body": body,
        "approving_level": approving_level,
        "notice_start": notice_start,
        "notice_days": notice_days,
        "assessment_event_id": None,
        "reason": reason,
        "outcome": outcome,
        "exception": exception,
    }


def measure_record(
    event_id: str,
    household_id: str,
    occurred_at: dt.datetime,
    recorded_at: dt.datetime,
    *,
    source: str,
    actor: str,
    measure_id: str,
    step: str,
    measure_type: str,
    catalogue_id: str,
    pool: str | None,
    cadre_id: str | None,
    quantities: list[tuple[str, int, str]],
    amount_yuan: int | None,
    term_months: int | None,
    note: str,
) -> dict[str, Any]:
    return {
        **_envelope(event_id, occurred_at, recorded_at, source, actor),
        "household_id": household_id,
        "measure_id": measure_id,
        "step": step,
        "measure_type": measure_type,
        "catalogue_id": catalogue_id,
        "pool": pool,
        "cadre_id": cadre_id,
        "quantities": [{"item": i, "amount": a, "unit": u} for i, a, u in quantities],
        "amount_yuan": amount_yuan,
        "term_months": term_months,
        "reasons": [],
        "note": note,
    }


def problem_record(
    event_id: str,
    household_id: str,
    occurred_at: dt.datetime,
    recorded_at: dt.datetime,
    *,
    source: str,
    actor: str,
    problem_id: str,
    step: str,
    kind: str,
    description: str,
    responsible_cadre_id: str | None,
    due_date: dt.date | None,
    visit_id: str | None,
) -> dict[str, Any]:
    return {
        **_envelope(event_id, occurred_at, recorded_at, source, actor),
        "household_id": household_id,
        "problem_id": problem_id,
        "step": step,
        "kind": kind,
        "description": description,
        "responsible_cadre_id": responsible_cadre_id,
        "due_date": due_date,
        "visit_id": visit_id,
    }
