"""A household's history from the log, read and explained exactly as `shouwang explain` does
(audit's `household_log` and `explain`): its events with their times, and its state as of a
day. The read model keeps no events, so this page reads the household's partition of each
monitoring input from Kafka: slower than the other pages, and only asked for on its own page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.audit.explain import explain
from services.audit.explain_run import household_log
from services.audit.replay import EventNote, Replay
from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.monitoring.domain.policy import PolicyBook


@dataclass(frozen=True)
class History:
    document: dict[str, Any]  # explain's document as of the day asked
    events: list[EventNote]  # every event of the household, in occurred order


class HistoryReader:
    def __init__(self, bootstrap: str, layout: TopicLayout, policies: PolicyBook):
        self.bootstrap = bootstrap
        self.layout = layout
        self.policies = policies
        self.codec = Codec.default()

    async def read(self, household_id: str, as_of: datetime) -> History | None:
        """The household as of `as_of` and its events, or None when it has no events."""
        replay = Replay(self.codec, self.policies)
        log = await household_log(self.bootstrap, self.layout, household_id, replay)
        if log is None:
            return None
        events = [e for items in log.events.values() for e in items]
        document = explain(household_id, events, log.notes, self.policies, as_of)
        ordered = sorted(log.notes.values(), key=lambda n: (n.occurred_at, n.event_id))
        return History(document, ordered)
