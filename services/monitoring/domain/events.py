"""Monitoring's domain events: frozen, past-tense records of what happened to a household.

They mirror the contract's input events but hold only what the rules use (no personal data).
`avro_translation` is the one place that builds them from decoded contract records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

CHECKS = ("food", "clothing", "education", "medical", "housing", "water")


@dataclass(frozen=True, slots=True)
class Members:
    count: int
    labour: int
    weak_labour: int
    students: int
    disabled: int
    chronically_ill: int
    elderly: int


@dataclass(frozen=True, slots=True)
class Member:
    """One registered member (registry v3), without personal data."""

    member_id: str
    relation: str
    birth_year: int
    birth_month: int
    sex: str
    labour: str  # FULL | PARTIAL | WEAK | NONE
    health: str  # HEALTHY | CHRONIC_ILLNESS | SERIOUS_ILLNESS | DISABILITY
    disability_grade: int | None
    schooling: str
    migrant_work_months: int


@dataclass(frozen=True, slots=True)
class BaselineIncome:
    year: int
    per_capita_net_yuan: int


@dataclass(frozen=True, slots=True)
class RegistryRecorded:
    """A registry row (户表): the baseline or a change; the newest by occurred_at wins."""

    event_id: str
    household_id: str
    occurred_at: datetime
    recorded_at: datetime
    change: str
    township: str
    village: str
    village_group: str
    registration: str  # LIFTED | NOT_LIFTED | NEVER_REGISTERED
    lifted_year: int | None
    members: Members
    head_birth_year: int | None
    livelihood: str
    minimum_living_allowance: bool
    housing: str
    water: str
    baseline_income: BaselineIncome | None
    # The members one by one (registry v3); empty when only the counts are known.
    people: tuple[Member, ...] = ()


@dataclass(frozen=True, slots=True)
class Check:
    status: str  # SECURED | PROBLEM | NOT_CHECKED
    note: str = ""


@dataclass(frozen=True, slots=True)
class VisitProblem:
    kind: str
    description: str
    fixed_on_spot: bool


@dataclass(frozen=True, slots=True)
class UnsoldProduce:
    item: str
    quantity: int
    unit: str
    value_yuan: int


@dataclass(frozen=True, slots=True)
class FiveVisits:
    members_seeking_work: int
    spring_farming_needs_help: bool
    unsold_produce: UnsoldProduce | None
    students_without_access: int


@dataclass(frozen=True, slots=True)
class VisitRecorded:
    """A home visit; a correction reuses `visit_id` and the later-recorded version wins."""

    event_id: str
    household_id: str
    occurred_at: datetime
    recorded_at: datetime
    visit_id: str
    cadre_id: str
    checks: tuple[tuple[str, Check], ...]  # in CHECKS order
    income_per_capita_yuan: int | None
    income_method: str | None
    living_environment: str
    policy_card: str
    hardship_causes: tuple[str, ...]
    problems: tuple[VisitProblem, ...]
    five_visits: FiveVisits | None

    def check(self, name: str) -> Check:
        return dict(self.checks)[name]


@dataclass(frozen=True, slots=True)
class IncomeUpdated:
    event_id: str
    household_id: str
    occurred_at: datetime
    recorded_at: datetime
    period_start: date
    period_end: date
    members_counted: int
    per_capita_net_yuan: int
    origin: str


@dataclass(frozen=True, slots=True)
class Expense:
    amount_yuan: int
    kind: str  # MEDICAL | EDUCATION | DISASTER_LOSS | ACCIDENT | OTHER


@dataclass(frozen=True, slots=True)
class Diagnosis:
    member_id: str | None  # names the member, or
    member_index: int | None  # its place in the registry's member list (0 first), or neither
    condition: str  # SERIOUS_ILLNESS | CHRONIC_ILLNESS | DISABILITY
    disability_grade: int | None


@dataclass(frozen=True, slots=True)
class HardshipReported:
    """A hardship case; a later report with the same `hardship_id` updates it.

    `expense` and `diagnosis` are hardship contract v2's; `avro_translation` gives a v1 report
    its faithful v2 reading, so the rules read only these two (`rigid_expenditure_yuan` equals
    the expense's amount, 0 without one)."""

    event_id: str
    household_id: str
    occurred_at: datetime
    recorded_at: datetime
    hardship_id: str
    cause: str
    rigid_expenditure_yuan: int
    origin: str
    resolved: bool
    description: str
    expense: Expense | None = None
    diagnosis: Diagnosis | None = None


@dataclass(frozen=True, slots=True)
class ReviewDecided:
    event_id: str
    household_id: str
    occurred_at: datetime
    recorded_at: datetime
    decision: str
    category: str | None
    body: str
    approving_level: str
    reason: str
    # ReviewDecided v2 (the procedure); defaulted so v1 records and stored rows still build.
    outcome: str | None = None  # PASSED | RETURNED, for VILLAGE_DELIBERATION and TOWNSHIP_REVIEW
    notice_start: date | None = None
    notice_days: int = 0
    exception: bool = False  # a county-approved INCLUDE/ELIMINATE skipping a step


@dataclass(frozen=True, slots=True)
class MeasureStepRecorded:
    event_id: str
    household_id: str
    occurred_at: datetime
    recorded_at: datetime
    measure_id: str
    step: str  # RECOMMENDED | ACCEPTED | DELIVERED | COMPLETED | CANCELLED
    measure_type: str
    catalogue_id: str
    cadre_id: str | None


@dataclass(frozen=True, slots=True)
class ProblemRecorded:
    event_id: str
    household_id: str
    occurred_at: datetime
    recorded_at: datetime
    problem_id: str
    step: str  # FOUND | TASK_ASSIGNED | RECTIFIED | REOPENED
    kind: str
    description: str
    responsible_cadre_id: str | None
    due_date: date | None
    visit_id: str | None


HouseholdEvent = (
    RegistryRecorded
    | VisitRecorded
    | IncomeUpdated
    | HardshipReported
    | ReviewDecided
    | MeasureStepRecorded
    | ProblemRecorded
)
EVENT_TYPES: tuple[type, ...] = (
    RegistryRecorded,
    VisitRecorded,
    IncomeUpdated,
    HardshipReported,
    ReviewDecided,
    MeasureStepRecorded,
    ProblemRecorded,
)
