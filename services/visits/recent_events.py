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


# (digest, topic, partition, offset): a tuple of strings and ints, which the garbage collector
# stops tracking, where a dataclass pair would be two objects and two dicts it scans at every
# full collection: 400,000 of them in a process that remembers 100,000 events.
_Entry = tuple[str, str, int, int]


class RecentEvents:
    """Least-recently-used map of event id → Acknowledged, holding at most `capacity` ids."""

    def __init__(self, capacity: int = 100_000):
        if capacity < 0:
            raise ValueError("capacity must not be negative")
        self.capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, event_id: str) -> Acknowledged | None:
        entry = self._entries.get(event_id)
        if entry is None:
            return None
        self._entries.move_to_end(event_id)
        digest, topic, partition, offset = entry
        return Acknowledged(digest, Delivery(topic, partition, offset))

    def put(self, event_id: str, acknowledged: Acknowledged) -> None:
        if self.capacity == 0:
            return
        where = acknowledged.delivery
        self._entries[event_id] = (acknowledged.digest, where.topic, where.partition, where.offset)
        self._entries.move_to_end(event_id)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
