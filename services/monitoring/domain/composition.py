"""A household's members as of a moment: the counts its rules and views read (from the member
list when the registry has one, ages on the day), working-age labour, and the member a
diagnosis names."""

from __future__ import annotations

from datetime import date, datetime

from services.contract.members import composition_on
from services.monitoring.domain.events import Member, Members, RegistryRecorded
from services.monitoring.domain.facts import View, memo, registry_at
from services.monitoring.domain.state import HouseholdState


def composition_of(registry: RegistryRecorded | None, on: date) -> Members | None:
    """The household's counts on `on`: from its member list when the registry has one (ages
    on that day, `contract.members`), else the registry's counts as recorded."""
    if registry is None:
        return None
    if not registry.people:
        return registry.members
    counted = composition_on(registry.people, on)
    # field by field: dataclasses.astuple deep-copies, and this runs on every assessment
    return Members(
        counted.count,
        counted.labour,
        counted.weak_labour,
        counted.students,
        counted.disabled,
        counted.chronically_ill,
        counted.elderly,
    )


_COMPOSITION = View("composition", "registry")


def composition_at(state: HouseholdState, at: datetime) -> Members | None:
    """`composition_of` the registry row in force at `at`, on `at`'s day. Remembered while the
    registry rows and the month stay the same: ages count whole years from the first day of the
    birth month (`contract.members.age_on`), so within a month the counts cannot change, and
    every assessment reads them."""
    return memo(
        _COMPOSITION,
        state,
        at,
        lambda: composition_of(registry_at(state, at), at.date()),
        (at.year, at.month),
    )


def labour_of(
    registry: RegistryRecorded | None, count_weak: bool, on: date | None = None
) -> int | None:
    """Working-age labour on `on` (full, and partial or weak when `count_weak`): from the
    member list when there is one and a day is given, else the registry's counts."""
    members = composition_of(registry, on) if on is not None else (registry and registry.members)
    if members is None:
        return None
    return members.labour + (members.weak_labour if count_weak else 0)


def member_named(
    registry: RegistryRecorded | None, member_id: str | None, index: int | None
) -> Member | None:
    """The registry's member a diagnosis names, by id or by place in the list; None when the
    registry has no such member (or no list)."""
    if registry is None:
        return None
    if member_id is not None:
        return next((p for p in registry.people if p.member_id == member_id), None)
    if index is not None and 0 <= index < len(registry.people):
        return registry.people[index]
    return None
