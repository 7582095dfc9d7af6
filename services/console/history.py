"""A household's history from the log, read and explained exactly as `shouwang explain` does
(audit's `Replay` and `explain`): its events with their times, and its state as of a day.

The read model keeps no events, only where each of a household's records sits in the log
(`household_records`, up to the projector's stored positions): the page fetches those records
and reads past the positions for anything newer, so it gives the answer reading the household's
partitions end to end would (`shouwang explain`'s way, and this page's without a read model),
with one fetch per record instead of one per partition's length, on a consumer kept between
requests (starting one costs more than the fetches).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.audit.explain import explain
from services.audit.explain_run import household_log
from services.audit.replay import EventNote, HouseholdLog, Replay
from services.contract.codec import Codec
from services.contract.inputs import MONITORING_INPUTS
from services.contract.topics import TopicLayout
from services.monitoring.domain.policy import PolicyBook
from services.platform.kafka.log import partition_of
from services.platform.kafka.records_at import RecordReader
from services.readmodel.record_positions import household_positions


@dataclass(frozen=True)
class History:
    document: dict[str, Any]  # explain's document as of the day asked
    events: list[EventNote]  # every event of the household, in occurred order


class HistoryReader:
    def __init__(
        self,
        bootstrap: str,
        layout: TopicLayout,
        policies: PolicyBook,
        pool: asyncpg.Pool | None = None,  # the read model; None: read the partitions whole
    ):
        self.bootstrap = bootstrap
        self.layout = layout
        self.policies = policies
        self.pool = pool
        self.codec = Codec.default()
        self.records = RecordReader(bootstrap, (t.name for t in MONITORING_INPUTS))

    async def close(self) -> None:
        await self.records.close()

    async def read(self, household_id: str, as_of: datetime) -> History | None:
        """The household as of `as_of` and its events, or None when it has no events."""
        replay = Replay(self.codec, self.policies)
        if self.pool is None:
            log = await household_log(self.bootstrap, self.layout, household_id, replay)
        else:
            log = await self._positioned(household_id, replay)
        if log is None:
            return None
        events = [e for items in log.events.values() for e in items]
        document = explain(household_id, events, log.notes, self.policies, as_of)
        ordered = sorted(log.notes.values(), key=lambda n: (n.occurred_at, n.event_id))
        return History(document, ordered)

    async def _positioned(self, household_id: str, replay: Replay) -> HouseholdLog | None:
        key = household_id.encode()
        partitions = [
            (t.name, partition_of(key, self.layout.partitions(t))) for t in MONITORING_INPUTS
        ]
        offsets, tails = await household_positions(self.pool, household_id, partitions)
        for record in await self.records.read(offsets, tails, key):
            if record.key == key:  # a listed offset is the household's; checked all the same
                replay.feed(record)
        return replay.households.get(household_id)
