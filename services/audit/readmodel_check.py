"""The read model against the log, pure: the households rows and assessment ids the log implies,
and their differences from what PostgreSQL holds (`replay --verify`).
"""

from __future__ import annotations

from typing import Any

from services.audit.replay import FAR_FUTURE, Derived, Difference, Replay
from services.monitoring.domain.facts import registry_at, visits_at


def expected_rows(replay: Replay, derived: list[Derived], township: str | None = None) -> dict:
    """What the read model's households row and assessment ids should be, from the log."""
    latest: dict[str, Derived] = {}
    ids: dict[str, set[str]] = {}
    for d in derived:
        hid = d.assessment.household_id
        ids.setdefault(hid, set()).add(d.event_id)
        # The projector keeps the assessment with the latest as_of (later records win ties).
        if hid not in latest or d.assessment.as_of >= latest[hid].assessment.as_of:
            latest[hid] = d
    rows = {}
    for log in replay.selected(township):
        hid = log.household_id
        row: dict[str, Any] = {}
        registry = registry_at(log.state, FAR_FUTURE)
        if registry is not None:
            row.update(
                township=registry.township,
                village=registry.village,
                grp=registry.village_group,
                registration_status=registry.registration.lower(),
                members=registry.members.count,
                labourers=registry.members.labour,
            )
        visits = visits_at(log.state, FAR_FUTURE)
        if visits:
            row["last_visit_at"] = max(v.occurred_at for v in visits)
        d = latest.get(hid)
        if d is not None:
            a = d.assessment
            row.update(
                category=a.category,
                level=a.level,
                workflow_status=a.workflow.lower(),
                policy_version=a.policy_version,
                overdue=list(a.overdue),
                reasons=[[x.code, list(x.event_ids)] for x in a.reasons],
            )
        rows[hid] = (row, ids.get(hid, set()))
    return rows


def compare_readmodel(
    expected: dict[str, tuple[dict[str, Any], set[str]]],
    found_rows: dict[str, dict[str, Any]],
    found_ids: dict[str, set[str]],
) -> list[Difference]:
    differences = []
    for hid, (row, ids) in sorted(expected.items()):
        if not row and not ids:
            continue
        found = found_rows.get(hid)
        if found is None:
            differences.append(Difference(hid, "households row", "present", "missing"))
        else:
            for name, value in row.items():
                if found.get(name) != value:
                    differences.append(Difference(hid, name, value, found.get(name)))
        have = found_ids.get(hid, set())
        for missing in sorted(ids - have):
            differences.append(Difference(hid, "assessments row", missing, "missing"))
        for extra in sorted(have - ids):
            differences.append(Difference(hid, "assessments row", "absent", extra))
    return differences
