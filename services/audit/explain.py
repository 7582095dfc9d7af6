"""Explain, pure: a household as of a date ("what was true"), optionally limited to what the
system had been told by another date ("what it knew": events recorded by then), with every
reason's events, the measures and their steps, the review decisions and the policy version."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Any

from services.audit.replay import EventNote
from services.monitoring.domain.assess import remembering
from services.monitoring.domain.fold import evolve
from services.monitoring.domain.policy import PolicyBook
from services.monitoring.domain.state import empty
from services.monitoring.domain.view import household_document
from services.monitoring.service import policy_for


def moment(text: str) -> datetime:
    """A command-line date: a bare date means the end of that day (UTC); a datetime without a
    zone is UTC."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time.max, UTC)
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO date or datetime") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def _note(notes: dict[str, EventNote], event_id: str) -> dict[str, Any]:
    n = notes.get(event_id)
    if n is None:
        return {"event_id": event_id, "type": None}
    return {
        "event_id": event_id,
        "type": n.event_type,
        "occurred_at": _iso(n.occurred_at),
        "recorded_at": _iso(n.recorded_at),
        "actor": n.actor,
        "source": n.source,
        "position": f"{n.topic}[{n.partition}]@{n.offset}",
    }


def explain(
    household_id: str,
    events: Iterable[Any],
    notes: dict[str, EventNote],
    policies: PolicyBook,
    as_of: datetime,
    known_at: datetime | None = None,
    pinned_policy: str | None = None,
) -> dict[str, Any]:
    """The explanation document (JSON-ready). `events` are the household's domain events."""
    known = [e for e in events if known_at is None or e.recorded_at <= known_at]
    state = empty(household_id)
    for event in known:
        state = evolve(state, event)
    policy = policy_for(policies, pinned_policy, as_of)
    assessment, state = remembering(state, policy, as_of)  # the document reads the same views
    document = household_document(state, assessment, policy)
    document["as_of"] = _iso(as_of)
    document["known_at"] = _iso(known_at)
    document["events_known"] = len(known)
    # Events that had happened by as_of but reached the system after known_at (late syncs).
    document["events_not_yet_known"] = sum(
        1
        for e in events
        if known_at is not None and e.occurred_at <= as_of and e.recorded_at > known_at
    )
    for reason in document["assessment"]["reasons"]:
        reason["events"] = [_note(notes, i) for i in reason["event_ids"]]
    steps_by_measure: dict[str, list] = {}
    for step in state.measures:
        if step.occurred_at <= as_of:
            steps_by_measure.setdefault(step.measure_id, []).append(step)
    for measure in document["measures"]:
        measure["steps"] = [
            {"step": s.step, **_note(notes, s.event_id), "cadre_id": s.cadre_id}
            for s in steps_by_measure.get(measure["measure_id"], [])
        ]
    document["decisions"] = [
        {
            "decision": d.decision,
            "category": d.category,
            "body": d.body,
            "approving_level": d.approving_level,
            "outcome": d.outcome,
            "notice_start": _iso(d.notice_start),
            "notice_days": d.notice_days,
            "exception": d.exception,
            "reason": d.reason,
            **_note(notes, d.event_id),
        }
        for d in state.decisions
        if d.occurred_at <= as_of
    ]
    return document


def render(document: dict[str, Any]) -> str:
    """Readable text for a person."""
    a, w = document["assessment"], document["workflow"]
    lines = [
        f"household {document['household_id']}",
        f"  as of {document['as_of']}"
        + (f", as known at {document['known_at']}" if document["known_at"] else ""),
        f"  events known: {document['events_known']}"
        + (
            f" ({document['events_not_yet_known']} that had happened were recorded later)"
            if document["events_not_yet_known"]
            else ""
        ),
    ]
    reg = document["registry"]
    if reg:
        lines.append(
            f"  registry: {reg['township']} {reg['village']} {reg['village_group']}, "
            f"{reg['registration']}, {reg['members']['count']} members, "
            f"{reg['members']['labour']} with labour"
        )
    lines += [
        f"  policy: {a['policy_version']}",
        f"  workflow: {w['status']}"
        + "".join(
            f", {k} {w[k]}"
            for k in ("flagged_at", "included_at", "decision_due", "next_visit_due")
            if w.get(k)
        ),
        f"  assessment: level {a['level']} (score {a['score']}), category {a['category'] or '-'}"
        + (f", overdue: {', '.join(a['overdue'])}" if a["overdue"] else ""),
        "  reasons:" if a["reasons"] else "  reasons: none",
    ]
    procedure = w.get("procedure")
    for r in a["reasons"]:
        lines.append(f"    - {r['code']}: {r['message']}")
        for e in r["events"]:
            lines.append("        " + _event_line(e))
    if procedure:
        lines += _procedure_lines(procedure, document["decisions"])
    if document["decisions"]:
        lines.append("  decisions:")
        for d in document["decisions"]:
            lines.append(
                f"    - {d['decision']} {_decision_detail(d)}by {d['body']} "
                f"({d['approving_level']}): " + _event_line(d)
            )
    lines.append("  measures:" if document["measures"] else "  measures: none")
    for m in document["measures"]:
        lines.append(
            f"    - {m['measure_id']} {m['measure_type']} ({m['catalogue_id']}): {m['step']}"
        )
        for s in m["steps"]:
            lines.append(f"        {s['step']}: " + _event_line(s))
    if document["open_problems"]:
        lines.append("  open problems:")
        for p in document["open_problems"]:
            lines.append(f"    - {p['kind']}: {p['description']} (due {p['due_date']})")
    return "\n".join(lines)


def _event_line(e: dict[str, Any]) -> str:
    if e.get("type") is None:
        return f"{e['event_id']} (not in the log read)"
    return (
        f"{e['type']} {e['event_id']}: occurred {e['occurred_at']}, recorded by "
        f"{e['actor'] or '?'} ({e['source']}), arrived {e['recorded_at']} at {e['position']}"
    )


def _decision_detail(d: dict[str, Any]) -> str:
    parts = [d["category"] or "", d.get("outcome") or ""]
    if d.get("notice_start"):
        parts.append(f"notice from {d['notice_start']} for {d['notice_days']} days")
    if d.get("exception"):
        parts.append("as an exception")
    if d.get("reason") and (d.get("exception") or d["decision"] == "OBJECTION"):
        parts.append(f"({d['reason']})")
    text = " ".join(p for p in parts if p)
    return text + " " if text else ""


def _procedure_lines(p: dict[str, Any], decisions: list[dict[str, Any]]) -> list[str]:
    """The cycle's procedure: where it stands, then its steps in order."""
    head = (
        f"  procedure ({p['direction'].lower()}): awaiting {p['awaiting']} since {p['since']}, "
        f"due {p['due']}"
    )
    if p["notice_start"]:
        head += f"; notice {p['notice_start']} to {p['notice_ends']}"
    if p["objections"]:
        head += f"; {p['objections']} objection(s)"
    by_id = {d["event_id"]: d for d in decisions}
    lines = [head]
    for event_id in p["steps"]:
        d = by_id.get(event_id)
        if d is not None:
            lines.append(f"    {d['decision']} {_decision_detail(d)}: " + _event_line(d))
    return lines
