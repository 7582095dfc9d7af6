"""Policy succession: the version a policy succeeds and how each of its categories carries over.

`parse_succession` reads a policy file's `[succeeds]`; `succession_problems` checks a book of
versions (every predecessor category has a fallback, versions follow each other without a gap),
so no household in the workflow can be dropped when a successor takes over
(`workflow.carry_over` applies it).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.contract.vocabulary import symbols
from services.monitoring.domain.income_lines import whole
from services.monitoring.domain.reasons import RISK_CODES

CATEGORIES = symbols("Category")


@dataclass(frozen=True, slots=True)
class CarryOver:
    """How a household monitored in the predecessor's `source` category carries over: into
    `target` when one of `reasons` holds on the effective date (empty: always), with a
    re-review due `rereview_days` after it (None: none)."""

    source: str
    target: str
    reasons: tuple[str, ...] = ()
    rereview_days: int | None = None


@dataclass(frozen=True, slots=True)
class Succession:
    """The policy a version succeeds and the carry-over of each of its categories, in order
    (per source category the first whose reasons hold; the last of each is unconditional)."""

    policy_id: str
    carry_over: tuple[CarryOver, ...]

    def rule_for(self, category: str, codes: Iterable[str]) -> CarryOver | None:
        present = set(codes)
        for rule in self.carry_over:
            if rule.source == category and (not rule.reasons or present.intersection(rule.reasons)):
                return rule
        return None


CARRY_KEYS = ("from", "to", "reasons", "rereview_days")


def parse_succession(
    table: Any, targets: set[str], problems: list[tuple[str, str]]
) -> Succession | None:
    """`[succeeds]`: `policy` (the predecessor's id) and `[[succeeds.categories]]` (`from`,
    `to`, optional `reasons`, `rereview_days`); the predecessor's side is checked by book_of."""
    if table is None:
        return None
    if not isinstance(table, dict):
        return None  # "expected a table", reported with the sections
    policy_id = table.get("policy")
    if not isinstance(policy_id, str) or not policy_id:
        problems.append(("succeeds.policy", f"expected a policy id, got {policy_id!r}"))
    rules: list[CarryOver] = []
    entries = table.get("categories")
    if not isinstance(entries, list) or not entries:
        problems.append(("succeeds.categories", "expected one [[succeeds.categories]] or more"))
        entries = []
    for i, entry in enumerate(entries):
        where = f"succeeds.categories[{i}]"
        if not isinstance(entry, dict):
            problems.append((where, "expected a table"))
            continue
        problems += [(f"{where}.{k}", "unknown key") for k in entry if k not in CARRY_KEYS]
        source, target = entry.get("from"), entry.get("to")
        reasons, days = entry.get("reasons", []), entry.get("rereview_days")
        if source not in CATEGORIES:
            problems.append((f"{where}.from", f"{source!r} is not one of {CATEGORIES}"))
        if target not in targets:
            problems.append((f"{where}.to", f"{target!r} is not one of this policy's categories"))
        if not isinstance(reasons, list) or any(r not in RISK_CODES for r in reasons):
            problems.append((f"{where}.reasons", f"expected reason codes, got {reasons!r}"))
            reasons = []
        if days is not None and not whole(days, 1):
            problems.append((f"{where}.rereview_days", f"expected days ≥ 1, got {days!r}"))
            days = None
        rules.append(CarryOver(str(source), str(target), tuple(reasons), days))
    return Succession(policy_id if isinstance(policy_id, str) else "", tuple(rules))


def succession_problems(ordered: list[Any]) -> list[tuple[str, str]]:
    """A version that follows another must name it and carry over each of its categories, so
    no household in the workflow is dropped when the new version takes over. `ordered`: the
    book's `policy.Policy` versions by effective date (this module does not import it: policy
    imports this one)."""
    problems: list[tuple[str, str]] = []
    by_id = {p.id: p for p in ordered}
    successors: dict[str, str] = {}
    for earlier, later in itertools.pairwise(ordered):
        if earlier.effective_until == later.effective_from and (
            later.succeeds is None or later.succeeds.policy_id != earlier.id
        ):
            problems.append(
                (f"{later.id}: succeeds", f"follows {earlier.id} on {later.effective_from}: "
                 f"name it and how its categories carry over")
            )  # fmt: skip
    for policy in ordered:
        succession = policy.succeeds
        if succession is None:
            continue
        where = f"{policy.id}: succeeds"
        before = by_id.get(succession.policy_id)
        if before is None:
            problems.append((f"{where}.policy", f"no policy {succession.policy_id!r}"))
            continue
        if succession.policy_id in successors:
            problems.append(
                (f"{where}.policy", f"{successors[succession.policy_id]} succeeds it already")
            )
        successors[succession.policy_id] = policy.id
        if before.effective_until != policy.effective_from:
            problems.append(
                (f"{where}.policy", f"{before.id} must end (effective_until) on "
                 f"{policy.effective_from}, when {policy.id} takes over")
            )  # fmt: skip
        theirs = [c.category for c in before.categories]
        for rule in succession.carry_over:
            if rule.source not in theirs:
                problems.append(
                    (f"{where}.categories", f"{rule.source!r} is not one of {before.id}'s")
                )
        for category in theirs:
            rules = [r for r in succession.carry_over if r.source == category]
            if not rules or rules[-1].reasons:
                problems.append(
                    (f"{where}.categories", f"{category} needs an unconditional carry-over "
                     "(the last entry for it without `reasons`)")
                )  # fmt: skip
    return problems
