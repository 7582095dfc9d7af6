"""Monitoring policies as effective-dated data: income lines, weights, categories, deadlines,
and how a policy takes over from the one it succeeds.

Pure: `parse_policy` validates a document already read (adapters/policy_files reads the TOML
files); the enum values it checks against are the contract's (vocabulary, from the schemas).
`book_of` links each policy to its predecessor, so one policy object answers which version was
in force on any earlier date (a decision is judged by the policy of its own date).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from types import MappingProxyType
from typing import Any

from services.contract.vocabulary import symbols
from services.monitoring.domain.income_lines import IncomeLine, parse_income_lines
from services.monitoring.domain.procedure import (
    DEFAULT_PROCEDURE,
    PROCEDURE_KEYS,
    ProcedureRules,
    parse_procedure_rules,
)
from services.monitoring.domain.reasons import RISK_CODES
from services.monitoring.domain.succession import (
    Succession,
    parse_succession,
    succession_problems,
)

LEVELS = symbols("RiskLevel")
CATEGORIES = symbols("Category")
REGISTRATIONS = symbols("RegistrationStatus")
LIVELIHOODS = symbols("Livelihood")
MEASURE_TYPES = symbols("MeasureType")


class PolicyError(ValueError):
    """A policy file the rules cannot use; `problems` lists every (where, problem)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(f"{w}: {p}" for w, p in problems))


@dataclass(frozen=True, slots=True)
class CategoryRule:
    category: str
    registration: tuple[str, ...] = ()  # empty: any
    reasons: tuple[str, ...] = ()  # empty: any reason


@dataclass(frozen=True, slots=True)
class Elimination:
    stable_months: int
    min_monitored_months: int
    min_measures: int
    require_labour: bool
    count_weak_labour: bool


