"""Create the catalogue's topics on a cluster and check existing ones match it."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.contract.topics import CATALOGUE, Topic, TopicLayout
from services.platform.kafka import clients as kafka_clients

log = logging.getLogger(__name__)


class TopicMismatch(RuntimeError):
    """An existing topic whose partition count differs from the catalogue's layout."""


async def ensure_topics(
    bootstrap: str,
    layout: TopicLayout,
    topics: tuple[Topic, ...] = CATALOGUE,
    leader_wait_seconds: float = 60.0,
) -> list[str]:
    """Create missing topics; return the names created. Raises TopicMismatch on drift.

    Partition counts are checked because household topics must stay co-partitioned: a topic
    with a different count would send a household's events to different workers.
    """
    admin = kafka_clients.admin(bootstrap, client_id="shouwang-admin")
    await kafka_clients.start(admin, bootstrap)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=t.name,
                        num_partitions=layout.partitions(t),
                        replication_factor=layout.replication_factor,
                        topic_configs=layout.config(t),
                    )
                    for t in missing
                ]
            )
            log.info("created topics %s", ", ".join(t.name for t in missing))
            await _await_leaders(admin, [t.name for t in missing], leader_wait_seconds)
        present = [t for t in topics if t.name in existing]
        if present:
            described = await admin.describe_topics([t.name for t in present])
            counts = {d["topic"]: len(d["partitions"]) for d in described}
            wrong = [
                f"{t.name} has {counts[t.name]} partitions, layout wants {layout.partitions(t)}"
                for t in present
                if counts.get(t.name) != layout.partitions(t)
            ]
            if wrong:
                raise TopicMismatch("; ".join(wrong))
        return [t.name for t in missing]
    finally:
        await admin.close()


async def _await_leaders(admin: AIOKafkaAdminClient, names: list[str], seconds: float) -> None:
    """Wait until every partition of `names` has a leader, so the first produce does not bounce."""
    async with asyncio.timeout(seconds):
        while True:
            described = await admin.describe_topics(names)
            leaderless = [
                d["topic"]
                for d in described
                if d["error_code"]
                or any(p["leader"] < 0 for p in d["partitions"])
                or not d["partitions"]
            ]
            if not leaderless:
                return
            await asyncio.sleep(0.2)
