"""`assess(state, policy, as_of)`: the risk signal, the workflow and its deadlines, pure."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import attrgetter

from services.monitoring.domain.facts import (
    income_over,
    income_window,
    incomes_at,
    registry_at,
    visits_at,
)
from services.monitoring.domain.policy import Policy
from services.monitoring.domain.problems import ProblemFacts, problems_at
from services.monitoring.domain.procedure import Standing, standing
from services.monitoring.domain.rules import Reason, category_for, risk_reasons, score_of
from services.monitoring.domain.state import LIMITS, HouseholdState, Views
from services.monitoring.domain.workflow import (
    EliminationCheck,
    Stage,
    elimination_check,
    stage_at,
    taken,
)

MONITORING = ("MONITORED", "ELIMINATION_PROPOSED")


@dataclass(frozen=True, slots=True)
class Assessment:
    """The risk signal and workflow of one household at `as_of` under `policy_version`."""

    household_id: str
    as_of: datetime
    policy_version: str
    category: str | None  # decided category while monitored, else the rules' candidate
    level: str  # NONE | LOW | MEDIUM | HIGH
    score: int
    workflow: str  # NOT_FLAGGED | FLAGGED | VERIFYING | MONITORED | ELIMINATION_PROPOSED | ...
    reasons: tuple[Reason, ...]  # risk reasons, then workflow/policy exceptions
    overdue: tuple[str, ...]
    flagged_at: datetime | None
    decision_due: date | None
    next_visit_due: date | None
    included_at: datetime | None
    elimination: EliminationCheck | None  # while monitored: may the risk be eliminated now?
    open_problems: tuple[ProblemFacts, ...]
    problems_found: int = 0  # all problems on record, open or closed
    problems_rectified: int = 0
    procedure: Standing | None = None  # the cycle's entry or exit procedure while under way
    # "decision event id/code" of every exception that took effect in the household's history,
    # this cycle's (also among `reasons`, with their messages) and earlier cycles'. A later
    # assessment made with evidence that arrived late can drop one an earlier assessment
    # carried: the read model withdraws what the newest assessment no longer lists.
    exceptions: tuple[str, ...] = ()

    def content(self) -> tuple:
        """What the digest covers, as a tuple: equal contents have equal digests, so a worker
        compares this with what it last emitted and hashes only on a change. The procedure
        comes last and only when there is one, so an assessment without one keeps the digest
        it had before RiskAssessed v2."""
        content = (
            self.policy_version,
            self.category,
            self.level,
            self.workflow,
            tuple((r.code, r.message, r.event_ids) for r in self.reasons),
            self.overdue,
        )
        if self.procedure is not None:
            content += (self.procedure.content(),)
        if self.exceptions:  # only then: the digests of households without any stay as they were
            content += (("exceptions", self.exceptions),)
        return content

    def digest(self) -> str:
        """Hash of what the assessment says (not when it was made): equal digests, no change."""
        return digest_of(self.content())


def digest_of(content: tuple) -> str:
    """The digest of an assessment's `content()` (or of an emitted record's, read back).

    Its bytes are part of the contract (the emitted event id is uuid5 over it, rows store it,
    `replay --verify` recomputes it), so the JSON stays exactly as it was: tuples are written as
    JSON arrays, [policy_version, category, level, workflow, [[code, message, [ids]]...],
    [overdue...]]."""
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def assess(state: HouseholdState, policy: Policy, as_of: datetime) -> Assessment:
    """Assess the household from the events that occurred by `as_of`.

    Deterministic: the same state, policy and moment always give the same assessment. Pure:
    `state` (its remembered views included) is left as it was.
    """
    return remembering(state, policy, as_of)[0]


def remembering(
    state: HouseholdState, policy: Policy, as_of: datetime
) -> tuple[Assessment, HouseholdState]:
    """`assess`, and a state equal to `state` that remembers the views this assessment computed
    (`state` itself is left as it was). The worker keeps that state: `evolve` starts the next
    one from its views, so what the next event does not touch is not computed again."""
    if state.views is None:  # memoisation off
        return _assess(state, policy, as_of), state
    views = Views(state.views)
    own = HouseholdState(
        state.household_id, state.seen, *_SETS(state), state.last_occurred_at, views
    )
    views.open = True  # nobody else holds `own` yet
    try:
        return _assess(own, policy, as_of), own
    finally:
        views.open = False


_SETS = attrgetter(*LIMITS)


def _assess(state: HouseholdState, policy: Policy, as_of: datetime) -> Assessment:
    all_problems = problems_at(state, as_of)
    reasons = risk_reasons(state, policy, as_of, all_problems)
    score = score_of(reasons, policy)
    level = policy.level_of(score)
    registry = registry_at(state, as_of)
    stage = stage_at(state, policy, as_of)
    signal = policy.flags(level)

    flagged_at = None
    if stage.status in ("NONE", "REJECTED", "ELIMINATED"):
        fresh = [r for r in reasons if stage.closed_at is None or r.latest > stage.closed_at]
        if signal and fresh:
            workflow = "FLAGGED"
            flagged_at = _signal_since(reasons, policy)
            if stage.closed_at is not None:
                flagged_at = max(flagged_at, stage.closed_at)
        else:
            workflow = "NOT_FLAGGED" if stage.status == "NONE" else stage.status
    else:
        workflow = stage.status
    if stage.status in MONITORING:
        category = stage.category
    else:
        category = (
            category_for(registry.registration if registry else None, reasons, policy)
            if level != "NONE"
            else None
        )

    decision_due = None
    if workflow == "FLAGGED":
        decision_due = (flagged_at + timedelta(days=policy.flag_to_decision_days)).date()
    elif workflow == "VERIFYING":
        since = [r.since for r in reasons if r.since >= _cycle_floor(stage)]
        start = min([stage.verification_started_at, *since])
        decision_due = (start + timedelta(days=policy.flag_to_decision_days)).date()
    elif workflow in MONITORING and stage.rereview_due is not None:
        decision_due = stage.rereview_due  # a transition asked for a re-review
    next_visit_due = None
    if workflow in MONITORING:
        visits = [v.occurred_at for v in visits_at(state, as_of)]
        last = max([stage.included_at, *visits[-1:]])
        next_visit_due = (last + timedelta(days=policy.visit_interval_days)).date()
    problems = tuple(p for p in all_problems.values() if p.open)
    today = as_of.date()
    overdue = []
    if decision_due is not None and today > decision_due:
        overdue.append("decision_overdue")
    if next_visit_due is not None and today > next_visit_due:
        overdue.append("visit_overdue")
    if any(today > problem_due(p, policy) for p in problems):
        overdue.append("problem_overdue")
    procedure = None
    if stage.procedure is not None and workflow in ("VERIFYING", "ELIMINATION_PROPOSED"):
        procedure = standing(stage.procedure, policy.procedure, today)
        if today > procedure.due:
            overdue.append("procedure_step_overdue")

    elimination = None
    if workflow in MONITORING:
        elimination = elimination_check(state, policy, as_of, stage.included_at)
    notes = tuple(
        Reason(x.code, x.message, (x.event_id,), x.occurred_at, x.occurred_at)
        for x in stage.exceptions
    )
    if stage.transitions:  # in the order they happened among the decisions' notes
        notes = tuple(
            sorted((*notes, *(t.reason() for t in stage.transitions)), key=attrgetter("since"))
        )
    return Assessment(
        household_id=state.household_id,
        as_of=as_of,
        policy_version=policy.id,
        category=category,
        level=level,
        score=score,
        workflow=workflow,
        reasons=reasons + notes,
        overdue=tuple(overdue),
        flagged_at=flagged_at,
        decision_due=decision_due,
        next_visit_due=next_visit_due,
        included_at=stage.included_at if workflow in MONITORING else None,
        elimination=elimination,
        open_problems=problems,
        problems_found=len(all_problems),
        problems_rectified=sum(p.rectified_at is not None for p in all_problems.values()),
        procedure=procedure,
        exceptions=(*stage.taken_before, *taken(stage)),
    )


def problem_due(problem: ProblemFacts, policy: Policy) -> date:
    if problem.due_date is not None:
        return problem.due_date
    return (problem.found_at + timedelta(days=policy.problem_rectification_days)).date()


def next_deadline(
    assessment: Assessment, policy: Policy, state: HouseholdState | None = None
) -> date | None:
    """The first day on which, with no new event, the assessment may change: a deadline turns
    overdue, the policy changes (a new year's income line, or a successor taking over and
    carrying the household over), or (given the state) the income window's move into next
    month takes the household across the line. The worker re-assesses the household then."""
    days = [
        assessment.decision_due,
        assessment.next_visit_due,
        *(problem_due(p, policy) for p in assessment.open_problems),
        # the awaited step's due date (a running notice's last day: the review is awaited next)
        assessment.procedure.due if assessment.procedure is not None else None,
    ]
    today = assessment.as_of.date()
    upcoming = [d + timedelta(days=1) for d in days if d is not None and d >= today]
    change = policy.changes_after(today)
    if change is not None:
        upcoming.append(change)
    if state is not None and income_crosses_next_month(state, policy, assessment.as_of):
        upcoming.append(_next_month(today))
    return min(upcoming, default=None)


def income_crosses_next_month(state: HouseholdState, policy: Policy, as_of: datetime) -> bool:
    """Whether the income reckoned over next month's window falls on the other side of the line
    than this month's, with no new event (an old low or high figure leaving the window).

    Only a crossing asks for a re-assessment: the figure itself moves a little every month
    while a figure covering part of the window slides out, and re-emitting every household
    monthly for that would bury the changes that matter."""
    incomes = incomes_at(state, as_of)
    if not incomes:
        return False
    today, later = as_of.date(), _next_month(as_of.date())
    months = policy.income_window_months
    now = income_over(incomes, *income_window(today, months))
    then = income_over(incomes, *income_window(later, months))
    if now is None or then is None:
        return (now is None) != (then is None)
    return (now.per_capita_yuan < policy.line_on(today).yuan) != (
        then.per_capita_yuan < policy.line_on(later).yuan
    )


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _signal_since(reasons: tuple[Reason, ...], policy: Policy) -> datetime:
    """When the signal first held: adding reasons in the order they were first seen, the
    moment their weights reached the flag level."""
    ordered = sorted(reasons, key=lambda r: (r.since, r.code))
    score = 0
    for reason in ordered:
        score += policy.weights.get(reason.code, 0)
        if policy.flags(policy.level_of(score)):
            return reason.since
    return ordered[-1].since


def _cycle_floor(stage: Stage) -> datetime:
    return stage.closed_at or datetime.min.replace(tzinfo=stage.verification_started_at.tzinfo)
