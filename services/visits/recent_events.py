"""A bounded memory of recently acknowledged event ids, for answering re-sends without producing.

Offline clients re-send whole queues after a lost response. A re-send of an event this process
acknowledged recently is answered from here (with where it landed) instead of writing it again;
the same event id with different content is a client bug and is refused. Older re-sends are
written again, which is harmless: consumers ignore duplicate event ids.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from services.platform.kafka.producer import Delivery


@dataclass(frozen=True)
class Acknowledged:
    """What was acknowledged under an event id: the content digest and where it landed."""

    digest: str
    delivery: Delivery


class RecentEvents:
    """Least-recently-used map of event id → Acknowledged, holding at most `capacity` ids."""

    def __init__(self, capacity: int = 100_000):
        if capacity < 0:
            raise ValueError("capacity must not be negative")
        self.capacity = capacity
        self._entries: OrderedDict[str, Acknowledged] = OrderedDict()

    def get(self, event_id: str) -> Acknowledged | None:
        entry = self._entries.get(event_id)
        if entry is not None:
            self._entries.move_to_end(event_id)
        return entry

    def put(self, event_id: str, acknowledged: Acknowledged) -> None:
        if self.capacity == 0:
            return
        self._entries[event_id] = acknowledged
        self._entries.move_to_end(event_id)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
