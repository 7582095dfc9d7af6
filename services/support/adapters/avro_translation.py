"""The one place that translates contract records (codec dicts) to support's domain and back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.support.domain.following import Cancellation
from services.support.domain.matcher import Cadre, Need, Recommendation, Waiting
from services.support.domain.profile import (
    MeasureStepRecorded,
    Members,
    Person,
    RegistryRecorded,
    RiskAssessed,
)

STEP_NAMESPACE = uuid.UUID("0b8f4a57-2f36-5c1e-8a0f-7d3c9e41b6a2")
# Dead letters are built by the platform's worker skeleton, with support's actor and namespace.
DEAD_LETTER_NAMESPACE = uuid.UUID("7e2d1c90-5b4a-5f3e-9c1d-3a6b8e0f2c47")
MEASURE_STEP = "shouwang.events.MeasureStepRecorded"
ACTOR = "support"


def registry_from(record: dict[str, Any]) -> RegistryRecorded:
    m = record["members"]
    return RegistryRecorded(
        event_id=str(record["event_id"]),
        household_id=record["household_id"],
        occurred_at=record["occurred_at"],
        township=record["township"],
        village=record["village"],
        registration=record["registration"],
        members=Members(
            m["count"],
            m["labour"],
            m.get("weak_labour", 0),
            m["students"],
            m["disabled"],
            m["chronically_ill"],
            m["elderly"],
        ),
        head_birth_year=record.get("head_birth_year"),
        livelihood=record.get("main_livelihood", "MIXED"),
        minimum_living_allowance=record["minimum_living_allowance"],
        housing=record.get("housing", "UNKNOWN"),
        water=record.get("water", "UNKNOWN"),
        people=tuple(
            Person(
                p["member_id"],
                p["birth_year"],
                p["birth_month"],
                p["labour"],
                p["health"],
                p.get("schooling", "NONE"),
            )
            for p in m.get("people", ())
        ),
    )  # personal data is not read


def assessment_from(record: dict[str, Any]) -> RiskAssessed:
    return RiskAssessed(
        event_id=str(record["event_id"]),
        household_id=record["household_id"],
        as_of=record["as_of"],
        category=record.get("category"),
        level=record["level"],
        workflow=record["workflow"],
        reason_codes=tuple(r["code"] for r in record.get("reasons", [])),
        policy_version=record["policy_version"],
    )


def step_from(record: dict[str, Any]) -> MeasureStepRecorded:
    return MeasureStepRecorded(
        event_id=str(record["event_id"]),
        household_id=record["household_id"],
        occurred_at=record["occurred_at"],
        measure_id=record["measure_id"],
        step=record["step"],
        measure_type=record["measure_type"],
        catalogue_id=record["catalogue_id"],
        pool=record.get("pool"),
        cadre_id=record.get("cadre_id"),
        waiting_for=record.get("waiting_for"),
    )


def cadre_from(record: dict[str, Any]) -> Cadre:
    return Cadre(
        cadre_id=record["cadre_id"],
        township=record["township"],
        village=record.get("village"),
        department=record["department"],
        max_households=record["max_households"],
        active=record.get("active", True),
    )


def step_id(measure_id: str, variant: str) -> uuid.UUID:
    """Deterministic id of a step the service emits: a retry emits the same event id."""
    return uuid.uuid5(STEP_NAMESPACE, f"{measure_id}|{variant}")


def cancelled_record(cancellation: Cancellation, now: datetime) -> dict:
    """A CANCELLED MeasureStepRecorded for a measure support released because its household
    left the served states. Everything but `recorded_at` follows from the release, so a retried
    or replayed release records the same event (id `uuid5(measure id, cancelled)`)."""
    return {
        "event_id": step_id(cancellation.measure_id, "cancelled"),
        "household_id": cancellation.household_id,
        "occurred_at": cancellation.at,
        "recorded_at": now,
        "source": "SERVICE",
        "actor": ACTOR,
        "measure_id": cancellation.measure_id,
        "step": "CANCELLED",
        "measure_type": cancellation.measure_type,
        "catalogue_id": cancellation.catalogue_id,
        "pool": cancellation.pool,
        "cadre_id": None,
        "quantities": [],
        "amount_yuan": None,
        "term_months": None,
        "reasons": [cancellation.reason],
        "waiting_for": None,
        "note": "",
    }


def recommended_record(decision: Recommendation | Waiting | Need, now: datetime) -> dict:
    """A RECOMMENDED MeasureStepRecorded for an allocation, a waiting need or an unpooled need."""
    if isinstance(decision, Need):
        need, cadre_id, waiting_for = decision, None, None
    elif isinstance(decision, Recommendation):
        need, cadre_id, waiting_for = decision.need, decision.cadre_id, None
    else:
        need, cadre_id, waiting_for = decision.need, None, decision.pool
    reasons = [need.rule, *need.reasons]
    occurred_at = datetime.fromisoformat(need.triggered_at) if need.triggered_at else now
    if waiting_for:
        reasons.append(f"waiting for capacity in {waiting_for} (position {decision.position})")
    return {
        "event_id": step_id(need.measure_id, "waiting" if waiting_for else "allocated"),
        "household_id": need.household_id,
        "occurred_at": occurred_at,
        "recorded_at": now,
        "source": "SERVICE",
        "actor": ACTOR,
        "measure_id": need.measure_id,
        "step": "RECOMMENDED",
        "measure_type": need.measure_type,
        "catalogue_id": need.catalogue_id,
        "pool": need.pool,
        "cadre_id": cadre_id,
        "quantities": [
            {"item": q.item, "amount": q.amount, "unit": q.unit} for q in need.quantities
        ],
        "amount_yuan": need.amount_yuan,
        "term_months": need.term_months,
        "reasons": reasons,
        "waiting_for": waiting_for,
        "note": "",
    }
