"""The review workflow: decisions replayed in canonical order, policy transitions, and the
elimination conditions.

Rules flag, people decide: every decision is applied as recorded, judged by the policy in force
on its own date. One the workflow cannot take (e.g. REJECT of a monitored household) is kept as
an exception and changes nothing; one the policy forbids (ELIMINATE before the conditions hold)
takes effect and is kept as a policy exception with the unmet conditions, so the decision is
visible and answerable. When a policy succeeds another, every household in the workflow on its
effective date carries over as the policy file says (`policy.Succession`), recorded as a
`Transition`: never dropped because its category was the old policy's.

The entry and exit procedures run inside the cycle (`procedure`): a step out of order is
refused like any decision the workflow cannot take, and so is an INCLUDE or ELIMINATE that
skips a step, unless the county approves it as an exception with a written reason (kept on
record as `procedure_exception`).

Long because the decisions, the carry-over at a policy's succession and the elimination check
are one replay, read together.
"""

from __future__ import annotations

import bisect
import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import attrgetter

from services.monitoring.domain.composition import labour_of
from services.monitoring.domain.events import ReviewDecided
from services.monitoring.domain.facts import incomes_at, measures_at, registry_at
from services.monitoring.domain.policy import Policy
from services.monitoring.domain.procedure import (
    ENTRY,
    EXIT,
    STEP_DECISIONS,
    Procedure,
    Step,
    begin,
    missing_without,
    step,
)
from services.monitoring.domain.reasons import (
    INVALID_TRANSITION,
    POLICY_EXCEPTION,
    POLICY_TRANSITION,
    PROCEDURE_EXCEPTION,
)
from services.monitoring.domain.rules import Reason, risk_reasons
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
class Transition:
    """A household in the workflow carried over to a successor policy on its effective date."""

    from_policy: str
    to_policy: str
    at: datetime  # the successor's effective date, midnight UTC
    status: str  # VERIFYING | MONITORED | ELIMINATION_PROPOSED, unchanged by the transition
    from_category: str | None  # None while verifying: there is no category yet
    to_category: str | None
    held: tuple[str, ...]  # the carry-over's reasons that held on the effective date
    conditions: tuple[str, ...]  # reasons of the carry-overs passed over (none of them held)
    rereview_due: date | None
    event_ids: tuple[str, ...]  # the cycle's decisions, then the evidence of `held`

    def message(self) -> str:
        head = f"{self.from_policy} → {self.to_policy} on {self.at.date().isoformat()}: "
        if self.from_category is None:
            return head + f"verification continues under {self.to_policy}'s categories and rules"
        why = ""
        if self.held:
            why = f" ({', '.join(self.held)} held on the effective date)"
        elif self.conditions:
            why = f" (none of {', '.join(self.conditions)} held)"
        text = f"{self.status.lower()} household's {self.from_category} carried over as "
        text += f"{self.to_category}{why}"
        if self.rereview_due is not None:
            text += f"; re-review due by {self.rereview_due.isoformat()}"
        return head + text

    def reason(self) -> Reason:
        return Reason(POLICY_TRANSITION, self.message(), self.event_ids, self.at, self.at)


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
    # "decision event id/code" of the exceptions taken in earlier cycles (TAKEN: they took
    # effect), so an assessment can state every exception standing in the household's history
    taken_before: tuple[str, ...] = ()
    decision_ids: tuple[str, ...] = ()  # of the current cycle
    transitions: tuple[Transition, ...] = ()  # of the current cycle
    rereview_due: date | None = None  # a transition's, until the next decision takes it up
    procedure: Procedure | None = None  # the cycle's entry or exit procedure while under way


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
    """Replay the decisions that occurred by `at` in canonical order, each judged by the version
    of `policy`'s lineage in force on its own date, and carry the household over at each
    successor's effective date by `at`."""
    decisions = state.decisions
    count = len(decisions)
    if count and decisions[-1].occurred_at > at:
        count = next(i for i, d in enumerate(decisions) if d.occurred_at > at)
    if count == 0:
        return NO_DECISIONS
    successors = tuple(p for p in policy.lineage()[1:] if p.starts_at() <= at)
    if state.views is None:
        return _stage(state, policy, count, successors)
    # The stage depends on the decisions by `at` and the successions crossed, except that
    # proposing or eliminating checks the conditions as of that decision, which reads every kind
    # of event, and a carry-over reads the events that occurred by its effective date.
    reads_all = any(d.decision in _CHECKING for d in decisions[:count])
    key = (count, decisions, policy, successors, *(_ALL(state) if reads_all else ()))
    if successors and not reads_all:
        key += tuple(_prefix(events, s.starts_at()) for s in successors for events in _ALL(state))
    hit = state.views.get("stage")
    if hit is not None and hit[0] == key:
        return hit[1]
    stage = _stage(state, policy, count, successors)
    if writable(state.views):  # remembered only in `assess.remembering`'s own state
        state.views["stage"] = (key, stage)
    return stage


