"""The one way tests build contract records: a complete record per event type, as an
(event type, record) pair, with deterministic uuid5 ids and keyword overrides.

Each builder fills every field of its schema (`tests/unit/contract/test_records.py` encodes
every default with the real codec and compares the fields with the schema, so the builders
cannot drift from `schemas/`). Keyword parameters name what scenarios vary; any other top-level
field can be given as a keyword too (`recorded_at=...`, `reasons=[...]`), and a name the record
does not have is a TypeError, so a test that wants a malformed record says so itself.

The seed households built from these records are in `tests/seed_households.py`. Hypothesis
strategies for *any* valid record are in `tests/avro_strategies.py`; the visits API's JSON
bodies are in `tests/visits_samples.py`.

Over 400 lines because it holds one builder for each of the contract's eleven event types: kept
in one module so there is one place to look, and one to change with a schema.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from services.contract.members import composition_on

UTC = dt.UTC
Record = tuple[str, dict[str, Any]]
SIX_CHECKS = ("food", "clothing", "education", "medical", "housing", "water")


def at(day: str, hour: int = 10) -> dt.datetime:
    """`day` (ISO date) at `hour`:00 UTC."""
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def record_id(subject_id: str, label: str) -> uuid.UUID:
    """The event id of `subject_id`'s record named `label`: the same on every run."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"shouwang-test/{subject_id}/{label}")


def _header(
    household_id: str,
    label: str,
    when: dt.datetime,
    recorded: dt.datetime | None,
    source: str = "APP",
    actor: str = "cadre-yang",
) -> dict[str, Any]:
    return {
        "event_id": record_id(household_id, label),
        "household_id": household_id,
        "occurred_at": when,
        "recorded_at": recorded or when,
        "source": source,
        "actor": actor,
    }


def _built(event_type: str, record: dict[str, Any], overrides: dict[str, Any]) -> Record:
    unknown = sorted(overrides.keys() - record.keys())
    if unknown:
        raise TypeError(f"{event_type} has no field {', '.join(unknown)}")
    return event_type, {**record, **overrides}


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
    people: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> Record:
    """A county-table baseline row; `baseline` is (year, per-capita yuan). With `people`
    (`member(...)` records, schema v3) the counts are the ones the list gives on `when`, as the
    door requires."""
    if people:
        counted = composition_on(people, when.date())
        count, labour, weak_labour = counted.count, counted.labour, counted.weak_labour
        students, disabled = counted.students, counted.disabled
        chronically_ill, elderly = counted.chronically_ill, counted.elderly
    return _built(
        "HouseholdRegistryRecorded",
        {
            **_header(household_id, label, when, None, "IMPORT", "county-table"),
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
                "people": list(people or ()),
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
            "personal_sealed": None,
        },
        fields,
    )


def member(
    member_id: str,
    birth: str,
    *,
    relation: str = "HEAD",
    sex: str = "MALE",
    labour: str = "FULL",
    health: str = "HEALTHY",
    grade: int | None = None,
    schooling: str = "NONE",
    migrant_months: int = 0,
) -> dict[str, Any]:
    """One member of a registry's list (schema v3); `birth` is "YYYY-MM"."""
    year, month = (int(part) for part in birth.split("-"))
    return {
        "member_id": member_id,
        "relation": relation,
        "birth_year": year,
        "birth_month": month,
        "sex": sex,
        "labour": labour,
        "health": health,
        "disability_grade": grade,
        "schooling": schooling,
        "migrant_work_months": migrant_months,
    }


def expense(amount: int, kind: str = "MEDICAL") -> dict[str, Any]:
    """A hardship report's expense (hardship contract v2)."""
    return {"amount_yuan": amount, "kind": kind}


