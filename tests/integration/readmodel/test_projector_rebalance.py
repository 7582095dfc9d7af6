"""A rebalance while a projector is inside a batch loses nothing (issue 16, item 7).

aiokafka runs the rebalance listener in its coordinator task, while the projector's loop may be
in a batch's transaction. The listener reads the stored positions to seek to; on the loop's
connection asyncpg refused that ("another operation is in progress"), aiokafka logged and
swallowed the error, and the partitions kept the group's committed offsets. Those are only
hints: after the read model is rebuilt they are past the database, and the records between
were never projected. Here the group's offsets are at the end and the database is empty (a
rebuild), the first projector's batch is held inside its transaction by a table lock, and a
second projector joins the group meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from services.readmodel.metrics import ProjectorMetrics
from services.readmodel.projector import Projector, ProjectorConfig
from services.tools.demo.catch_up import projector_offsets
from tests.integration.readmodel.test_projector import fresh_database, produce  # noqa: F401
from tests.integration.readmodel.test_projector_commits import ends

pytestmark = pytest.mark.integration
HOUSEHOLDS = 30
PROJECTED_EACH = 3  # produce(): two registry rows and one assessment count as projected events


async def commit_at(bootstrap: str, group: str, offsets) -> None:
    """Commit `offsets` for `group`, as a group whose database was then rebuilt would have."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(dict(offsets))
    finally:
        await consumer.stop()


async def waiting_on_locks(database_url: str) -> int:
    """Sessions of this database waiting for a lock (a projector's batch held by the test)."""
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    finally:
        await conn.close()


async def members(bootstrap: str, group: str) -> int:
    """Members of a Stable `group` (0 while it rebalances)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    _, _, state, _, _, member_list, *_ = described.groups[0]
    return len(member_list) if state == "Stable" else 0


async def until(condition, seconds: float, what: str, running: list[asyncio.Task]) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        for task in running:
            if task.done():
                task.result()  # raises what stopped a projector
                raise AssertionError(f"a projector stopped before {what}")
        assert time.monotonic() < deadline, f"timed out after {seconds} s waiting for {what}"
        await asyncio.sleep(0.2)  # polling a condition, not waiting for time to pass


async def test_a_rebalance_during_a_batch_loses_nothing(
    kafka_bootstrap: str,
    fresh_database: str,  # noqa: F811
) -> None:
    with contextlib.suppress(TopicMismatch):
        await ensure_topics(kafka_bootstrap, TopicLayout())
    group = f"test-rebalance-{uuid.uuid4().hex[:8]}"
    prefix = f"rebalance-{uuid.uuid4().hex[:8]}"
    config = ProjectorConfig(kafka_bootstrap, fresh_database, group_id=group, batch_size=200)
    # The session broker's topics hold other tests' records (some refused on purpose): only
    # this test's, from `start` on, must all be applied.
    start = await ends(kafka_bootstrap, config.topics)
    await produce(kafka_bootstrap, prefix, HOUSEHOLDS)
    end = await ends(kafka_bootstrap, config.topics)
    await commit_at(kafka_bootstrap, group, end)

    def projector() -> Projector:
        return Projector(config, Codec.default(), ProjectorMetrics(CollectorRegistry()))

    first, second = projector(), projector()
    running: list[asyncio.Task] = []
    # A SHARE lock stops a batch at its first position write and lets plain reads through.
    locker = await asyncpg.connect(fresh_database)
    lock = locker.transaction()
    await lock.start()
    await locker.execute("LOCK TABLE projection_positions IN SHARE MODE")
    try:
        running.append(asyncio.create_task(first.run()))

        async def batches_held(n: int) -> bool:
            return await waiting_on_locks(fresh_database) >= n

        await until(lambda: batches_held(1), 120, "the first projector's batch", running)
        running.append(asyncio.create_task(second.run()))

        async def both_members() -> bool:
            return await members(kafka_bootstrap, group) == 2

        await until(both_members, 120, "the rebalance", running)
        # The second projector's first batch waits too: it has its partitions and read them.
        await until(lambda: batches_held(2), 120, "the second projector's batch", running)
        await lock.commit()

        async def projected() -> bool:
            applied = await projector_offsets(fresh_database)
            return all(applied.get(tp, 0) >= offset for tp, offset in end.items())

        await until(projected, 180, "every partition projected to its end", running)
    finally:
        if not locker.is_closed():
            await locker.close()
        for each in (first, second):
            each.stop()
        await asyncio.wait_for(asyncio.gather(*running, return_exceptions=True), 60)
    for task in running:
        assert task.exception() is None, task.exception()
    conn = await asyncpg.connect(fresh_database)
    try:
        counts = await conn.fetch(
            "SELECT household_id, events_projected FROM households WHERE household_id LIKE $1",
            f"{prefix}-%",
        )
        refused = await conn.fetch("SELECT topic, partition, kafka_offset FROM projection_rejects")
    finally:
        await conn.close()
    assert {r["events_projected"] for r in counts} == {PROJECTED_EACH}, counts
    assert len(counts) == HOUSEHOLDS
    ours = [
        r
        for r in refused
        if r["kafka_offset"] >= start.get(TopicPartition(r["topic"], r["partition"]), 0)
    ]
    assert ours == []