@dataclass(frozen=True, slots=True)
class Policy:
    """One effective-dated policy version; every assessment names the one it used."""

    id: str
    description: str
    effective_from: date
    effective_until: date | None
    province: str | None  # the county's province: its rows of `income_lines` apply
    income_lines: tuple[IncomeLine, ...]  # by year; see `line_on`
    sharp_fall_ratio: float
    rigid_expenditure_ratio: float
    unsold_livelihoods: tuple[str, ...]
    unsold_income_share: float
    flag_to_decision_days: int
    visit_interval_days: int
    problem_rectification_days: int
    level_thresholds: tuple[tuple[str, int], ...]  # (level, minimum score), highest first
    flag_level: str
    weights: Mapping[str, int]
    categories: tuple[CategoryRule, ...]
    elimination: Elimination
    answers: Mapping[str, tuple[str, ...]]  # measure type → reason codes it answers
    succeeds: Succession | None = None
    # Months of income reckoned for an assessment, ending with the month before its own.
    income_window_months: int = 12
    # The version this one succeeds, linked by `book_of` (None when parsed alone or pinned).
    predecessor: Policy | None = None
    procedure: ProcedureRules = DEFAULT_PROCEDURE

    def in_force(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_until is None or day < self.effective_until
        )

    def level_of(self, score: int) -> str:
        for level, minimum in self.level_thresholds:
            if score >= minimum:
                return level
        return "NONE"

    def flags(self, level: str) -> bool:
        return LEVELS.index(level) >= LEVELS.index(self.flag_level)

    def line_on(self, day: date) -> IncomeLine:
        """The income line in force on `day`: the row of the latest year up to `day`'s, the
        county's province's row before the national one of the same year (the 2021 guidance
        lets provinces adjust the line yearly). `parse_policy` ensures one covers
        `effective_from`; a day before it gets the earliest row."""
        best = None
        for line in self.income_lines:
            if line.province is not None and line.province != self.province:
                continue
            if line.year <= day.year and (
                best is None
                or (line.year, line.province is not None) > (best.year, best.province is not None)
            ):
                best = line
        return best or min(self.income_lines, key=lambda line: line.year)

    def changes_after(self, day: date) -> date | None:
        """The first day after `day` on which the rules read other parameters: a new year's
        income line or the end of this version (its successor takes over)."""
        days = [
            date(line.year, 1, 1)
            for line in self.income_lines
            if line.year > day.year and (line.province is None or line.province == self.province)
        ]
        if self.effective_until is not None and self.effective_until > day:
            days.append(self.effective_until)
        return min(days, default=None)

    def lineage(self) -> tuple[Policy, ...]:
        """This version and those it succeeds, oldest first."""
        chain: list[Policy] = []
        policy: Policy | None = self
        while policy is not None:
            chain.append(policy)
            policy = policy.predecessor
        return tuple(reversed(chain))

    def on(self, day: date) -> Policy:
        """The version of this lineage in force on `day` (this one from its effective date;
        before that the version it succeeds, and so on; the oldest for earlier days)."""
        policy = self
        while policy.predecessor is not None and day < policy.effective_from:
            policy = policy.predecessor
        return policy

    def starts_at(self) -> datetime:
        """The moment this version takes over: midnight UTC of its effective date (policies
        are chosen by the UTC date of the assessment, `PolicyBook.for_date`)."""
        return datetime.combine(self.effective_from, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class PolicyBook:
    """All policy versions, so a county picks its version by date."""

    policies: tuple[Policy, ...]
    # Day → policy, filled by for_date (asked once per assessment); the book never changes.
    _by_day: dict[date, Policy] = field(default_factory=dict, init=False, compare=False, repr=False)
    _pinned: dict[str, Policy] = field(default_factory=dict, init=False, compare=False, repr=False)

    def for_date(self, day: date) -> Policy:
        found = self._by_day.get(day)
        if found is not None:
            return found
        for policy in sorted(self.policies, key=lambda p: p.effective_from, reverse=True):
            if policy.in_force(day):
                if len(self._by_day) >= 10_000:  # bounded: a replay spans a few years of days
                    self._by_day.clear()
                self._by_day[day] = policy
                return policy
        raise LookupError(f"no monitoring policy is in force on {day.isoformat()}")

    def get(self, policy_id: str) -> Policy:
        for policy in self.policies:
            if policy.id == policy_id:
                return policy
        raise LookupError(f"no monitoring policy {policy_id!r}")

    def pinned(self, policy_id: str) -> Policy:
        """`policy_id` alone, without its predecessors: a pinned version (SHOUWANG_POLICY)
        judges every decision, whatever its date, and carries nothing over."""
        found = self._pinned.get(policy_id)
        if found is None:
            found = self._pinned[policy_id] = replace(self.get(policy_id), predecessor=None)
        return found


def book_of(policies: Iterable[Policy], source: str) -> PolicyBook:
    """The policies as a book; overlapping effective periods, a repeated id or none at all are
    a PolicyError naming `source` (where they were read from)."""
    policies = tuple(policies)
    ids = [p.id for p in policies]
    problems = [("policy.id", f"{i!r} appears twice") for i in set(ids) if ids.count(i) > 1]
    ordered = sorted(policies, key=lambda p: p.effective_from)
    for earlier, later in itertools.pairwise(ordered):
        if earlier.effective_until is None or earlier.effective_until > later.effective_from:
            problems.append(
                (
                    "policy.effective_until",
                    f"{earlier.id} overlaps {later.id} from {later.effective_from}",
                )
            )
    if not policies:
        problems.append(("", "no policy files"))
    problems += succession_problems(ordered)
    if problems:
        raise PolicyError(source, problems)
    linked: dict[str, Policy] = {}
    for policy in ordered:  # a predecessor takes effect first, so it is linked already
        before = linked.get(policy.succeeds.policy_id) if policy.succeeds else None
        linked[policy.id] = replace(policy, predecessor=before)
    return PolicyBook(tuple(linked[p.id] for p in policies))


_SCHEMA: dict[str, set[str]] = {
    "policy": {"id", "description", "effective_from", "effective_until"},
    "income": {
        "line_yuan",
        "lines",
        "province",
        "sharp_fall_ratio",
        "window_months",
        "rigid_expenditure_ratio",
        "unsold_livelihoods",
        "unsold_income_share",
    },
    "deadlines": {"flag_to_decision_days", "visit_interval_days", "problem_rectification_days"},
    "levels": {"high", "medium", "low", "flag"},
    "weights": set(RISK_CODES),
    "categories": set(),
    "elimination": {
        "stable_months",
        "min_monitored_months",
        "min_measures",
        "require_labour",
        "count_weak_labour",
    },
    "answers": set(MEASURE_TYPES),
    "succeeds": {"policy", "categories"},
    "procedure": set(PROCEDURE_KEYS),
}


def parse_policy(data: Mapping[str, Any], source: str = "<policy>") -> Policy:
    """Validate a policy document; PolicyError lists every problem found, not just the first."""
    problems: list[tuple[str, str]] = []

    def need(section: str, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        table = data.get(section, {})
        if key not in table:
            if default is ...:
                problems.append((f"{section}.{key}", "missing"))
            return None if default is ... else default
        value = table[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append((f"{section}.{key}", f"expected {kind}, got {value!r}"))
            return None
        return value

    for section, value in data.items():
        if section not in _SCHEMA:
            problems.append((section, "unknown section"))
        elif section != "categories":
            if not isinstance(value, dict):
                problems.append((section, "expected a table"))
                continue
            problems += [
                (f"{section}.{k}", "unknown key") for k in value if k not in _SCHEMA[section]
            ]
    weights = dict(data.get("weights", {}))
    problems += [(f"weights.{c}", "missing") for c in RISK_CODES if c not in weights]
    problems += [
        (f"weights.{c}", "must be a whole number ≥ 0")
        for c, w in weights.items()
        if not isinstance(w, int) or isinstance(w, bool) or w < 0
    ]

    levels = {k: need("levels", k, int) for k in ("high", "medium", "low")}
    if all(v is not None for v in levels.values()) and not (
        levels["high"] > levels["medium"] > levels["low"] > 0
    ):
        problems.append(("levels", "need high > medium > low > 0"))
    flag = need("levels", "flag", str)
    if flag is not None and flag not in LEVELS[1:]:
        problems.append(("levels.flag", f"{flag!r} is not LOW, MEDIUM or HIGH"))

    categories: list[CategoryRule] = []
    for i, entry in enumerate(data.get("categories", [])):
        where = f"categories[{i}]"
        unknown = set(entry) - {"id", "registration", "reasons"}
        problems += [(f"{where}.{k}", "unknown key") for k in sorted(unknown)]
        if entry.get("id") not in CATEGORIES:
            problems.append((f"{where}.id", f"{entry.get('id')!r} is not one of {CATEGORIES}"))
        bad = [r for r in entry.get("registration", []) if r not in REGISTRATIONS]
        problems += [(f"{where}.registration", f"unknown status {r!r}") for r in bad]
        bad = [r for r in entry.get("reasons", []) if r not in RISK_CODES]
        problems += [(f"{where}.reasons", f"unknown reason {r!r}") for r in bad]
        categories.append(
            CategoryRule(
                entry.get("id", ""),
                tuple(entry.get("registration", [])),
                tuple(entry.get("reasons", [])),
            )
        )
    if not categories:
        problems.append(("categories", "at least one category"))
    elif categories[-1].registration or categories[-1].reasons:
        problems.append(("categories", "the last category must be unconditional (a fallback)"))

    answers: dict[str, tuple[str, ...]] = {}
    for measure_type, codes in data.get("answers", {}).items():
        bad = [c for c in codes if c not in RISK_CODES]
        problems += [(f"answers.{measure_type}", f"unknown reason {c!r}") for c in bad]
        answers[measure_type] = tuple(codes)

    livelihoods = need("income", "unsold_livelihoods", list, [])
    problems += [
        ("income.unsold_livelihoods", f"unknown livelihood {x!r}")
        for x in livelihoods or []
        if x not in LIVELIHOODS
    ]
    effective_from = need("policy", "effective_from", date)
    province = need("income", "province", str, None)
    lines = parse_income_lines(data.get("income", {}), effective_from, province, problems)
    policy = Policy(
        id=need("policy", "id", str),
        description=need("policy", "description", str, ""),
        effective_from=effective_from,
        effective_until=need("policy", "effective_until", date, None),
        province=province,
        income_lines=lines,
        sharp_fall_ratio=float(need("income", "sharp_fall_ratio", (int, float)) or 0),
        income_window_months=need("income", "window_months", int, 12),
        rigid_expenditure_ratio=float(need("income", "rigid_expenditure_ratio", (int, float)) or 0),
        unsold_livelihoods=tuple(livelihoods or ()),
        unsold_income_share=float(need("income", "unsold_income_share", (int, float)) or 0),
        flag_to_decision_days=need("deadlines", "flag_to_decision_days", int),
        visit_interval_days=need("deadlines", "visit_interval_days", int),
        problem_rectification_days=need("deadlines", "problem_rectification_days", int),
        level_thresholds=tuple((k.upper(), v or 0) for k, v in levels.items()),
        flag_level=flag or "MEDIUM",
        weights=MappingProxyType(weights),
        categories=tuple(categories),
        elimination=Elimination(
            stable_months=need("elimination", "stable_months", int),
            min_monitored_months=need("elimination", "min_monitored_months", int),
            min_measures=need("elimination", "min_measures", int),
            require_labour=need("elimination", "require_labour", bool),
            count_weak_labour=need("elimination", "count_weak_labour", bool, True),
        ),
        answers=MappingProxyType(answers),
        succeeds=parse_succession(data.get("succeeds"), {c.category for c in categories}, problems),
        procedure=parse_procedure_rules(data.get("procedure", {}), problems),
    )
    if not 1 <= policy.income_window_months <= 36:
        problems.append(("income.window_months", "must be between 1 and 36"))
    if policy.sharp_fall_ratio and not 0 < policy.sharp_fall_ratio < 1:
        problems.append(("income.sharp_fall_ratio", "must be between 0 and 1"))
    if (
        isinstance(policy.effective_from, date)
        and policy.effective_until is not None
        and policy.effective_until <= policy.effective_from
    ):
        problems.append(("policy.effective_until", "must be after effective_from"))
    for key in ("flag_to_decision_days", "visit_interval_days", "problem_rectification_days"):
        value = getattr(policy, key)
        if value is not None and value < 1:
            problems.append((f"deadlines.{key}", "must be at least 1"))
    if problems:
        raise PolicyError(source, problems)
    return policy
