"""A household's own application (农户自主申报) as a village service point takes it, pure: the
body of `POST /v1/applications` and the ReviewDecided APPLY it becomes.

The service point says which household applies, when, and what the household says; the rest of
the decision is fixed (decision APPLY, body and approving_level VILLAGE, no category or notice),
so a service point's token cannot word a decision of another kind. The record then goes through
the same checks as any review decision (contract, township and village scope, level).
"""

from __future__ import annotations

from typing import Any

APPLICATION_FIELDS = ("event_id", "household_id", "occurred_at", "reason")
REQUIRED = ("event_id", "household_id", "occurred_at", "reason")


def application_problems(body: Any) -> list[tuple[str, str]]:
    """(field, problem) for each way `body` is not an application (types are the contract's,
    checked once it is a review decision)."""
    if not isinstance(body, dict):
        return [("", "an application is a JSON object")]
    problems = [(name, "unknown field") for name in body if name not in APPLICATION_FIELDS]
    problems += [(name, "required") for name in REQUIRED if name not in body]
    reason = body.get("reason")
    if "reason" in body and (not isinstance(reason, str) or not reason.strip()):
        problems.append(("reason", "say what the household applies for (e.g. 因病支出大)"))
    return problems


def application_decision(body: dict[str, Any]) -> dict[str, Any]:
    """The ReviewDecided body an application stands for."""
    return {
        "event_id": body["event_id"],
        "household_id": body["household_id"],
        "occurred_at": body["occurred_at"],
        "decision": "APPLY",
        "category": None,
        "body": "VILLAGE",
        "approving_level": "VILLAGE",
        "notice_start": None,
        "notice_days": 0,
        "reason": body["reason"],
    }