def diagnosis(
    condition: str = "SERIOUS_ILLNESS",
    member_id: str | None = None,
    *,
    member_index: int | None = None,
    grade: int | None = None,
) -> dict[str, Any]:
    """A hardship report's diagnosis (hardship contract v2)."""
    return {
        "member_id": member_id,
        "member_index": member_index,
        "condition": condition,
        "disability_grade": grade,
    }


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
    spring_farming: bool = False,
    family_impact: str = "",
    students_at_home: tuple[int, int] = (0, 0),
    recorded: dt.datetime | None = None,
    label: str | None = None,
    **fields: Any,
) -> Record:
    """A cadre's visit; `checks` maps a check to its status (the rest SECURED), `problems` are
    (kind, description, fixed on the spot), `unsold` is (item, quantity, unit, value yuan),
    `students_at_home` is (learning at home, of them without access); any of the five-visits
    arguments gives the visit its epidemic block."""
    statuses = dict.fromkeys(SIX_CHECKS, "SECURED")
    statuses.update(checks or {})
    five = None
    epidemic = (unsold, seeking_work, spring_farming, family_impact, any(students_at_home))
    if any(x not in (None, 0, False, "") for x in epidemic):
        five = {
            "family_impact": family_impact,
            "members_seeking_work": seeking_work,
            "spring_farming_needs_help": spring_farming,
            "unsold_produce": None
            if unsold is None
            else dict(zip(("item", "quantity", "unit", "value_yuan"), unsold, strict=True)),
            "students_learning_at_home": students_at_home[0],
            "students_without_access": students_at_home[1],
            "note": "",
        }
    return _built(
        "VisitRecorded",
        {
            **_header(household_id, label or f"visit/{visit_id}", when, recorded),
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
        fields,
    )


def income(
    household_id: str,
    when: dt.datetime,
    per_capita: int = 6500,
    *,
    members: int = 3,
    start: str | None = None,
    end: str | None = None,
    label: str | None = None,
    **fields: Any,
) -> Record:
    """A survey's income for the year ending `end` (default: the day of `when`)."""
    end_day = dt.date.fromisoformat(end) if end else when.date()
    start_day = dt.date.fromisoformat(start) if start else end_day - dt.timedelta(days=364)
    return _built(
        "IncomeUpdated",
        {
            **_header(household_id, label or f"income/{end_day}", when, None, "FEED", "survey"),
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
        fields,
    )


def hardship(
    household_id: str,
    when: dt.datetime,
    cause: str = "ILLNESS",
    expenditure: int = 20000,
    *,
    hardship_id: str = "h1",
    resolved: bool = False,
    origin: str = "DEPARTMENT_FEED",
    label: str | None = None,
    **fields: Any,
) -> Record:
    """A department's report of a hardship and its rigid expenditure, v1-shaped (cause and
    amount) unless `expense=` / `diagnosis=` (v2) are given; an expense sets the amount."""
    label = label or f"hardship/{hardship_id}/{when.isoformat()}"
    if fields.get("expense") is not None:
        expenditure = fields["expense"]["amount_yuan"]
    return _built(
        "HardshipReported",
        {
            **_header(household_id, label, when, None, "FEED", "health-insurance"),
            "hardship_id": hardship_id,
            "cause": cause,
            "rigid_expenditure_yuan": expenditure,
            "origin": origin,
            "department": "health-insurance",
            "resolved": resolved,
            "description": "",
            "expense": None,
            "diagnosis": None,
        },
        fields,
    )


def review(
    household_id: str,
    when: dt.datetime,
    decision: str = "INCLUDE",
    category: str | None = None,
    *,
    label: str | None = None,
    **fields: Any,
) -> Record:
    """A review group's decision."""
    label = label or f"review/{decision}/{when.isoformat()}"
    return _built(
        "ReviewDecided",
        {
            **_header(household_id, label, when, None, "OPERATOR", "review-group-1"),
            "decision": decision,
            "category": category,
            "body": "REVIEW_GROUP",
            "approving_level": "TOWNSHIP",
            "notice_start": None,
            "notice_days": 0,
            "assessment_event_id": None,
            "reason": "",
            "outcome": None,
            "exception": False,
        },
        fields,
    )


def approved(
    household_id: str,
    when: dt.datetime,
    decision: str = "INCLUDE",
    category: str | None = None,
    *,
    opening: bool = True,
    notice_days: int = 5,
    label: str | None = None,
    **fields: Any,
) -> list[Record]:
    """A county approval (INCLUDE or ELIMINATE) at `when` with every step of the procedure the
    fold asks before it, placed as late as the rules allow: the opening decision
    (START_VERIFICATION for INCLUDE, PROPOSE_ELIMINATION for ELIMINATE; `opening=False` when
    the test records its own), village deliberation PASSED, a public notice of `notice_days`
    ending the day before the township review, township review PASSED just before `when`.
    The opening comes `notice_days + 1` days or so before `when`: a test's other decisions
    must not fall in between."""
    label = label or f"review/{decision}/{when.isoformat()}"  # the approval's, as review's
    township = when - dt.timedelta(minutes=1)
    notice_ends = township.date() - dt.timedelta(days=1)
    notice_start = notice_ends - dt.timedelta(days=notice_days - 1)
    posted = township - dt.timedelta(days=(township.date() - notice_start).days, minutes=1)
    deliberation = posted - dt.timedelta(minutes=1)
    steps = []
    if opening:
        first = "START_VERIFICATION" if decision == "INCLUDE" else "PROPOSE_ELIMINATION"
        opened = deliberation - dt.timedelta(minutes=1)
        steps.append(review(household_id, opened, first, label=f"{label}/open"))
    village = {"body": "VILLAGE", "approving_level": "VILLAGE"}
    steps += [
        review(
            household_id, deliberation, "VILLAGE_DELIBERATION", label=f"{label}/deliberation",
            outcome="PASSED", **village,
        ),
        review(
            household_id, posted, "NOTICE", label=f"{label}/notice", notice_start=notice_start,
            notice_days=notice_days, **village,
        ),
        review(
            household_id, township, "TOWNSHIP_REVIEW", label=f"{label}/township",
            outcome="PASSED", body="TOWNSHIP", approving_level="TOWNSHIP",
        ),
        review(
            household_id, when, decision, category, label=label,
            **{"body": "COUNTY", "approving_level": "COUNTY", **fields},
        ),
    ]  # fmt: skip
    return steps


def measure(
    household_id: str,
    when: dt.datetime,
    measure_id: str = "m-1",
    step: str = "RECOMMENDED",
    measure_type: str = "INDUSTRY",
    catalogue_id: str = "industry.poultry",
    *,
    label: str | None = None,
    **fields: Any,
) -> Record:
    """One step of a support measure, recorded by the township office."""
    return _built(
        "MeasureStepRecorded",
        {
            **_header(
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
        fields,
    )


def problem(
    household_id: str,
    when: dt.datetime,
    problem_id: str = "p-1",
    step: str = "FOUND",
    kind: str = "POLICY_CARD",
    *,
    due: str | None = None,
    label: str | None = None,
    **fields: Any,
) -> Record:
    """One step of a problem found on a visit; `due` is an ISO date."""
    label = label or f"problem/{problem_id}/{step}/{when.isoformat()}"
    return _built(
        "ProblemRecorded",
        {
            **_header(household_id, label, when, None),
            "problem_id": problem_id,
            "step": step,
            "kind": kind,
            "description": "",
            "responsible_cadre_id": "cadre-chen",
            "due_date": dt.date.fromisoformat(due) if due else None,
            "visit_id": None,
        },
        fields,
    )


def risk(
    household_id: str,
    when: dt.datetime,
    *,
    category: str | None = "UNSTABLE_LIFTED",
    level: str = "HIGH",
    workflow: str = "MONITORED",
    label: str | None = None,
    **fields: Any,
) -> Record:
    """Monitoring's assessment as of `when`: a monitored household with one reason."""
    label = label or f"risk/{when.isoformat()}"
    return _built(
        "RiskAssessed",
        {
            **_header(household_id, label, when, None, "SERVICE", "monitoring"),
            "as_of": when,
            "policy_version": "dianjiang-2020",
            "category": category,
            "level": level,
            "workflow": workflow,
            "reasons": [{"code": "rigid_expenditure", "message": "uremia", "event_ids": []}],
            "overdue": [],
            "procedure": None,
            "exceptions": None,
            "chain_hash": "",
        },
        fields,
    )


def cadre(
    cadre_id: str,
    when: dt.datetime,
    *,
    township: str = "鹤游镇",
    village: str | None = "水井村",
    max_households: int = 6,
    label: str = "cadre",
    **fields: Any,
) -> Record:
    """A cadre on the county's cadre table, active, able to pair with `max_households`."""
    return _built(
        "CadreRegistryRecorded",
        {
            "event_id": record_id(cadre_id, label),
            "cadre_id": cadre_id,
            "occurred_at": when,
            "recorded_at": when,
            "source": "IMPORT",
            "actor": "cadre-table",
            "township": township,
            "village": village,
            "department": "town",
            "max_households": max_households,
            "active": True,
            "personal": None,
            "personal_sealed": None,
        },
        fields,
    )


def operator_action(
    subject_id: str,
    when: dt.datetime,
    action: str = "TOKEN_REVOKED",
    *,
    label: str | None = None,
    **fields: Any,
) -> Record:
    """An operator's action on `subject_id` (a token, a catalogue, a person's data); no token,
    catalogue or personal detail unless given."""
    return _built(
        "OperatorActionRecorded",
        {
            "event_id": record_id(subject_id, label or f"action/{action}"),
            "subject_id": subject_id,
            "occurred_at": when,
            "recorded_at": when,
            "source": "OPERATOR",
            "actor": "operator",
            "action": action,
            "token": None,
            "catalogue": None,
            "reason": "",
            "personal": None,
        },
        fields,
    )


def dead_letter(
    origin_topic: str,
    when: dt.datetime,
    *,
    offset: int = 0,
    error_kind: str = "UNDECODABLE",
    error: str = "not a frame",
    label: str | None = None,
    **fields: Any,
) -> Record:
    """A worker's dead letter for the record at `offset` of partition 0 of `origin_topic`."""
    return _built(
        "DeadLetter",
        {
            "event_id": record_id(origin_topic, label or f"dead/{offset}"),
            "recorded_at": when,
            "actor": "monitoring",
            "origin_topic": origin_topic,
            "origin_partition": 0,
            "origin_offset": offset,
            "original_key": None,
            "original_value": None,
            "error_kind": error_kind,
            "error": error,
        },
        fields,
    )


# Every builder, by the contract's event type: its default record must encode (see its test).
BUILDERS = {
    "HouseholdRegistryRecorded": lambda: registry("h-default", at("2020-05-16")),
    "VisitRecorded": lambda: visit("h-default", at("2020-05-16")),
    "IncomeUpdated": lambda: income("h-default", at("2020-05-16")),
    "HardshipReported": lambda: hardship("h-default", at("2020-05-16")),
    "ReviewDecided": lambda: review("h-default", at("2020-05-16")),
    "MeasureStepRecorded": lambda: measure("h-default", at("2020-05-16")),
    "ProblemRecorded": lambda: problem("h-default", at("2020-05-16")),
    "RiskAssessed": lambda: risk("h-default", at("2020-05-16")),
    "CadreRegistryRecorded": lambda: cadre("c-default", at("2020-05-16")),
    "OperatorActionRecorded": lambda: operator_action("token:default", at("2020-05-16")),
    "DeadLetter": lambda: dead_letter("household.visits", at("2020-05-16")),
}
