"""Where a household's records sit in the log, as the projector last stored them: the console's
history page fetches exactly those records (`platform.kafka.records_at`) instead of reading the
household's partitions end to end."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import asyncpg

from services.readmodel.statements import PROJECTION

# One statement, so one snapshot: the records and the positions they are known up to agree (two
# statements could see a batch's positions without its records, and the records in between
# would be neither listed nor in the tail read past the positions).
_POSITIONS = """
    SELECT false AS stored, topic, partition, kafka_offset AS offset
    FROM household_records WHERE household_id = $1
    UNION ALL
    SELECT true, topic, partition, last_offset FROM projection_positions
    WHERE projection = $2 AND (topic, partition) IN (SELECT * FROM unnest($3::text[], $4::int[]))
"""

Partition = tuple[str, int]


async def household_positions(
    pool: asyncpg.Pool, household_id: str, partitions: Sequence[Partition]
) -> tuple[dict[Partition, list[int]], dict[Partition, int]]:
    """The offsets of `household_id`'s records by (topic, partition), and for each of
    `partitions` (the household's partition of each monitoring input) the first offset the
    projector has not applied yet: 0 where it has applied none, so the whole partition is read."""
    rows = await pool.fetch(
        _POSITIONS,
        household_id,
        PROJECTION,
        [t for t, _ in partitions],
        [p for _, p in partitions],
    )
    offsets: dict[Partition, list[int]] = defaultdict(list)
    tails = dict.fromkeys(partitions, 0)
    for row in rows:
        where = (row["topic"], row["partition"])
        if row["stored"]:
            tails[where] = max(0, row["offset"] + 1)
        else:
            offsets[where].append(row["offset"])
    return dict(offsets), tails
