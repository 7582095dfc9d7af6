"""The seek back to committed offsets also moves a partition that has no committed offset.

The scale-out stall (issue 16): a worker alone in the group read a partition to its end, a
second worker joined before the first commit, faust's revoke dropped the acked offsets, and
the partition, assigned back to the same worker, was never read again: faust's
`perform_seek` relies on aiokafka's `seek_to_committed`, which seeks only to an offset above
0, so the fetch position stayed at the end of the log with nothing acked to commit. These
tests run faust's own `perform_seek` over a stand-in for the aiokafka consumer thread that
seeks as aiokafka does; `tests/integration/monitoring/test_scale_out.py` runs two workers.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

from aiokafka import TopicPartition

from services.platform.kafka.faust.redelivery import RedeliveringConsumer

REGISTRY = TopicPartition("household.registry", 6)  # read to 32 by this worker, not committed
VISITS = TopicPartition("household.visits", 6)  # committed at 17
INCOME = TopicPartition("household.income", 6)  # committed at 0: aiokafka does not seek it
CHANGELOG = TopicPartition("app-monitoring-households-changelog", 6)  # the recovery's own


class Thread:
    """aiokafka's consumer as faust's thread exposes it: positions, committed offsets, and a
    `seek_to_committed` that, like aiokafka's, seeks only to a committed offset above 0."""

    def __init__(self, positions: dict, committed: dict, earliest: dict):
        self.positions = dict(positions)
        self.committed = committed
        self.earliest = earliest

    async def seek_to_committed(self) -> dict:
        for tp, offset in self.committed.items():
            if offset and offset > 0:
                self.positions[tp] = offset
        return dict(self.committed)

    async def earliest_offsets(self, *tps: TopicPartition) -> dict:
        return {tp: self.earliest[tp] for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset


def consumer_over(thread: Thread, reset: str = "earliest") -> RedeliveringConsumer:
    consumer = object.__new__(RedeliveringConsumer)
    consumer._thread = thread
    # what faust's revoke left: the bookkeeping of every revoked partition popped
    consumer._read_offset = defaultdict(lambda: None)
    consumer._committed_offset = defaultdict(lambda: None)
    consumer.app = SimpleNamespace(
        conf=SimpleNamespace(consumer_auto_offset_reset=reset),
        tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}),
        topics=SimpleNamespace(acks_enabled_for=lambda topic: topic != CHANGELOG.topic),
    )
    return consumer


def stalled_worker(reset: str = "earliest") -> tuple[RedeliveringConsumer, Thread]:
    thread = Thread(
        positions={REGISTRY: 32, VISITS: 40, INCOME: 11, CHANGELOG: 120},
        committed={REGISTRY: None, VISITS: 17, INCOME: 0, CHANGELOG: None},
        earliest={REGISTRY: 0, VISITS: 0, INCOME: 0, CHANGELOG: 0},
    )
    return consumer_over(thread, reset), thread


def test_a_partition_without_a_committed_offset_is_read_again_from_its_start():
    consumer, thread = stalled_worker()
    asyncio.run(consumer.perform_seek())
    # before the fix REGISTRY stayed at 32 (its end) and INCOME at 11: never read again
    assert thread.positions[REGISTRY] == 0
    assert thread.positions[INCOME] == 0
    assert thread.positions[VISITS] == 17  # aiokafka's own seek, as before
    assert thread.positions[CHANGELOG] == 120  # the recovery positions changelogs itself
    # faust's bookkeeping after the seek: nothing read, so the records fetched again are
    # handed out (read offset None); the first offset stands as the committed one, so the
    # first commit cannot pass a record lost at the head (test_faust_redelivery)
    assert consumer._read_offset[REGISTRY] is None
    assert consumer._committed_offset[REGISTRY] == 0
    assert consumer._committed_offset[INCOME] == 0
    assert consumer._committed_offset[VISITS] == 17
    assert consumer.restarted == 2


def test_the_start_is_the_log_start_when_retention_removed_the_first_records():
    consumer, thread = stalled_worker()
    thread.earliest[REGISTRY] = 9
    asyncio.run(consumer.perform_seek())
    assert thread.positions[REGISTRY] == 9
    assert consumer._committed_offset[REGISTRY] == 9


def test_another_reset_policy_keeps_fausts_seek():
    consumer, thread = stalled_worker(reset="latest")
    asyncio.run(consumer.perform_seek())
    assert thread.positions == {REGISTRY: 32, VISITS: 17, INCOME: 11, CHANGELOG: 120}
    assert consumer.restarted == 0


def test_every_partition_committed_seeks_nothing_more():
    thread = Thread(positions={REGISTRY: 32}, committed={REGISTRY: 30}, earliest={REGISTRY: 0})
    consumer = consumer_over(thread)
    asyncio.run(consumer.perform_seek())
    assert thread.positions == {REGISTRY: 30}
    assert consumer.restarted == 0
