"""The fold: `evolve(state, event) -> state`, pure, order-independent and idempotent."""

from __future__ import annotations

import bisect
from functools import singledispatch
from operator import attrgetter

from services.monitoring.domain.events import (
    HardshipReported,
    IncomeUpdated,
    MeasureStepRecorded,
    ProblemRecorded,
    RegistryRecorded,
    ReviewDecided,
    VisitRecorded,
)
from services.monitoring.domain.state import (
    LIMITS,
    HouseholdState,
    Views,
    empty,
    order_key,
    seen_of,
)


class NotApplicable(ValueError):
    """An event that cannot belong to this state (e.g. another household's)."""


def evolve(state: HouseholdState, event: object) -> HouseholdState:
    """Return `state` with `event` added; the same `state` object when its id was seen before.

    Raises NotApplicable for an event of another household and TypeError for an unknown type.
    """
    household_id = getattr(event, "household_id", None)
    if household_id != state.household_id:
        raise NotApplicable(
            f"event {getattr(event, 'event_id', '?')} is for household {household_id!r}, "
            f"not {state.household_id!r}"
        )
    event_id = event.event_id  # type: ignore[attr-defined]
    if event_id in state.seen:
        return state
    kind = _KINDS.get(type(event)) or _kind(event)
    updated = _insert(getattr(state, kind), event, LIMITS[kind])
    last = state.last_occurred_at
    occurred = event.occurred_at  # type: ignore[attr-defined]
    # Built directly rather than with dataclasses.replace (a hot path); the event sets are
    # HouseholdState's fields in LIMITS order.
    sets = list(_SETS(state))
    sets[_POSITION[kind]] = updated
    return HouseholdState(
        state.household_id,
        # O(1) for the newest state of a history (the worker's, a replay's): `seen` is not
        # copied (a row read back as a frozenset is converted once)
        seen_of(state.seen).adding(event_id),
        *sets,
        occurred if last is None or occurred > last else last,
        # its own memo, starting with the views remembered so far (never the same dict)
        None if state.views is None else Views(state.views),
    )


def fold(household_id: str, events: object) -> HouseholdState:
    """The state after `events` (any iterable), starting empty."""
    state = empty(household_id)
    for event in events:  # type: ignore[attr-defined]
        state = evolve(state, event)
    return state


def _insert(events: tuple, event: object, limit: int) -> tuple:
    """Insert in canonical order and keep the newest `limit`: top-N of a set commutes with
    adding to it, so the result depends only on which events were seen."""
    key = order_key(event)
    if not events or order_key(events[-1]) < key:
        # The newest so far (events mostly arrive in order): no search, no list, one copy.
        if len(events) < limit:
            return (*events, event)
        return (*events[len(events) - limit + 1 :], event)
    items = list(events)
    keys = [order_key(e) for e in items]
    items.insert(bisect.bisect(keys, key), event)
    if len(items) > limit:
        items = items[len(items) - limit :]
    return tuple(items)


@singledispatch
def _kind(event: object) -> str:  # subclasses; the exact types are in _KINDS
    raise TypeError(f"monitoring cannot apply a {type(event).__name__}")


@_kind.register
def _(event: RegistryRecorded) -> str:
    return "registry"


@_kind.register
def _(event: VisitRecorded) -> str:
    return "visits"


@_kind.register
def _(event: IncomeUpdated) -> str:
    return "incomes"


@_kind.register
def _(event: HardshipReported) -> str:
    return "hardships"


@_kind.register
def _(event: ReviewDecided) -> str:
    return "decisions"


@_kind.register
def _(event: MeasureStepRecorded) -> str:
    return "measures"


@_kind.register
def _(event: ProblemRecorded) -> str:
    return "problems"


_SETS = attrgetter(*LIMITS)
_POSITION = {kind: i for i, kind in enumerate(LIMITS)}
_KINDS = {
    RegistryRecorded: "registry",
    VisitRecorded: "visits",
    IncomeUpdated: "incomes",
    HardshipReported: "hardships",
    ReviewDecided: "decisions",
    MeasureStepRecorded: "measures",
    ProblemRecorded: "problems",
}
