"""Which problems a visit reports, and the id each one is known by on `household.problems`.

One rule for every reader (the monitoring fold, the read model's projector), so a
ProblemRecorded step about a problem found on a visit continues that problem wherever it is read:

- a problem found on a visit has id `<visit_id>/<KIND>`, and `<visit_id>/<KIND>/2`, `/3`, ...
  for a second and third problem of the same kind on that visit, in the order the visit lists
  them;
- the visit's `problems` list names problems first; then a check reported PROBLEM, a policy card
  MISSING or OUTDATED and a DIRTY home each open a problem of their kind when the list does not
  name that kind already (a cadre who ticks "housing: problem" has found a housing problem,
  whether or not the field app made them type it out again);
- a later visit that finds a matter secured (a check SECURED, the card POSTED, a CLEAN or UNTIDY
  home: `secured_kinds`) closes the open problems of that kind found before it.

Why the visit's `visit_id` and not its `event_id`: the field app corrects a visit by sending it
again with the same `visit_id` (and a new event id); keyed by the event id, every correction
would open the same problems a second time. A redelivered or replayed visit carries both ids
unchanged, so either key makes it idempotent; only the visit id also survives corrections, and
it is the id a cadre can see in the app when recording the fix (DOMAIN.md: problems are fixed as
they are found, 边发现边整改, and closed on the problem list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CHECK_ITEMS = ("food", "clothing", "education", "medical", "housing", "water")
CARD_PROBLEMS = ("MISSING", "OUTDATED")
ENVIRONMENT_PROBLEMS = ("DIRTY",)
SECURED_ENVIRONMENTS = ("CLEAN", "UNTIDY")


@dataclass(frozen=True, slots=True)
class VisitFinding:
    """One problem a visit reports: its id, kind (a ProblemKind symbol) and whether the cadre
    fixed it during the visit."""

    problem_id: str
    kind: str
    fixed_on_spot: bool


def visit_problem_id(visit_id: str, kind: str, nth: int) -> str:
    """The id of the `nth` (1-based) problem of `kind` found on visit `visit_id`."""
    return f"{visit_id}/{kind}" + (f"/{nth}" if nth > 1 else "")


def visit_findings(
    visit_id: str,
    listed: Iterable[tuple[str, bool]],
    check_statuses: Mapping[str, str],
    policy_card: str,
    living_environment: str,
) -> list[VisitFinding]:
    """The problems a visit reports, in order: `listed` is the visit's problem list as
    (kind, fixed_on_spot) pairs; `check_statuses` maps each check item to SECURED, PROBLEM or
    NOT_CHECKED."""
    found = list(listed)
    named = {kind for kind, _ in found}
    implied = [item.upper() for item in CHECK_ITEMS if check_statuses.get(item) == "PROBLEM"]
    if policy_card in CARD_PROBLEMS:
        implied.append("POLICY_CARD")
    if living_environment in ENVIRONMENT_PROBLEMS:
        implied.append("LIVING_ENVIRONMENT")
    found += [(kind, False) for kind in implied if kind not in named]
    counts: dict[str, int] = {}
    findings = []
    for kind, fixed in found:
        counts[kind] = counts.get(kind, 0) + 1
        findings.append(VisitFinding(visit_problem_id(visit_id, kind, counts[kind]), kind, fixed))
    return findings


def secured_kinds(
    check_statuses: Mapping[str, str], policy_card: str, living_environment: str
) -> list[str]:
    """The kinds (ProblemKind symbols) a visit found secured: a later visit finding a matter
    secured closes the household's open problems of that kind found before it."""
    kinds = [item.upper() for item in CHECK_ITEMS if check_statuses.get(item) == "SECURED"]
    if policy_card == "POSTED":
        kinds.append("POLICY_CARD")
    if living_environment in SECURED_ENVIRONMENTS:
        kinds.append("LIVING_ENVIRONMENT")
    return kinds


def record_secured(record: Mapping) -> list[str]:
    """`secured_kinds` of a decoded VisitRecorded record."""
    checks = record["checks"]
    return secured_kinds(
        {item: checks[item]["status"] for item in CHECK_ITEMS},
        record["policy_card"],
        record["living_environment"],
    )


def record_findings(record: Mapping) -> list[VisitFinding]:
    """`visit_findings` of a decoded VisitRecorded record (as the codec returns it)."""
    checks = record["checks"]
    return visit_findings(
        record["visit_id"],
        [(p["kind"], p["fixed_on_spot"]) for p in record["problems"]],
        {item: checks[item]["status"] for item in CHECK_ITEMS},
        record["policy_card"],
        record["living_environment"],
    )
