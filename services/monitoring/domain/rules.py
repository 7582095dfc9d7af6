"""The risk rules: pure functions from a household's facts, a policy and a moment to reasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.contract.members import ELDERLY_AGE, SEVERE_DISABILITY_GRADES, WORKING_AGE, age_on
from services.monitoring.domain.composition import composition_at, member_named
from services.monitoring.domain.events import CHECKS, Member, RegistryRecorded
from services.monitoring.domain.facts import (
    IncomeObservation,
    View,
    hardships_at,
    income_over,
    income_window,
    incomes_at,
    measures_at,
    memo,
    registry_at,
    visits_at,
)
from services.monitoring.domain.policy import Policy
from services.monitoring.domain.problems import ProblemFacts, problems_at
from services.monitoring.domain.reasons import RISK_CODES
from services.monitoring.domain.state import HouseholdState

CAUSE_CODES = {
    "ILLNESS": "serious_illness",
    "DISABILITY": "disability",
    "DISASTER": "disaster",
    "ACCIDENT": "accident",
    "EPIDEMIC": "epidemic_impact",
    "SCHOOLING": "schooling_costs",
    "UNSTABLE_EMPLOYMENT": "unstable_employment",
    "FAILED_INDUSTRY_PROJECT": "failed_industry_project",
    "NO_LABOUR": "no_labour",
    "INCOME_FALL": "sharp_income_fall",
    "OTHER": "other_hardship",
}
_DECLARED = frozenset(RISK_CODES)
PREVIOUS_YEAR_GAP = timedelta(days=330)  # "year on year": an observation at least ~11 months older


@dataclass(frozen=True, slots=True)
class Reason:
    """One rule that fired: its code, the figures, and the events behind it (oldest first).

    `since` and `latest` span the events that made it true; the ids also name context (the
    registry row behind a livelihood, the income a shock is compared with)."""

    code: str
    message: str
    event_ids: tuple[str, ...]
    since: datetime  # earliest evidence: when the condition was first seen
    latest: datetime  # newest evidence


@dataclass
class _Evidence:
    messages: list[str]
    events: dict[str, datetime]  # event id → occurred_at: the events that made it true
    context: dict[str, datetime]  # events named for the figures (e.g. the registry row)


def risk_reasons(
    state: HouseholdState,
    policy: Policy,
    at: datetime,
    problems: dict[str, ProblemFacts] | None = None,
) -> tuple[Reason, ...]:
    """Every risk reason holding at `at`, sorted by code; each names the events behind it.

    `problems` is `problems_at(state, at)` when the caller has it already.
    """
    # The line is read by date, not from the events: part of the memo's key.
    # So is the income window (it moves with the month): members' ages, counted from the first
    # day of their birth month, change only with the month too, so it keys them as well.
    extra = (
        policy,
        policy.line_on(at.date()),
        income_window(at.date(), policy.income_window_months),
    )
    return memo(_REASONS, state, at, lambda: _risk_reasons(state, policy, at, problems), extra)


# What the rules read (decisions are the workflow's).
_REASONS = View("reasons", "registry", "visits", "incomes", "hardships", "measures", "problems")


def _risk_reasons(
    state: HouseholdState,
    policy: Policy,
    at: datetime,
    problems: dict[str, ProblemFacts] | None,
) -> tuple[Reason, ...]:
    found: dict[str, _Evidence] = {}

    def add(
        code: str,
        message: str,
        *events: tuple[str, datetime],
        context: tuple[tuple[str, datetime], ...] = (),
    ) -> None:
        if code not in _DECLARED:  # policies weigh and support answers only declared codes
            raise ValueError(f"reason code {code!r} is not declared in reasons.RISK_CODES")
        evidence = found.setdefault(code, _Evidence([], {}, {}))
        evidence.messages.append(message)
        evidence.events.update(events)
        evidence.context.update(context)

    registry = registry_at(state, at)
    incomes = incomes_at(state, at)
    in_force = policy.line_on(at.date())
    line = in_force.yuan
    members = registry.members.count if registry else None

    window = income_over(incomes, *income_window(at.date(), policy.income_window_months))
    if window is not None:
        if window.per_capita_yuan < line:
            add(
                "income_below_line",
                f"per-capita net income {window.describe()} is below the {policy.id} line of "
                f"{line} yuan ({in_force.describe()})",
                # the figures below the line make it true; those above are named as context
                *((o.event_id, o.occurred_at) for o, _ in window.parts if o.per_capita_yuan < line),
                context=tuple(
                    (o.event_id, o.occurred_at)
                    for o, _ in window.parts
                    if o.per_capita_yuan >= line
                ),
            )
    elif incomes and incomes[-1].per_capita_yuan < line:
        # nothing observed in the window (a figure for this month only, or older than the
        # window): the latest figure stands in for it, said so
        run = _trailing(incomes, lambda o: o.per_capita_yuan < line)
        add(
            "income_below_line",
            f"per-capita net income {incomes[-1].describe()} is below the {policy.id} line of "
            f"{line} yuan ({in_force.describe()}); no income observed over the "
            f"{policy.income_window_months} months before this month",
            *((o.event_id, o.occurred_at) for o in run),
        )

    if incomes:
        latest = incomes[-1]
        earlier = [o for o in incomes if o.on <= latest.on - PREVIOUS_YEAR_GAP]
        if earlier and earlier[-1].per_capita_yuan > 0:
            before = earlier[-1]
            fall = (before.per_capita_yuan - latest.per_capita_yuan) / before.per_capita_yuan
            if fall >= policy.sharp_fall_ratio:
                add(
                    "sharp_income_fall",
                    f"per-capita income fell {fall:.0%} (threshold "
                    f"{policy.sharp_fall_ratio:.0%}): from {before.describe()} to "
                    f"{latest.describe()}",
                    (latest.event_id, latest.occurred_at),
                    context=((before.event_id, before.occurred_at),),
                )

    cases = [c for c in hardships_at(state, at).values() if not c.resolved]
    # Rigid expenditure decides on the expenses' amounts alone (the seed: "clearly exceeding
    # last year's income"); an illness is weighed by its diagnosis, never by its bill.
    shocks = [c for c in cases if c.latest.expense is not None and c.latest.expense.amount_yuan]
    if shocks:
        start = min(c.first_reported_at for c in shocks)
        reference = [o for o in incomes if o.on < start.date()] or list(incomes[:1])
        if reference:
            base = reference[-1]
            people = base.members or members or 1
            household_income = base.per_capita_yuan * people
            total = sum(c.latest.expense.amount_yuan for c in shocks)
            limit = policy.rigid_expenditure_ratio * household_income
            if total > limit:
                kinds = ", ".join(
                    f"{c.latest.expense.kind.lower()} {c.latest.expense.amount_yuan}"
                    for c in shocks
                )
                add(
                    "rigid_expenditure",
                    f"rigid expenditure of {total} yuan ({kinds}) exceeds "
                    f"{policy.rigid_expenditure_ratio:g} × the previous year's household income "
                    f"of {household_income} yuan ({base.per_capita_yuan} × {people})",
                    *((e, c.latest.occurred_at) for c in shocks for e in c.event_ids),
                    context=((base.event_id, base.occurred_at),),
                )
    for case in cases:
        report = case.latest
        events = tuple((e, report.occurred_at) for e in case.event_ids)
        if report.diagnosis is not None:
            d = report.diagnosis
            member = member_named(registry, d.member_id, d.member_index)
            who = _who(member, d.member_id, d.member_index, at)
            for code in special_attention(d.condition, d.disability_grade, _age(member, at)):
                add(code, f"{report.origin.lower().replace('_', ' ')} reports {who}: "
                    f"{_condition(d.condition, d.disability_grade)} (hardship {case.hardship_id})",
                    *events, context=_registry_context(registry, member))  # fmt: skip
        if case.cause in HEALTH_CAUSES:
            continue  # its cost is the expense's, its condition the diagnosis's
        add(
            CAUSE_CODES.get(case.cause, "other_hardship"),
            f"{report.origin.lower().replace('_', ' ')} reports {case.cause.lower()} "
            f"hardship {case.hardship_id}"
            + (
                f" with {case.rigid_expenditure_yuan} yuan rigid expenditure"
                if case.rigid_expenditure_yuan
                else ""
            ),
            *events,
        )
    if registry is not None:
        for member in registry.people:
            if member.health == "HEALTHY":
                continue
            for code in special_attention(member.health, member.disability_grade, _age(member, at)):
                add(code, f"registry: {_who(member, None, None, at)}, "
                    f"{_condition(member.health, member.disability_grade)}",
                    (registry.event_id, registry.occurred_at))  # fmt: skip

    visits = visits_at(state, at)
    if visits:
        last = visits[-1]
        for cause in last.hardship_causes:
            add(
                CAUSE_CODES.get(cause, "other_hardship"),
                f"visit {last.visit_id} observed {cause.lower()} hardship",
                (last.event_id, last.occurred_at),
            )
    five = [v for v in visits if v.five_visits is not None]
    if five:
        visit = five[-1]
        block = visit.five_visits
        produce = block.unsold_produce
        if produce is not None and produce.quantity > 0:
            lives_on_it = registry is not None and registry.livelihood in policy.unsold_livelihoods
            income = incomes[-1].per_capita_yuan * (members or 1) if incomes else None
            large = income is not None and produce.value_yuan >= policy.unsold_income_share * income
            if lives_on_it or large:
                why = (
                    f"the household lives on {registry.livelihood.lower()}"
                    if lives_on_it
                    else f"worth {produce.value_yuan} yuan, ≥ "
                    f"{policy.unsold_income_share:.0%} of a year's income"
                )
                context = ((registry.event_id, registry.occurred_at),) if lives_on_it else ()
                add(
                    "unsold_produce",
                    f"{produce.quantity} {produce.unit} of {produce.item} unsold "
                    f"({produce.value_yuan} yuan) and {why}",
                    (visit.event_id, visit.occurred_at),
                    context=context,
                )
        if block.members_seeking_work > 0:
            add(
                "members_seeking_work",
                f"{block.members_seeking_work} member(s) want work and have none",
                (visit.event_id, visit.occurred_at),
            )
        if block.spring_farming_needs_help:
            add(
                "spring_farming_needs_help",
                "spring farming lacks inputs or hands (visit spring farming, help production)",
                (visit.event_id, visit.occurred_at),
            )
        if block.students_without_access > 0:
            add(
                "students_without_access",
                f"{block.students_without_access} student(s) learning at home without a device "
                "or connection",
                (visit.event_id, visit.occurred_at),
            )

    composition = composition_at(state, at)
    if registry is not None and composition.labour == 0:
        add(
            "no_labour",
            "no member with full working capacity"
            + (f" aged {WORKING_AGE[0]}-{WORKING_AGE[1]}" if registry.people else "")
            + f" ({composition.weak_labour} with weak or partial labour, "
            f"{composition.count} members)",
            (registry.event_id, registry.occurred_at),
        )  # fmt: skip

    if problems is None:
        problems = problems_at(state, at)
    for problem in problems.values():
        if problem.open and problem.kind.lower() in CHECKS:
            add(
                f"guarantee_{problem.kind.lower()}",
                f"open {problem.kind.lower()} problem {problem.problem_id}: {problem.description}",
                *((e, problem.found_at) for e in problem.event_ids),
            )

    answered = _answered(state, policy, at)
    reasons = []
    for code, evidence in sorted(found.items()):
        latest = max(evidence.events.values())
        if answered.get(code) is not None and answered[code] >= latest:
            continue
        ordered = sorted(evidence.events.items(), key=lambda item: (item[1], item[0]))
        named = sorted(
            {**evidence.context, **evidence.events}.items(), key=lambda item: (item[1], item[0])
        )
        reasons.append(
            Reason(
                code,
                "; ".join(dict.fromkeys(evidence.messages)),
                tuple(e for e, _ in named),
                ordered[0][1],
                latest,
            )
        )
    return tuple(reasons)


HEALTH_CAUSES = ("ILLNESS", "DISABILITY")


def special_attention(condition: str, grade: int | None, age: int | None) -> tuple[str, ...]:
    """The 2021 special-attention group (DOMAIN.md, 2021 guidance) of one member's condition:
    serious or chronic illness; a disability at 65 or over (the registry's elderly) is disabled
    elderly, else severe (grade 1-2) or other disability. One group per condition, so one
    member's diagnosis weighs its group's weight alone."""
    if condition == "SERIOUS_ILLNESS":
        return ("serious_illness",)
    if condition == "CHRONIC_ILLNESS":
        return ("chronic_illness",)
    if condition != "DISABILITY":
        return ()
    if age is not None and age >= ELDERLY_AGE:
        return ("disabled_elderly",)
    return ("severe_disability",) if grade in SEVERE_DISABILITY_GRADES else ("disability",)


def _age(member: Member | None, at: datetime) -> int | None:
    return None if member is None else age_on(member.birth_year, member.birth_month, at.date())


def _who(member: Member | None, member_id: str | None, index: int | None, at: datetime) -> str:
    if member is not None:
        return (
            f"member {member.member_id} ({member.relation.lower().replace('_', ' ')}, "
            f"aged {_age(member, at)})"
        )
    if member_id is not None or index is not None:
        named = f"member {member_id}" if member_id is not None else f"member #{index}"
        return f"{named} (not on the registry's member list)"
    return "a member (not named)"


def _condition(condition: str, grade: int | None) -> str:
    words = condition.lower().replace("_", " ")
    return f"{words}, grade {grade}" if grade is not None else words


def _registry_context(
    registry: RegistryRecorded | None, member: Member | None
) -> tuple[tuple[str, datetime], ...]:
    return (
        () if member is None or registry is None else ((registry.event_id, registry.occurred_at),)
    )


def _answered(state: HouseholdState, policy: Policy, at: datetime) -> dict[str, datetime]:
    """Reason code → the latest moment a measure answering it was received."""
    answered: dict[str, datetime] = {}
    for measure in measures_at(state, at).values():
        if measure.received_at is None or measure.step == "CANCELLED":
            continue
        for code in policy.answers.get(measure.measure_type, ()):
            if code not in answered or measure.received_at > answered[code]:
                answered[code] = measure.received_at
    return answered


def _trailing(items: tuple[IncomeObservation, ...], holds) -> list[IncomeObservation]:
    run: list[IncomeObservation] = []
    for item in reversed(items):
        if not holds(item):
            break
        run.append(item)
    return run[::-1]


def score_of(reasons: tuple[Reason, ...], policy: Policy) -> int:
    return sum(policy.weights.get(r.code, 0) for r in reasons)


def category_for(registration: str | None, reasons: tuple[Reason, ...], policy: Policy) -> str:
    codes = {r.code for r in reasons}
    for rule in policy.categories:
        if rule.registration and registration not in rule.registration:
            continue
        if rule.reasons and not codes.intersection(rule.reasons):
            continue
        return rule.category
    return policy.categories[-1].category
