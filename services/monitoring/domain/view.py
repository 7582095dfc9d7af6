"""The household view: state, assessment with reasons and event ids, problems and workflow.

`household_document` is a pure function (JSON-ready dict); the faust app serves it at
`GET /v1/households/{household_id}` from the worker that owns the household's partition.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.contract.members import age_on
from services.monitoring.domain.assess import Assessment, problem_due
from services.monitoring.domain.composition import composition_of
from services.monitoring.domain.facts import (
    checks_at,
    hardships_at,
    measures_at,
    registry_at,
    visits_at,
)
from services.monitoring.domain.policy import Policy
from services.monitoring.domain.procedure import Standing
from services.monitoring.domain.state import HouseholdState


def _counts(members: Any) -> dict[str, int]:
    return {k: getattr(members, k) for k in members.__slots__}


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def household_document(state: HouseholdState, assessment: Assessment, policy: Policy) -> dict:
    at = assessment.as_of
    registry = registry_at(state, at)
    visits = visits_at(state, at)
    a = assessment
    document: dict[str, Any] = {
        "household_id": state.household_id,
        "state_version": state.version,
        "events": state.event_count(),
        "registry": None
        if registry is None
        else {
            "township": registry.township,
            "village": registry.village,
            "village_group": registry.village_group,
            "registration": registry.registration,
            "lifted_year": registry.lifted_year,
            "members": {k: getattr(registry.members, k) for k in registry.members.__slots__},
            # with a member list: the counts the rules read on the assessment's date, and the
            # members (no names or ID numbers: those stay sealed), each with its age then
            "members_on_date": _counts(composition_of(registry, at.date())),
            "people": [
                {
                    **{k: getattr(p, k) for k in p.__slots__},
                    "age": age_on(p.birth_year, p.birth_month, at.date()),
                }
                for p in registry.people
            ],
            "livelihood": registry.livelihood,
            "minimum_living_allowance": registry.minimum_living_allowance,
            "event_id": registry.event_id,
            "occurred_at": _iso(registry.occurred_at),
        },
        "assessment": {
            "as_of": _iso(a.as_of),
            "policy_version": a.policy_version,
            "category": a.category,
            "level": a.level,
            "score": a.score,
            "reasons": [
                {
                    "code": r.code,
                    "message": r.message,
                    "event_ids": list(r.event_ids),
                    "since": _iso(r.since),
                }
                for r in a.reasons
            ],
            "overdue": list(a.overdue),
            "digest": a.digest(),
        },
        "workflow": {
            "status": a.workflow,
            "flagged_at": _iso(a.flagged_at),
            "included_at": _iso(a.included_at),
            "decision_due": _iso(a.decision_due),
            "next_visit_due": _iso(a.next_visit_due),
            "last_visit_at": _iso(visits[-1].occurred_at) if visits else None,
            "procedure": None if a.procedure is None else _procedure(a.procedure),
            # Every review decision folded by the assessment's date, in canonical order, taken
            # or refused: the visits door tells from them whether the view has seen the
            # decisions it accepted and whether a new one comes after all of them.
            "decisions": [
                {"event_id": d.event_id, "decision": d.decision, "occurred_at": _iso(d.occurred_at)}
                for d in state.decisions
                if d.occurred_at <= at
            ],
            "elimination": None
            if a.elimination is None
            else {
                "allowed": a.elimination.allowed,
                "unmet": [{"code": c, "message": m} for c, m in a.elimination.unmet],
            },
        },
        "open_problems": [
            {
                "problem_id": p.problem_id,
                "kind": p.kind,
                "description": p.description,
                "found_at": _iso(p.found_at),
                "responsible_cadre_id": p.responsible_cadre_id,
                "due_date": _iso(problem_due(p, policy)),
                "overdue": at.date() > problem_due(p, policy),
                "event_ids": list(p.event_ids),
            }
            for p in a.open_problems
        ],
        "checks": {
            name: None
            if c is None
            else {
                "status": c.status,
                "note": c.note,
                "event_id": c.event_id,
                "checked_at": _iso(c.occurred_at),
            }
            for name, c in checks_at(state, at).items()
        },
        "hardships": [
            {
                "hardship_id": h.hardship_id,
                "cause": h.cause,
                "rigid_expenditure_yuan": h.rigid_expenditure_yuan,
                "resolved": h.resolved,
                "event_ids": list(h.event_ids),
            }
            for h in hardships_at(state, at).values()
        ],
        "measures": [
            {
                "measure_id": m.measure_id,
                "measure_type": m.measure_type,
                "catalogue_id": m.catalogue_id,
                "step": m.step,
                "active": m.active,
                "received_at": _iso(m.received_at),
            }
            for m in measures_at(state, at).values()
        ],
    }
    return document


def _procedure(p: Standing) -> dict:
    return {
        "direction": p.direction,
        "awaiting": p.awaiting,
        "since": _iso(p.since),
        "due": _iso(p.due),
        "notice_start": _iso(p.notice_start),
        "notice_ends": _iso(p.notice_ends),
        "objections": p.objections,
        "steps": list(p.steps),
    }
