"""Contract records for monitoring tests: seed households as (event type, record) pairs.

The same pairs feed the pure fold (through avro_translation) and the real broker (through the
codec), so a scenario means the same thing in unit and integration tests.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from services.monitoring.adapters.avro_translation import event_from

UTC = dt.UTC
Record = tuple[str, dict[str, Any]]


def at(day: str, hour: int = 10) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def _id(household_id: str, label: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"shouwang-test/{household_id}/{label}")


def _common(
    household_id: str,
    label: str,
    when: dt.datetime,
    recorded: dt.datetime | None,
    source: str = "APP",
    actor: str = "cadre-yang",
) -> dict[str, Any]:
    return {
        "event_id": _id(household_id, label),
        "household_id": household_id,
        "occurred_at": when,
        "recorded_at": recorded or when,
        "source": source,
        "actor": actor,
    }


def registry(
    household_id: str,
    when: dt.datetime,
    *,
    registration: str = "LIFTED",
    lifted_year: int | None = 2015,
    count: int = 3,
    labour: int = 1,
    weak_labour: int = 0,
    students: int = 0,
    disabled: int = 0,
    chronically_ill: int = 0,
    elderly: int = 0,
    livelihood: str = "FARMING",
    allowance: bool = False,
    baseline: tuple[int, int] | None = None,
    township: str = "鹤游镇",
    label: str = "registry",
) -> Record:
    return (
        "HouseholdRegistryRecorded",
        {
            **_common(household_id, label, when, None, "IMPORT", "county-table"),
            "change": "BASELINE",
            "township": township,
            "village": "水井村",
            "village_group": "7组",
            "registration": registration,
            "lifted_year": lifted_year if registration == "LIFTED" else None,
            "members": {
                "count": count,
                "labour": labour,
                "weak_labour": weak_labour,
                "students": students,
                "disabled": disabled,
                "chronically_ill": chronically_ill,
                "elderly": elderly,
            },
            "head_birth_year": 1978,
            "main_livelihood": livelihood,
            "minimum_living_allowance": allowance,
            "housing": "SAFE",
            "water": "SAFE",
            "baseline_income": None
            if baseline is None
            else {"year": baseline[0], "per_capita_net_yuan": baseline[1]},
            "personal": None,
        },
    )


def visit(
    household_id: str,
    when: dt.datetime,
    *,
    visit_id: str = "v1",
    checks: dict[str, str] | None = None,
    income: int | None = None,
    living: str = "CLEAN",
    card: str = "POSTED",
    causes: tuple[str, ...] = (),
    problems: tuple[tuple[str, str, bool], ...] = (),
    unsold: tuple | None = None,
    seeking_work: int = 0,
    recorded: dt.datetime | None = None,
    label: str | None = None,
) -> Record:
    statuses = {
        n: "SECURED" for n in ("food", "clothing", "education", "medical", "housing", "water")
    }
    statuses.update(checks or {})
    five = None
    if unsold is not None or seeking_work:
        five = {
            "family_impact": "",
            "members_seeking_work": seeking_work,
            "spring_farming_needs_help": False,
            "unsold_produce": None
            if unsold is None
            else dict(zip(("item", "quantity", "unit", "value_yuan"), unsold, strict=True)),
            "students_learning_at_home": 0,
            "students_without_access": 0,
            "note": "",
        }
    return (
        "VisitRecorded",
        {
            **_common(household_id, label or f"visit/{visit_id}", when, recorded),
            "visit_id": visit_id,
            "cadre_id": "cadre-yang",
            "checks": {n: {"status": s, "note": ""} for n, s in statuses.items()},
            "income_estimate": None
            if income is None
            else {"per_capita_yuan": income, "method": "DETAILED_ACCOUNTS", "note": ""},
            "living_environment": living,
            "policy_card": card,
            "hardship_causes": list(causes),
            "problems": [{"kind": k, "description": d, "fixed_on_spot": f} for k, d, f in problems],
            "five_visits": five,
            "note": "",
            "geo": None,
        },
    )


def income(
    household_id: str,
    when: dt.datetime,
    per_capita: int,
    *,
    members: int = 3,
    start: str | None = None,
    end: str | None = None,
    label: str | None = None,
) -> Record:
    end_day = dt.date.fromisoformat(end) if end else when.date()
    start_day = dt.date.fromisoformat(start) if start else end_day - dt.timedelta(days=364)
    return (
        "IncomeUpdated",
        {
            **_common(household_id, label or f"income/{end_day}", when, None, "FEED", "survey"),
            "period_start": start_day,
            "period_end": end_day,
            "members_counted": members,
            "per_capita_net_yuan": per_capita,
            "wages_yuan": 0,
            "business_yuan": per_capita * members,
            "property_yuan": 0,
            "transfers_yuan": 0,
            "origin": "SURVEY",
        },
    )


def hardship(
    household_id: str,
    when: dt.datetime,
    cause: str,
    expenditure: int,
    *,
    hardship_id: str = "h1",
    resolved: bool = False,
    origin: str = "DEPARTMENT_FEED",
    label: str | None = None,
) -> Record:
    return (
        "HardshipReported",
        {
            **_common(
                household_id,
                label or f"hardship/{hardship_id}/{when.isoformat()}",
                when,
                None,
                "FEED",
                "health-insurance",
            ),
            "hardship_id": hardship_id,
            "cause": cause,
            "rigid_expenditure_yuan": expenditure,
            "origin": origin,
            "department": "health-insurance",
            "resolved": resolved,
            "description": "",
        },
    )


def review(
    household_id: str,
    when: dt.datetime,
    decision: str,
    category: str | None = None,
    *,
    label: str | None = None,
) -> Record:
    return (
        "ReviewDecided",
        {
            **_common(
                household_id,
                label or f"review/{decision}/{when.isoformat()}",
                when,
                None,
                "OPERATOR",
                "review-group-1",
            ),
            "decision": decision,
            "category": category,
            "body": "REVIEW_GROUP",
            "approving_level": "TOWNSHIP",
            "notice_start": None,
            "notice_days": 0,
            "assessment_event_id": None,
            "reason": "",
        },
    )


def measure(
    household_id: str,
    when: dt.datetime,
    measure_id: str,
    step: str,
    measure_type: str = "INDUSTRY",
    catalogue_id: str = "industry.poultry",
    *,
    label: str | None = None,
) -> Record:
    return (
        "MeasureStepRecorded",
        {
            **_common(
                household_id,
                label or f"measure/{measure_id}/{step}",
                when,
                None,
                "OPERATOR",
                "township-office",
            ),
            "measure_id": measure_id,
            "step": step,
            "measure_type": measure_type,
            "catalogue_id": catalogue_id,
            "pool": None,
            "cadre_id": "cadre-yang",
            "quantities": [],
            "amount_yuan": None,
            "term_months": None,
            "reasons": [],
            "waiting_for": None,
            "note": "",
        },
    )


def problem(
    household_id: str,
    when: dt.datetime,
    problem_id: str,
    step: str,
    kind: str = "POLICY_CARD",
    *,
    due: str | None = None,
    label: str | None = None,
) -> Record:
    return (
        "ProblemRecorded",
        {
            **_common(
                household_id, label or f"problem/{problem_id}/{step}/{when.isoformat()}", when, None
            ),
            "problem_id": problem_id,
            "step": step,
            "kind": kind,
            "description": "",
            "responsible_cadre_id": "cadre-chen",
            "due_date": dt.date.fromisoformat(due) if due else None,
            "visit_id": None,
        },
    )


def domain(records: list[Record]) -> list[object]:
    return [event_from(event_type, record) for event_type, record in records]


# --- the seed's households --------------------------------------------------------------------


def zhou_uremia(household_id: str = "500231-zhou") -> list[Record]:
    """Seed: 42, uremia, a son in primary school, minimum living allowance, 10% self-pay of
    medical costs; lifted 2015; 80 pomelo seedlings (fruit from 2021) and 50 ducklings."""
    return [
        registry(
            household_id,
            at("2019-12-31"),
            count=2,
            labour=0,
            weak_labour=1,
            students=1,
            chronically_ill=1,
            livelihood="TRANSFERS",
            allowance=True,
            baseline=(2019, 6100),
        ),
        measure(
            household_id,
            at("2019-11-20"),
            "m-pomelo",
            "DELIVERED",
            "INDUSTRY",
            "industry.pomelo-seedlings",
        ),
        measure(
            household_id,
            at("2020-04-28"),
            "m-ducklings",
            "DELIVERED",
            "INDUSTRY",
            "industry.poultry",
        ),
        hardship(household_id, at("2020-05-14"), "ILLNESS", 7200, hardship_id="uremia"),
        visit(
            household_id, at("2020-05-16", 15), visit_id="v-0516", income=5600, causes=("ILLNESS",)
        ),
    ]


def wu_chickens(household_id: str = "500231-wu") -> list[Record]:
    """Seed: lifted poultry farmer, 100+ chickens unsold in the epidemic; sales aid found buyers."""
    return [
        registry(
            household_id,
            at("2019-12-31"),
            count=3,
            labour=2,
            livelihood="LIVESTOCK",
            baseline=(2019, 9000),
        ),
        visit(
            household_id,
            at("2020-03-10"),
            visit_id="v-0310",
            causes=("EPIDEMIC",),
            unsold=("chickens", 110, "head", 8800),
        ),
    ]


def wu_sales_aid(household_id: str = "500231-wu") -> list[Record]:
    return [
        measure(
            household_id,
            at("2020-03-20"),
            "m-sales",
            "DELIVERED",
            "SALES_AID",
            "sales.produce-buyers",
        )
    ]


def marginal(household_id: str = "h-marginal") -> list[Record]:
    """Never registered, income below the 6,000-yuan line."""
    return [
        registry(household_id, at("2019-12-31"), registration="NEVER_REGISTERED"),
        income(household_id, at("2020-05-10"), 5400, end="2020-04-30"),
    ]


def sudden_hardship(household_id: str = "h-sudden") -> list[Record]:
    """Never registered, 27,000 yuan household income in 2020, a 31,000-yuan bill in 2021."""
    return [
        registry(
            household_id,
            at("2020-12-31"),
            registration="NEVER_REGISTERED",
            count=3,
            labour=2,
            baseline=(2020, 9000),
        ),
        hardship(household_id, at("2021-03-02"), "ILLNESS", 31000, hardship_id="bill"),
    ]


def monitored_then_eliminated(household_id: str = "h-elim") -> list[Record]:
    """Included 16 May 2020; a job, income above the line since mid-2019; eliminated in November."""
    return [
        registry(household_id, at("2019-12-31"), count=3, labour=2, baseline=(2019, 5200)),
        review(household_id, at("2020-05-16"), "INCLUDE", "UNSTABLE_LIFTED"),
        measure(
            household_id,
            at("2020-06-01"),
            "m-jobs",
            "DELIVERED",
            "MIGRANT_WORK",
            "employment.migrant-work",
        ),
        income(household_id, at("2020-06-05"), 7600, start="2019-06-01", end="2020-05-31"),
        visit(household_id, at("2020-08-20"), visit_id="v-aug", income=7800),
        review(household_id, at("2020-11-20"), "ELIMINATE"),
    ]


def policy_card_fixed_on_the_spot(household_id: str = "h-card") -> list[Record]:
    return [
        registry(household_id, at("2019-12-31"), baseline=(2019, 9000)),
        visit(
            household_id,
            at("2020-05-15"),
            visit_id="v-515",
            card="POSTED",
            problems=(("POLICY_CARD", "明白卡掉了, reposted", True),),
            living="UNTIDY",
        ),
    ]
