"""A household's monitoring state: its facts as deduplicated, canonically ordered event sets.

The state keeps each kind of event sorted by (occurred_at, event_id) and bounded to its newest
`LIMITS[kind]`. Everything the rules read (current registry row, incomes, checks, problems,
measures, workflow) is derived from these sets by `facts` and `workflow` as of a moment, so the
state is a pure function of the *set* of events seen: any arrival order gives the same state,
and keeping only the newest N of a set commutes with adding to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from services.monitoring.domain.events import (
    HardshipReported,
    IncomeUpdated,
    MeasureStepRecorded,
    ProblemRecorded,
    RegistryRecorded,
    ReviewDecided,
    VisitRecorded,
)

# Newest events kept per kind. Visits and incomes are frequent (monthly for monitored
# households); the rules read the last years of them. Decisions, hardship reports, measure and
# problem steps are few per household and are kept whole up to a generous cap.
LIMITS = {
    "registry": 16,
    "visits": 96,
    "incomes": 48,
    "hardships": 256,
    "decisions": 256,
    "measures": 512,
    "problems": 512,
}


class Views(dict):
    """A state's remembered views (facts.memo), keyed by view name: each state has its own.

    Written only while `open`: `assess.remembering` opens the views of a state it has just made
    and nobody else holds yet, and closes them before returning it. Otherwise views are read,
    never written, so reading a state's facts or assessing it leaves the state as it was."""

    # No __init__ (dict's own copies faster, on every event): closed unless set on the instance.
    open = False


class Seen:
    """The ids of the events a state has applied: an immutable set value, extended in O(1).

    Copying a frozenset on every event made a household's history quadratic. Instead the
    states of one history share an append-only log (a dict of id → position, insertion
    ordered) and each knows how much of it is its own (`size`): an id is in this set when its
    position is below `size`. Extending the newest state appends to the log in place; extending
    an older one (a branch: the same state given two different events) copies its own prefix
    first, so no state ever sees another's additions. Compares and hashes as a set of ids.
    """

    __slots__ = ("_log", "_size")

    def __init__(self, ids: Iterable[str] = ()):
        self._log: dict[str, int] = {}
        for event_id in ids:
            self._log.setdefault(event_id, len(self._log))
        self._size = len(self._log)

    def __contains__(self, event_id: object) -> bool:
        at = self._log.get(event_id)  # type: ignore[call-overload]
        return at is not None and at < self._size

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[str]:
        return islice(self._log, self._size)

    def __bool__(self) -> bool:
        return self._size > 0

    def adding(self, event_id: str) -> Seen:
        """This set with `event_id` (not in it) added."""
        log, size = self._log, self._size
        if len(log) != size:  # a later state of this history appended already: branch off
            log = dict(islice(log.items(), size))
        log[event_id] = size
        extended = Seen.__new__(Seen)
        extended._log, extended._size = log, size + 1
        return extended

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Seen):
            if other._log is self._log:
                return other._size == self._size
        elif not isinstance(other, (set, frozenset)):
            return NotImplemented
        return len(other) == self._size and all(event_id in other for event_id in self)

    def __hash__(self) -> int:
        return hash(frozenset(self))

    def __repr__(self) -> str:
        return f"Seen({sorted(self)!r})"


def seen_of(ids: Iterable[str]) -> Seen:
    """`ids` as a Seen (itself when it is one already)."""
    return ids if type(ids) is Seen else Seen(ids)


def writable(views: dict | None) -> bool:
    """Whether a memo may remember a new view in `views`."""
    return type(views) is Views and views.open


@dataclass(frozen=True, slots=True)
class HouseholdState:
    """Everything monitoring knows about one household; build with `empty`, change with `evolve`.

    `seen` holds every event id ever applied (including ones since dropped by the limits), so a
    redelivered event is recognised; `version` is the number of distinct events applied. It is
    a `Seen` once the state has been evolved (any set of ids is accepted, e.g. a row read back).
    """

    # fold.evolve builds states positionally: the event sets follow `seen`, in LIMITS order.
    household_id: str
    seen: Seen | frozenset[str] = field(default_factory=Seen)
    registry: tuple[RegistryRecorded, ...] = ()
    visits: tuple[VisitRecorded, ...] = ()
    incomes: tuple[IncomeUpdated, ...] = ()
    hardships: tuple[HardshipReported, ...] = ()
    decisions: tuple[ReviewDecided, ...] = ()
    measures: tuple[MeasureStepRecorded, ...] = ()
    problems: tuple[ProblemRecorded, ...] = ()
    last_occurred_at: datetime | None = field(default=None)
    # Memo of derived views (facts.memo): not part of the state's value. Entries are checked
    # against the identity of the event tuples they were computed from, so `evolve` gives the
    # next state a copy of them (its own dict: entries whose events did not change stay
    # valid); None turns memoisation off (the reference in the tests).
    views: dict | None = field(default_factory=Views, compare=False, repr=False)

    @property
    def version(self) -> int:
        return len(self.seen)

    def event_count(self) -> int:
        return sum(len(getattr(self, kind)) for kind in LIMITS)


def empty(household_id: str) -> HouseholdState:
    return HouseholdState(household_id)


def order_key(event: object) -> tuple[datetime, str]:
    """The canonical order of a household's facts: when it happened, ties by event id."""
    return (event.occurred_at, event.event_id)  # type: ignore[attr-defined]
