"""A household's support profile: the facts matching needs, folded purely from its events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import singledispatch
from types import MappingProxyType

from services.contract import vocabulary

OPEN_STEPS = ("REQUESTED", "RECOMMENDED", "ACCEPTED", "DELIVERED")
CLOSED_STEPS = ("COMPLETED", "CANCELLED")
# The contract's lifecycle order, with support's own REQUESTED (a need not yet matched) first.
_STEP_RANK = {"REQUESTED": -1, **vocabulary.measure_step_ranks()}


@dataclass(frozen=True)
class Members:
    count: int
    labour: int
    weak_labour: int
    students: int
    disabled: int
    chronically_ill: int
    elderly: int


@dataclass(frozen=True)
class Person:
    """One member of the registry's list (schema v3), as matching reads it: no personal data."""

    member_id: str
    birth_year: int
    birth_month: int
    labour: str
    health: str
    schooling: str


@dataclass(frozen=True)
class RegistryRecorded:
    """Registry facts support uses (no personal data: the translation drops it)."""

    event_id: str
    household_id: str
    occurred_at: datetime
    township: str
    village: str
    registration: str
    members: Members
    head_birth_year: int | None
    livelihood: str
    minimum_living_allowance: bool
    housing: str
    water: str
    people: tuple[Person, ...] = ()  # empty: only the counts are known


@dataclass(frozen=True)
class RiskAssessed:
    event_id: str
    household_id: str
    as_of: datetime
    category: str | None
    level: str
    workflow: str
    reason_codes: tuple[str, ...]
    policy_version: str


@dataclass(frozen=True)
class MeasureStepRecorded:
    event_id: str
    household_id: str
    occurred_at: datetime
    measure_id: str
    step: str
    measure_type: str
    catalogue_id: str
    pool: str | None
    cadre_id: str | None
    waiting_for: str | None = None


@dataclass(frozen=True)
class MeasureRequested:
    """Recorded by the support app itself when it asks a pool for a measure (see app.py)."""

    measure_id: str
    catalogue_id: str
    pool: str | None


@dataclass(frozen=True)
class MeasureReleased:
    """Recorded by the support app itself when the household's workflow left the states in
    which it may hold support: the measure is cancelled and its slot or queue place freed."""

    measure_id: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class MeasureState:
    measure_id: str
    catalogue_id: str
    pool: str | None  # the pool instance support booked it in (a later step may omit it)
    step: str
    at: datetime | None
    # Why support released it (the household left the served states); "" otherwise.
    released: str = ""
    # Reason codes of the assessment in force when it closed: a later assessment with a code
    # not among them is a changed situation (ends a cancellation's cooling period).
    basis: tuple[str, ...] = ()

    @property
    def open(self) -> bool:
        return self.step in OPEN_STEPS


@dataclass(frozen=True)
class Profile:
    household_id: str
    registry: RegistryRecorded | None = None
    assessment: RiskAssessed | None = None
    measures: Mapping[str, MeasureState] = field(default_factory=lambda: MappingProxyType({}))

    def open_catalogue_ids(self) -> frozenset[str]:
        return frozenset(m.catalogue_id for m in self.measures.values() if m.open)


def empty(household_id: str) -> Profile:
    return Profile(household_id)


def apply(profile: Profile, event: object) -> Profile:
    """Fold `event` into `profile` (one small function per event type)."""
    return _apply(event, profile)


@singledispatch
def _apply(event: object, profile: Profile) -> Profile:
    raise TypeError(f"support profiles do not fold {type(event).__name__}")


@_apply.register
def _(event: RegistryRecorded, profile: Profile) -> Profile:
    current = profile.registry
    if current is not None and (current.occurred_at, current.event_id) >= (
        event.occurred_at,
        event.event_id,
    ):
        return profile
    return replace(profile, registry=event)


@_apply.register
def _(event: RiskAssessed, profile: Profile) -> Profile:
    current = profile.assessment
    if current is not None and (current.as_of, current.event_id) >= (event.as_of, event.event_id):
        return profile
    return replace(profile, assessment=event)


@_apply.register
def _(event: MeasureStepRecorded, profile: Profile) -> Profile:
    current = profile.measures.get(event.measure_id)
    if current is not None and not _later(event.step, event.occurred_at, current):
        return profile
    # The pool support booked wins over the step's: a closing step may name none, or another.
    pool = current.pool if current is not None and current.pool else event.pool
    state = MeasureState(event.measure_id, event.catalogue_id, pool, event.step,
                         event.occurred_at, basis=_basis(profile, event.step))  # fmt: skip
    return replace(
        profile, measures=MappingProxyType({**profile.measures, event.measure_id: state})
    )


@_apply.register
def _(event: MeasureReleased, profile: Profile) -> Profile:
    current = profile.measures.get(event.measure_id)
    if current is None or not current.open:
        return profile  # closed is final: releasing twice, or after a cancel, changes nothing
    state = replace(current, step="CANCELLED", at=event.at, released=event.reason,
                    basis=_basis(profile, "CANCELLED"))  # fmt: skip
    return replace(
        profile, measures=MappingProxyType({**profile.measures, event.measure_id: state})
    )


def _basis(profile: Profile, step: str) -> tuple[str, ...]:
    if step not in CLOSED_STEPS or profile.assessment is None:
        return ()
    return tuple(sorted(set(profile.assessment.reason_codes)))


@_apply.register
def _(event: MeasureRequested, profile: Profile) -> Profile:
    if event.measure_id in profile.measures:
        return profile
    state = MeasureState(event.measure_id, event.catalogue_id, event.pool, "REQUESTED", None)
    return replace(
        profile, measures=MappingProxyType({**profile.measures, event.measure_id: state})
    )


def _later(step: str, at: datetime, current: MeasureState) -> bool:
    # Closed is final; otherwise the step further along the lifecycle wins, then the later time,
    # so a late-synced DELIVERED does not reopen a COMPLETED measure.
    if current.step in CLOSED_STEPS:
        return False
    if _STEP_RANK[step] != _STEP_RANK[current.step]:
        return _STEP_RANK[step] > _STEP_RANK[current.step]
    return current.at is None or at > current.at
