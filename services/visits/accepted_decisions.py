"""A bounded memory of the review decisions this door accepted lately, per household.

The monitoring view lags the log: a step accepted a moment ago is not yet folded. Before the
door judges a decision's procedure order from the view (domain/procedure.py `judgeable`), it asks
here which decisions it accepted for the household that the view may not show yet; while one of
them is missing from the view's decisions, the door accepts and leaves the order to the fold.
An entry is forgotten once the view shows it, after `max_age_seconds`, or when `capacity` newer
ones push it out: forgetting only makes the door judge sooner, from a view that may lag more.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection


class AcceptedDecisions:
    """Event ids of accepted review decisions by household, oldest first, bounded in count and
    age."""

    def __init__(
        self,
        capacity: int = 100_000,
        max_age_seconds: float = 900.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if capacity < 0 or max_age_seconds <= 0:
            raise ValueError("capacity must not be negative, max_age_seconds must be positive")
        self.capacity = capacity
        self.max_age_seconds = max_age_seconds
        self._monotonic = monotonic
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()  # id → household, t
        self._by_household: dict[str, set[str]] = {}

    def remember(self, household_id: str, event_id: str) -> None:
        if self.capacity == 0:
            return
        self._forget(event_id)
        self._entries[event_id] = (household_id, self._monotonic())
        self._by_household.setdefault(household_id, set()).add(event_id)
        while len(self._entries) > self.capacity:
            self._forget(next(iter(self._entries)))

    def pending(self, household_id: str) -> frozenset[str]:
        """The household's remembered decisions (the too old ones forgotten first)."""
        horizon = self._monotonic() - self.max_age_seconds
        while self._entries:
            oldest, (_, at) = next(iter(self._entries.items()))
            if at > horizon:
                break
            self._forget(oldest)
        return frozenset(self._by_household.get(household_id, ()))

    def seen(self, household_id: str, event_ids: Collection[str]) -> None:
        """Forget the household's decisions the view now shows."""
        for event_id in self._by_household.get(household_id, set()) & set(event_ids):
            self._forget(event_id)

    def _forget(self, event_id: str) -> None:
        entry = self._entries.pop(event_id, None)
        if entry is None:
            return
        ids = self._by_household.get(entry[0])
        if ids is not None:
            ids.discard(event_id)
            if not ids:
                del self._by_household[entry[0]]

    def __len__(self) -> int:
        return len(self._entries)
