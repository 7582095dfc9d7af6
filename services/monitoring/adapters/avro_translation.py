"""The one place that translates decoded contract records to monitoring's domain and back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.monitoring.domain.assess import Assessment
from services.monitoring.domain.events import (
    CHECKS,
    BaselineIncome,
    Check,
    Diagnosis,
    Expense,
    FiveVisits,
    HardshipReported,
    IncomeUpdated,
    MeasureStepRecorded,
    Member,
    Members,
    ProblemRecorded,
    RegistryRecorded,
    ReviewDecided,
    UnsoldProduce,
    VisitProblem,
    VisitRecorded,
)
from services.monitoring.domain.procedure import Standing

NS = "shouwang.events."
RISK_ASSESSED = NS + "RiskAssessed"
ACTOR = "monitoring"
ASSESSMENT_NAMESPACE = uuid.UUID("5f1c2a8e-94d3-5b7a-8c6e-2d0f4b9a7e13")
DEAD_LETTER_NAMESPACE = uuid.UUID("c4e9b0d2-7a15-5e38-9f62-1b8d3c5a0e74")


class Untranslatable(ValueError):
    """A decoded record that does not make a domain event (a field the contract cannot catch)."""


def _common(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(r["event_id"]),
        "household_id": r["household_id"],
        "occurred_at": r["occurred_at"],
        "recorded_at": r["recorded_at"],
    }


def _check_members(m: dict[str, Any]) -> None:
    """Refuse member counts no household can have: Avro admits them, the rules would not."""
    problems = [f"members.{k} {v} < 0" for k, v in m.items() if isinstance(v, int) and v < 0]
    if not problems:
        if m["count"] < 1:
            problems.append(f"members.count {m['count']} < 1")
        if m["labour"] + m.get("weak_labour", 0) > m["count"]:
            problems.append("members.labour + members.weak_labour exceed members.count")
        for part in ("students", "disabled", "chronically_ill", "elderly"):
            if m[part] > m["count"]:
                problems.append(f"members.{part} exceeds members.count")
    if problems:
        raise Untranslatable("impossible household: " + "; ".join(problems))


def registry_from(r: dict[str, Any]) -> RegistryRecorded:
    m, base = r["members"], r.get("baseline_income")
    _check_members(m)
    return RegistryRecorded(
        **_common(r),
        change=r["change"],
        township=r["township"],
        village=r["village"],
        village_group=r["village_group"],
        registration=r["registration"],
        lifted_year=r.get("lifted_year"),
        members=Members(
            m["count"],
            m["labour"],
            m.get("weak_labour", 0),
            m["students"],
            m["disabled"],
            m["chronically_ill"],
            m["elderly"],
        ),
        head_birth_year=r.get("head_birth_year"),
        livelihood=r.get("main_livelihood", "MIXED"),
        minimum_living_allowance=r["minimum_living_allowance"],
        housing=r.get("housing", "UNKNOWN"),
        water=r.get("water", "UNKNOWN"),
        baseline_income=None
        if base is None
        else BaselineIncome(base["year"], base["per_capita_net_yuan"]),
        people=_people(m.get("people", ())),
    )  # personal data is never read


def _people(people: Any) -> tuple[Member, ...]:
    out = []
    for index, p in enumerate(people):
        if not 1 <= p["birth_month"] <= 12:
            raise Untranslatable(f"members.people[{index}].birth_month is not 1-12")
        out.append(
            Member(
                p["member_id"],
                p["relation"],
                p["birth_year"],
                p["birth_month"],
                p["sex"],
                p["labour"],
                p["health"],
                p.get("disability_grade"),
                p.get("schooling", "NONE"),
                p.get("migrant_work_months", 0),
            )
        )
    return tuple(out)


# A v1 report's amount was the hardship's whole cost: its cause says what the money went on.
EXPENSE_KIND_OF_CAUSE = {
    "ILLNESS": "MEDICAL",
    "DISABILITY": "MEDICAL",  # care and rehabilitation
    "SCHOOLING": "EDUCATION",
    "DISASTER": "DISASTER_LOSS",
    "ACCIDENT": "ACCIDENT",
}


def _checks(checks: dict[str, Any]) -> tuple:
    out = []
    for name in CHECKS:
        check = checks[name]
        note = check.get("note", "")
        # Checks are frozen values: the common note-less ones are shared, not built per visit.
        shared = None if note else _PLAIN.get(check["status"])
        if shared is None:
            shared = Check(check["status"], note)
            if not note:
                _PLAIN[check["status"]] = shared  # the schema's enum bounds the statuses
        out.append((name, shared))
    return tuple(out)


_PLAIN: dict[str, Check] = {}


def visit_from(r: dict[str, Any]) -> VisitRecorded:
    estimate, five = r.get("income_estimate"), r.get("five_visits")
    produce = five.get("unsold_produce") if five else None
    return VisitRecorded(
        **_common(r),
        visit_id=r["visit_id"],
        cadre_id=r["cadre_id"],
        checks=_checks(r["checks"]),
        income_per_capita_yuan=estimate["per_capita_yuan"] if estimate else None,
        income_method=estimate["method"] if estimate else None,
        living_environment=r.get("living_environment", "NOT_CHECKED"),
        policy_card=r.get("policy_card", "NOT_CHECKED"),
        hardship_causes=tuple(r.get("hardship_causes", ())),
        problems=tuple(
            VisitProblem(p["kind"], p["description"], p["fixed_on_spot"])
            for p in r.get("problems", ())
        ),
        five_visits=None
        if five is None
        else FiveVisits(
            five.get("members_seeking_work", 0),
            five.get("spring_farming_needs_help", False),
            None
            if produce is None
            else UnsoldProduce(
                produce["item"], produce["quantity"], produce["unit"], produce["value_yuan"]
            ),
            five.get("students_without_access", 0),
        ),
    )


def income_from(r: dict[str, Any]) -> IncomeUpdated:
    if r["period_end"] < r["period_start"]:
        raise Untranslatable(
            f"income period ends {r['period_end']} before it starts {r['period_start']}"
        )
    if r["members_counted"] < 1:
        raise Untranslatable(f"members_counted {r['members_counted']} < 1")
    return IncomeUpdated(
        **_common(r),
        period_start=r["period_start"],
        period_end=r["period_end"],
        members_counted=r["members_counted"],
        per_capita_net_yuan=r["per_capita_net_yuan"],
        origin=r.get("origin", "SURVEY"),
    )


def hardship_from(r: dict[str, Any]) -> HardshipReported:
    """A hardship report, v1 or v2, in v2's terms (an expense and a diagnosis).

    A v1 report (neither expense nor diagnosis) is read faithfully: an amount is an expense of
    the kind its cause names (ILLNESS → MEDICAL...). v1's ILLNESS or DISABILITY without an
    amount reported the condition itself (the rules then raised serious_illness / disability),
    so it is a diagnosis of that condition for a member it does not name: the reason keeps its
    code and takes the policy's weight, and it is not an expense.
    """
    expense, diagnosis = r.get("expense"), r.get("diagnosis")
    amount = expense["amount_yuan"] if expense is not None else r.get("rigid_expenditure_yuan", 0)
    if amount < 0:
        raise Untranslatable(f"negative rigid expenditure {amount}")
    cause = r.get("cause", "OTHER")
    if expense is None and amount > 0:  # v1, or a v2 writer that set only the old field
        expense = {"amount_yuan": amount, "kind": EXPENSE_KIND_OF_CAUSE.get(cause, "OTHER")}
    if diagnosis is None and r.get("expense") is None and amount == 0:
        condition = {"ILLNESS": "SERIOUS_ILLNESS", "DISABILITY": "DISABILITY"}.get(cause)
        if condition is not None:
            diagnosis = {"condition": condition}
    if diagnosis is not None:
        grade = diagnosis.get("disability_grade")
        if grade is not None and not 1 <= grade <= 4:
            raise Untranslatable(f"diagnosis.disability_grade {grade} is not 1-4")
    return HardshipReported(
        **_common(r),
        hardship_id=r["hardship_id"],
        cause=cause,
        rigid_expenditure_yuan=amount,
        origin=r.get("origin", "CADRE"),
        resolved=r.get("resolved", False),
        description=r.get("description", ""),
        expense=None if expense is None else Expense(amount, expense.get("kind", "OTHER")),
        diagnosis=None
        if diagnosis is None
        else Diagnosis(
            diagnosis.get("member_id"),
            diagnosis.get("member_index"),
            diagnosis["condition"],
            diagnosis.get("disability_grade"),
        ),
    )


def review_from(r: dict[str, Any]) -> ReviewDecided:
    return ReviewDecided(
        **_common(r),
        decision=r["decision"],
        category=r.get("category"),
        body=r["body"],
        approving_level=r["approving_level"],
        reason=r.get("reason", ""),
        outcome=r.get("outcome"),
        notice_start=r.get("notice_start"),
        notice_days=r.get("notice_days", 0),
        exception=r.get("exception", False),
    )


def measure_from(r: dict[str, Any]) -> MeasureStepRecorded:
    return MeasureStepRecorded(
        **_common(r),
        measure_id=r["measure_id"],
        step=r["step"],
        measure_type=r.get("measure_type", "OTHER"),
        catalogue_id=r["catalogue_id"],
        cadre_id=r.get("cadre_id"),
    )


def problem_from(r: dict[str, Any]) -> ProblemRecorded:
    return ProblemRecorded(
        **_common(r),
        problem_id=r["problem_id"],
        step=r["step"],
        kind=r.get("kind", "OTHER"),
        description=r.get("description", ""),
        responsible_cadre_id=r.get("responsible_cadre_id"),
        due_date=r.get("due_date"),
        visit_id=r.get("visit_id"),
    )


TRANSLATORS: dict[str, Callable[[dict[str, Any]], object]] = {
    NS + "HouseholdRegistryRecorded": registry_from,
    NS + "VisitRecorded": visit_from,
    NS + "IncomeUpdated": income_from,
    NS + "HardshipReported": hardship_from,
    NS + "ReviewDecided": review_from,
    NS + "MeasureStepRecorded": measure_from,
    NS + "ProblemRecorded": problem_from,
}


def event_from(event_type: str, record: dict[str, Any]) -> object:
    """The domain event for a decoded record; Untranslatable when it cannot be one."""
    full = event_type if event_type.startswith(NS) else NS + event_type
    translate = TRANSLATORS.get(full)
    if translate is None:
        raise Untranslatable(f"monitoring does not consume {full}")
    try:
        return translate(record)
    except (KeyError, TypeError) as exc:
        raise Untranslatable(f"{full}: {type(exc).__name__}: {exc}") from exc


def assessment_id(household_id: str, state_version: int, digest: str) -> uuid.UUID:
    """Deterministic id of an emitted assessment: a re-emit after a crash has the same id."""
    return uuid.uuid5(ASSESSMENT_NAMESPACE, f"{household_id}|{state_version}|{digest}")


def assessment_record(
    assessment: Assessment,
    state_version: int,
    recorded_at: datetime,
    chain_hash: str = "",
    event_id: str | None = None,
    digest: str | None = None,
) -> dict[str, Any]:
    """A RiskAssessed record; occurred_at is the assessment's as_of. `event_id` re-sends an
    assessment already emitted under its id; `digest` is `assessment.digest()` when the caller
    has it already."""
    a = assessment
    return {
        "event_id": uuid.UUID(event_id)
        if event_id
        else assessment_id(a.household_id, state_version, digest or a.digest()),
        "household_id": a.household_id,
        "occurred_at": a.as_of,
        "recorded_at": recorded_at,
        "source": "SERVICE",
        "actor": ACTOR,
        "as_of": a.as_of,
        "policy_version": a.policy_version,
        "category": a.category,
        "level": a.level,
        "workflow": a.workflow,
        "reasons": [
            {"code": r.code, "message": r.message, "event_ids": list(r.event_ids)}
            for r in a.reasons
        ],
        "overdue": list(a.overdue),
        "procedure": None if a.procedure is None else procedure_record(a.procedure),
        "exceptions": list(a.exceptions),
        "chain_hash": chain_hash,
    }


def procedure_record(p: Standing) -> dict[str, Any]:
    return {
        "direction": p.direction,
        "awaiting": p.awaiting,
        "since": p.since,
        "due": p.due,
        "notice_start": p.notice_start,
        "notice_ends": p.notice_ends,
        "objections": p.objections,
        "steps": list(p.steps),
    }


def procedure_from(record: dict[str, Any] | None) -> Standing | None:
    """An emitted record's procedure (None in v1 records and when none is under way)."""
    if record is None:
        return None
    return Standing(
        record["direction"],
        record["awaiting"],
        record["since"],
        record["due"],
        record.get("notice_start"),
        record.get("notice_ends"),
        record.get("objections", 0),
        tuple(record.get("steps", ())),
    )


def assessment_content(record: dict[str, Any]) -> tuple:
    """An emitted RiskAssessed record's content, as `Assessment.content()` gives it."""
    content = (
        record["policy_version"],
        record["category"],
        record["level"],
        record["workflow"],
        tuple((x["code"], x["message"], tuple(x["event_ids"])) for x in record["reasons"]),
        tuple(record["overdue"]),
    )
    procedure = procedure_from(record.get("procedure"))
    if procedure is not None:
        content += (procedure.content(),)
    exceptions = tuple(record.get("exceptions") or ())  # none in v1 and v2 records
    if exceptions:
        content += (("exceptions", exceptions),)
    return content