_ALL = attrgetter(*LIMITS)
NO_DECISIONS = Stage()  # immutable, so shared
_CHECKING = ("PROPOSE_ELIMINATION", "ELIMINATE")
IN_WORKFLOW = ("VERIFYING", "MONITORED", "ELIMINATION_PROPOSED")


def _stage(
    state: HouseholdState, policy: Policy, count: int, successors: tuple[Policy, ...]
) -> Stage:
    stage = Stage()
    pending = list(successors)
    for decision in state.decisions[:count]:
        # A decision at the very moment a successor takes over is that successor's.
        while pending and pending[0].starts_at() <= decision.occurred_at:
            stage = carry_over(stage, state, pending.pop(0))
        stage = _decide(stage, decision, state, policy.on(decision.occurred_at.date()))
    for successor in pending:
        stage = carry_over(stage, state, successor)
    return stage


def _with(stage: Stage, **changes) -> Stage:
    fields = {f: getattr(stage, f) for f in Stage.__slots__}
    fields.update(changes)
    return Stage(**fields)


def carry_over(stage: Stage, state: HouseholdState, successor: Policy) -> Stage:
    """`stage` on `successor`'s effective date: a household in the workflow keeps its status and
    takes the category `successor.succeeds` gives its old one, with the transition recorded."""
    succession = successor.succeeds
    if stage.status not in IN_WORKFLOW or succession is None or successor.predecessor is None:
        return stage
    at = successor.starts_at()
    before = successor.predecessor.id
    if stage.category is None:
        transition = Transition(
            before, successor.id, at, stage.status, None, None, (), (), None, stage.decision_ids
        )
        return _with(stage, transitions=(*stage.transitions, transition))
    reasons = {r.code: r for r in _reasons_on(state, successor, at)}
    rule = succession.rule_for(stage.category, reasons)
    if rule is None:  # book_of refuses a succession without a fallback for every category
        raise ValueError(f"{successor.id} carries no rule for {before}'s {stage.category}")
    held = tuple(code for code in rule.reasons if code in reasons)
    ahead = succession.carry_over[: succession.carry_over.index(rule)]
    passed = tuple(dict.fromkeys(c for r in ahead if r.source == stage.category for c in r.reasons))
    evidence = (e for code in held for e in reasons[code].event_ids)
    due = None
    if rule.rereview_days is not None:
        due = successor.effective_from + timedelta(days=rule.rereview_days)
    transition = Transition(
        before,
        successor.id,
        at,
        stage.status,
        stage.category,
        rule.target,
        held,
        passed,
        due,
        tuple(dict.fromkeys((*stage.decision_ids, *evidence))),
    )
    return _with(
        stage,
        category=rule.target,
        transitions=(*stage.transitions, transition),
        rereview_due=due,
    )


