"""The memory of recent events: what was put is what is got, least recently used forgotten
first, and its entries are nothing the garbage collector has to scan."""

from __future__ import annotations

import gc

from services.platform.kafka.producer import Delivery
from services.visits.recent_events import Acknowledged, RecentEvents


def test_an_entry_comes_back_as_it_was_put() -> None:
    recent = RecentEvents(capacity=2)
    first = Acknowledged("d1", Delivery("household.visits", 3, 17))
    recent.put("e1", first)
    assert recent.get("e1") == first
    assert recent.get("e2") is None


def test_the_least_recently_used_is_forgotten_first() -> None:
    recent = RecentEvents(capacity=2)
    for n in (1, 2):
        recent.put(f"e{n}", Acknowledged(f"d{n}", Delivery("t", 0, n)))
    recent.get("e1")  # used: e2 is now the oldest
    recent.put("e3", Acknowledged("d3", Delivery("t", 0, 3)))
    assert [recent.get(e) is not None for e in ("e1", "e2", "e3")] == [True, False, True]
    assert len(recent) == 2


def test_nothing_is_remembered_with_no_capacity() -> None:
    recent = RecentEvents(capacity=0)
    recent.put("e1", Acknowledged("d1", Delivery("t", 0, 1)))
    assert recent.get("e1") is None and len(recent) == 0


def test_entries_are_not_tracked_by_the_garbage_collector() -> None:
    recent = RecentEvents(capacity=1000)
    for n in range(1000):
        recent.put(f"event-{n}", Acknowledged(f"digest-{n}", Delivery("household.visits", 1, n)))
    gc.collect()  # CPython untracks a tuple of strings and ints when it first examines it
    assert not any(gc.is_tracked(entry) for entry in recent._entries.values())
