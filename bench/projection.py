"""B5: the read-model projector (`Projector.apply`: decode, rows, one transaction per batch with
positions) against asyncpg COPY of the same rows into an unlogged staging table.

Records come from memory (the county's frames on the projector's topics), so the figure is the
projector's own cost, not the consumer's. The COPY baseline writes the same (statement, values)
rows, values as text, into `bench_copy`: the cheapest way to get that many rows into PostgreSQL.
"""

from __future__ import annotations

import time

import asyncpg
from prometheus_client import CollectorRegistry

from bench.data import Dataset
from bench.report import Figure
from services.contract.codec import Codec
from services.platform.postgres.migrate import apply_migrations
from services.readmodel.metrics import ProjectorMetrics
from services.readmodel.projection import TOPICS, rows_for
from services.readmodel.projector import Projector, ProjectorConfig

BATCH = 2000  # ProjectorConfig.batch_size
TARGET_RATIO = 0.3


async def measure(stack, data: Dataset, codec: Codec) -> list[Figure]:
    records = data.records({t.name for t in TOPICS})
    rows: list[tuple[str, list[str | None]]] = []
    for r in records:
        decoded = codec.decode(r.value)
        for statement, args in rows_for(r.topic, decoded.event_type, decoded.record):
            rows.append((statement, [None if a is None else str(a) for a in args]))
    batches = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]

    conn = await asyncpg.connect(stack.database_url)
    try:
        await apply_migrations(conn)
        await conn.execute(
            "CREATE UNLOGGED TABLE IF NOT EXISTS bench_copy (statement text, args text[])"
        )
        await conn.execute("TRUNCATE bench_copy")
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "bench_copy", records=rows[i : i + BATCH], columns=["statement", "args"]
                )
        copy_s = time.perf_counter() - started

        config = ProjectorConfig(stack.bootstrap, stack.database_url, batch_size=BATCH)
        projector = Projector(config, codec, ProjectorMetrics(CollectorRegistry()))
        started = time.perf_counter()
        applied = 0
        for batch in batches:
            applied += await projector.apply(conn, batch)
        project_s = time.perf_counter() - started
    finally:
        await conn.close()
    if applied != len(records):
        raise RuntimeError(f"projector applied {applied} of {len(records)} records")
    n = len(rows)
    projected, copied = n / project_s, n / copy_s
    return [
        Figure(
            "B5",
            f"read-model projector, batches of {BATCH}",
            projected,
            "rows/s",
            "asyncpg COPY of the same rows",
            copied,
            f">= {TARGET_RATIO:.0%} of COPY",
            projected >= TARGET_RATIO * copied,
            n,
            project_s,
            f"{len(records)} events ({len(records) / project_s:,.0f} events/s)",
        )
    ]