def _reasons_on(state: HouseholdState, successor: Policy, at: datetime) -> tuple[Reason, ...]:
    """The reasons on a successor's effective date, remembered while the events that occurred
    by then stay the same: later events (the common case, every event after the switch) do not
    compute them again."""
    views = state.views
    if views is None:
        return risk_reasons(state, successor, at)
    # A kind's events by `at` are a prefix of its sorted set; sets only grow or lose their
    # oldest, so (count, first id, last id) of the prefix tells whether it changed.
    key = (successor, *(_prefix(getattr(state, kind), at) for kind in LIMITS))
    name = f"carry-over/{successor.id}"
    hit = views.get(name)
    if hit is not None and hit[0] == key:
        return hit[1]
    reasons = risk_reasons(state, successor, at)
    if writable(views):
        views[name] = (key, reasons)
    return reasons


def _prefix(events: tuple, at: datetime) -> tuple:
    count = bisect.bisect_right(events, at, key=_OCCURRED)
    return (count, events[0].event_id, events[count - 1].event_id) if count else (0,)


_OCCURRED = attrgetter("occurred_at")


def _decide(stage: Stage, d: ReviewDecided, state: HouseholdState, policy: Policy) -> Stage:
    """`d` applied to `stage`, judged by `policy` (the version in force on `d`'s date)."""
    new_cycle = stage.status in ("NONE", "REJECTED", "ELIMINATED")
    # A decision the workflow takes answers any re-review a transition asked for.
    base = _with(
        stage,
        exceptions=() if new_cycle else stage.exceptions,
        taken_before=(*stage.taken_before, *taken(stage)) if new_cycle else stage.taken_before,
        decision_ids=(d.event_id,) if new_cycle else (*stage.decision_ids, d.event_id),
        transitions=() if new_cycle else stage.transitions,
        rereview_due=None,
    )

    def invalid(why: str) -> Stage:
        # A refused decision does not open a new cycle: keep the old one's record.
        irregularity = Irregularity(
            INVALID_TRANSITION, f"{d.decision} by {d.body.lower()} ignored: {why}",
            d.event_id, d.occurred_at,
        )  # fmt: skip
        return _with(
            stage,
            exceptions=(*stage.exceptions, irregularity),
            decision_ids=(*stage.decision_ids, d.event_id),
        )

    def to(status: str, **changes) -> Stage:
        return _with(base, **{"status": status, "since": d.occurred_at, **changes})

    day = d.occurred_at.date()
    if d.decision in ("START_VERIFICATION", "APPLY"):
        if stage.status not in (*OPEN_STAGES, "VERIFYING"):
            return invalid(f"household is {stage.status.lower()}")
        if stage.status == "VERIFYING":
            return base
        return to(
            "VERIFYING",
            verification_started_at=d.occurred_at,
            category=None,
            included_at=None,
            procedure=begin(ENTRY, d.event_id, d.occurred_at),
        )
    if d.decision in STEP_DECISIONS:
        stepped = step(stage.procedure, _step_of(d), policy.procedure)
        if isinstance(stepped, str):
            return invalid(stepped)
        return _with(base, procedure=stepped)
    if d.decision == "INCLUDE":
        if d.category is None or d.category not in {c.category for c in policy.categories}:
            return invalid(f"category {d.category!r} is not one of {policy.id}'s")
        if stage.status in ("MONITORED", "ELIMINATION_PROPOSED"):  # recategorised
            return to("MONITORED", category=d.category, since=stage.since, procedure=None)
        under_way = stage.procedure if stage.status == "VERIFYING" else None
        gap = under_way.missing(day) if under_way else missing_without(ENTRY)
        approval = _approval(d, gap)
        if isinstance(approval, str):
            return invalid(approval)
        included = to("MONITORED", category=d.category, included_at=d.occurred_at, procedure=None)
        return _noting(included, approval)
    if d.decision == "REJECT":
        if stage.status not in ("NONE", "VERIFYING", "REJECTED", "ELIMINATED"):
            return invalid(f"a {stage.status.lower()} household leaves by elimination")
        return to("REJECTED", category=None, closed_at=d.occurred_at, procedure=None)
    if d.decision == "PROPOSE_ELIMINATION":
        if stage.status != "MONITORED":
            return invalid(f"household is {stage.status.lower()}, not monitored")
        check = elimination_check(state, policy, d.occurred_at, stage.included_at)
        proposed = to("ELIMINATION_PROPOSED", procedure=begin(EXIT, d.event_id, d.occurred_at))
        return _with_policy_exceptions(proposed, check, d)
    if d.decision == "ELIMINATE":
        if stage.status not in ("MONITORED", "ELIMINATION_PROPOSED"):
            return invalid(f"household is {stage.status.lower()}, not monitored")
        under_way = stage.procedure if stage.status == "ELIMINATION_PROPOSED" else None
        gap = under_way.missing(day) if under_way else missing_without(EXIT)
        approval = _approval(d, gap)
        if isinstance(approval, str):
            return invalid(approval)
        check = elimination_check(state, policy, d.occurred_at, stage.included_at)
        eliminated = to("ELIMINATED", closed_at=d.occurred_at, procedure=None)
        return _with_policy_exceptions(_noting(eliminated, approval), check, d)
    if d.decision == "KEEP_MONITORING":
        if stage.status not in ("MONITORED", "ELIMINATION_PROPOSED"):
            return invalid(f"household is {stage.status.lower()}, not monitored")
        since = stage.since if stage.status == "MONITORED" else d.occurred_at
        return to("MONITORED", since=since, procedure=None)
    return invalid(f"unknown decision {d.decision}")


