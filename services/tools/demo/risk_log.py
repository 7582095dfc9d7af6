"""Every assessment on `household.risk`, read back from the log for the report's timeline.

The read model keeps each household's latest workflow only; the topic keeps them all.
"""

from __future__ import annotations

import datetime as dt

from aiokafka import TopicPartition

from services.contract.codec import Codec
from services.contract.topics import RISK
from services.platform.kafka import clients as kafka_clients
from services.tools.demo.catch_up import partition_counts


async def read_assessments(
    bootstrap: str, codec: Codec | None = None
) -> list[tuple[str, str | None, str, dt.datetime]]:
    """(household_id, category, workflow, as_of) of every committed assessment, ordered by
    household, then as_of, then position in the log (the order monitoring emitted them)."""
    codec = codec or Codec.default()
    count = (await partition_counts(bootstrap, [RISK.name]))[RISK.name]
    partitions = [TopicPartition(RISK.name, p) for p in range(count)]
    consumer = kafka_clients.consumer(
        bootstrap=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=5000,
    )
    await consumer.start()
    rows = []
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                for message in messages:
                    record = codec.decode(message.value).record
                    rows.append(
                        (
                            record["household_id"],
                            record["as_of"],
                            tp.partition,
                            message.offset,
                            record["category"],
                            record["workflow"],
                        )
                    )
    finally:
        await consumer.stop()
    rows.sort(key=lambda r: r[:4])
    return [(h, category, workflow, as_of) for h, as_of, _, _, category, workflow in rows]
