"""The review workflow: decisions replayed in canonical order, and the elimination conditions.

Rules flag, people decide: every decision is applied as recorded. One the workflow cannot take
(e.g. REJECT of a monitored household) is kept as an exception and changes nothing; one the
policy forbids (ELIMINATE before the conditions hold) takes effect and is kept as a policy
exception with the unmet conditions, so the decision is visible and answerable.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

from services.monitoring.domain.events import ReviewDecided
from services.monitoring.domain.facts import incomes_at, labour_of, measures_at, registry_at
from services.monitoring.domain.policy import Policy
from services.monitoring.domain.reasons import INVALID_TRANSITION, POLICY_EXCEPTION
from services.monitoring.domain.rules import risk_reasons
from services.monitoring.domain.state import LIMITS, HouseholdState, writable

OPEN_STAGES = ("NONE", "REJECTED", "ELIMINATED")  # not under review or monitoring


@dataclass(frozen=True, slots=True)
class Irregularity:
    """A decision kept on record that broke the workflow or the policy."""

    code: str  # reasons.WORKFLOW_CODES
    message: str
    event_id: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Stage:
    """Where the decisions have put the household (FLAGGED is the rules' part, see assess)."""

    status: str = (
        "NONE"  # NONE | VERIFYING | MONITORED | ELIMINATION_PROPOSED | ELIMINATED | REJECTED
    )
    category: str | None = None
    since: datetime | None = None
    included_at: datetime | None = None
    verification_started_at: datetime | None = None
    closed_at: datetime | None = None  # last REJECT or ELIMINATE
    exceptions: tuple[Irregularity, ...] = ()  # of the current cycle
    decision_ids: tuple[str, ...] = ()  # of the current cycle


@dataclass(frozen=True, slots=True)
class EliminationCheck:
    allowed: bool
    unmet: tuple[tuple[str, str], ...]  # (condition code, explanation)
    event_ids: tuple[str, ...]  # the incomes and measures the check relied on


def add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def stage_at(state: HouseholdState, policy: Policy, at: datetime) -> Stage:
    """Replay the decisions that occurred by `at` in canonical order."""
    decisions = state.decisions
    count = len(decisions)
    if count and decisions[-1].occurred_at > at:
        count = next(i for i, d in enumerate(decisions) if d.occurred_at > at)
    if count == 0:
        return NO_DECISIONS
    if state.views is None:
        return _stage(state, policy, count)
    # The stage depends on the decisions by `at` alone, except that proposing or eliminating
    # checks the conditions as of that decision, which reads every kind of event.
    reads_all = any(d.decision in _CHECKING for d in decisions[:count])
    key = (count, decisions, policy, *(_ALL(state) if reads_all else ()))
    hit = state.views.get("stage")
    if hit is not None and hit[0] == key:
        return hit[1]
    stage = _stage(state, policy, count)
    if writable(state.views):  # remembered only in `assess.remembering`'s own state
        state.views["stage"] = (key, stage)
    return stage


_ALL = attrgetter(*LIMITS)
NO_DECISIONS = Stage()  # immutable, so shared
_CHECKING = ("PROPOSE_ELIMINATION", "ELIMINATE")


def _stage(state: HouseholdState, policy: Policy, count: int) -> Stage:
    stage = Stage()
    for decision in state.decisions[:count]:
        stage = _decide(stage, decision, state, policy)
    return stage


def _decide(stage: Stage, d: ReviewDecided, state: HouseholdState, policy: Policy) -> Stage:
    new_cycle = stage.status in ("NONE", "REJECTED", "ELIMINATED")
    exceptions = () if new_cycle else stage.exceptions
    ids = (d.event_id,) if new_cycle else (*stage.decision_ids, d.event_id)
    base = Stage(
        stage.status,
        stage.category,
        stage.since,
        stage.included_at,
        stage.verification_started_at,
        stage.closed_at,
        exceptions,
        ids,
    )

    def invalid(why: str) -> Stage:
        # A refused decision does not open a new cycle: keep the old one's record.
        return Stage(
            stage.status,
            stage.category,
            stage.since,
            stage.included_at,
            stage.verification_started_at,
            stage.closed_at,
            (
                *stage.exceptions,
                Irregularity(
                    INVALID_TRANSITION,
                    f"{d.decision} by {d.body.lower()} ignored: {why}",
                    d.event_id,
                    d.occurred_at,
                ),
            ),
            (*stage.decision_ids, d.event_id),
        )

    def to(status: str, **changes) -> Stage:
        fields = {f: getattr(base, f) for f in Stage.__slots__}
        fields.update({"status": status, "since": d.occurred_at, **changes})
        return Stage(**fields)

    if d.decision == "START_VERIFICATION":
        if stage.status not in (*OPEN_STAGES, "VERIFYING"):
            return invalid(f"household is {stage.status.lower()}")
        if stage.status == "VERIFYING":
            return base
        return to(
            "VERIFYING", verification_started_at=d.occurred_at, category=None, included_at=None
        )
    if d.decision == "INCLUDE":
        if d.category is None or d.category not in {c.category for c in policy.categories}:
            return invalid(f"category {d.category!r} is not one of {policy.id}'s")
        if stage.status in ("MONITORED", "ELIMINATION_PROPOSED"):
            return to("MONITORED", category=d.category, since=stage.since)  # recategorised
        return to("MONITORED", category=d.category, included_at=d.occurred_at)
    if d.decision == "REJECT":
        if stage.status not in ("NONE", "VERIFYING", "REJECTED", "ELIMINATED"):
            return invalid(f"a {stage.status.lower()} household leaves by elimination")
        return to("REJECTED", category=None, closed_at=d.occurred_at)
    if d.decision == "PROPOSE_ELIMINATION":
        if stage.status != "MONITORED":
            return invalid(f"household is {stage.status.lower()}, not monitored")
        check = elimination_check(state, policy, d.occurred_at, stage.included_at)
        return _with_policy_exceptions(to("ELIMINATION_PROPOSED"), check, d)
    if d.decision == "ELIMINATE":
        if stage.status not in ("MONITORED", "ELIMINATION_PROPOSED"):
            return invalid(f"household is {stage.status.lower()}, not monitored")
        check = elimination_check(state, policy, d.occurred_at, stage.included_at)
        return _with_policy_exceptions(to("ELIMINATED", closed_at=d.occurred_at), check, d)
    if d.decision == "KEEP_MONITORING":
        if stage.status not in ("MONITORED", "ELIMINATION_PROPOSED"):
            return invalid(f"household is {stage.status.lower()}, not monitored")
        return to("MONITORED", since=stage.since if stage.status == "MONITORED" else d.occurred_at)
    return invalid(f"unknown decision {d.decision}")


def _with_policy_exceptions(stage: Stage, check: EliminationCheck, d: ReviewDecided) -> Stage:
    if check.allowed:
        return stage
    unmet = "; ".join(text for _, text in check.unmet)
    exception = Irregularity(
        POLICY_EXCEPTION,
        f"{d.decision} by {d.body.lower()} on {d.occurred_at.date()} although "
        f"the policy's conditions do not hold: {unmet}",
        d.event_id,
        d.occurred_at,
    )
    fields = {f: getattr(stage, f) for f in Stage.__slots__}
    fields["exceptions"] = (*stage.exceptions, exception)
    return Stage(**fields)


def elimination_check(
    state: HouseholdState, policy: Policy, at: datetime, included_at: datetime | None
) -> EliminationCheck:
    """Whether the policy allows eliminating the household's risk at `at`, and what is unmet."""
    rules = policy.elimination
    unmet: list[tuple[str, str]] = []
    used: list[str] = []
    line = policy.income_line_yuan
    incomes = incomes_at(state, at)
    stable_from = add_months(at, -rules.stable_months).date()
    run = []
    for observation in reversed(incomes):
        if observation.per_capita_yuan < line:
            break
        run.append(observation)
    used += [o.event_id for o in run]
    if not run:
        unmet.append(
            (
                "income_not_above_line",
                f"latest per-capita income is not above the {line}-yuan line"
                if incomes
                else "no income figure on record",
            )
        )
    elif run[-1].period_start > stable_from:
        unmet.append(
            (
                "income_not_stable",
                f"income above the line only since {run[-1].period_start.isoformat()}, "
                f"less than {rules.stable_months} months",
            )
        )
    reasons = {r.code: r for r in risk_reasons(state, policy, at)}
    if "rigid_expenditure" in reasons:
        unmet.append(("expenditure_unresolved", "rigid expenditure shock not resolved"))
    open_checks = sorted(code for code in reasons if code.startswith("guarantee_"))
    if open_checks:
        unmet.append(
            (
                "guarantees_not_secured",
                "open problems on " + ", ".join(c.removeprefix("guarantee_") for c in open_checks),
            )
        )
    if included_at is None or add_months(included_at, rules.min_monitored_months) > at:
        since = included_at.date().isoformat() if included_at else "never"
        unmet.append(
            (
                "monitored_too_short",
                f"monitored since {since}, less than {rules.min_monitored_months} months",
            )
        )
    received = [
        m
        for m in measures_at(state, at).values()
        if m.received_at is not None and m.step != "CANCELLED"
    ]
    used += [m.event_ids[-1] for m in received]
    if len(received) < rules.min_measures:
        unmet.append(
            (
                "too_few_measures",
                f"{len(received)} measure(s) received, at least {rules.min_measures} needed",
            )
        )
    labour = labour_of(registry_at(state, at), rules.count_weak_labour)
    if rules.require_labour and not labour:
        unmet.append(
            (
                "no_working_age_labour",
                "no working-age labour: households without labour are not eliminated"
                if labour == 0
                else "household composition unknown",
            )
        )
    return EliminationCheck(not unmet, tuple(unmet), tuple(dict.fromkeys(used)))