# Exceptions that took effect (the rest of a stage's irregularities changed nothing).
TAKEN = (PROCEDURE_EXCEPTION, POLICY_EXCEPTION)


def taken(stage: Stage) -> tuple[str, ...]:
    """The exceptions the stage's current cycle took, as "decision event id/code"."""
    return tuple(f"{x.event_id}/{x.code}" for x in stage.exceptions if x.code in TAKEN)


def _step_of(d: ReviewDecided) -> Step:
    return Step(d.event_id, d.occurred_at, d.decision, d.outcome, d.notice_start, d.notice_days)


def _approval(d: ReviewDecided, gap: tuple[str, str] | None) -> Irregularity | str | None:
    """An INCLUDE or ELIMINATE against the step `gap` it skips: None when it skips none, the
    county's exception to keep on record, or why it is refused."""
    if gap is None:
        return None
    missing, why = gap
    if not d.exception:
        return f"missing step {missing}: {why}"
    if d.body != "COUNTY" or d.approving_level != "COUNTY":
        return (
            f"skips {missing} ({why}) as an exception, but only the county approves exceptions "
            f"(body {d.body}, approving_level {d.approving_level})"
        )
    if not d.reason.strip():
        return f"skips {missing} ({why}) as an exception without a written reason"
    return Irregularity(
        PROCEDURE_EXCEPTION,
        f"{d.decision} approved by the county on {d.occurred_at.date()} as an exception "
        f"skipping {missing} ({why}): {d.reason.strip()}",
        d.event_id,
        d.occurred_at,
    )


def _noting(stage: Stage, note: Irregularity | None) -> Stage:
    return stage if note is None else _with(stage, exceptions=(*stage.exceptions, note))


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
    return _with(stage, exceptions=(*stage.exceptions, exception))


def elimination_check(
    state: HouseholdState, policy: Policy, at: datetime, included_at: datetime | None
) -> EliminationCheck:
    """Whether the policy allows eliminating the household's risk at `at`, and what is unmet."""
    rules = policy.elimination
    unmet: list[tuple[str, str]] = []
    used: list[str] = []
    in_force = policy.line_on(at.date())
    line = in_force.yuan
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
                f"latest per-capita income is not above the {line}-yuan line "
                f"({in_force.describe()})"
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
    labour = labour_of(registry_at(state, at), rules.count_weak_labour, at.date())
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
