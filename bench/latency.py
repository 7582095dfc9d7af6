"""B6: end-to-end latency, visit POST → read-model row committed, at fixed offered rates.

In one process: the visits API (as in B1), the read-model projector (`Projector.run`, its own
consumer group) and an open-loop client that starts one single-record POST every 1/rate
seconds whatever the answers. A record's latency runs from the start of its POST to the commit
of the projector transaction that applied it. The projector starts at the topics' end offsets
(earlier benches' records are not replayed). Client, API and projector share the process and
the machine's cores, so the figure is pessimistic.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import asyncpg
from prometheus_client import CollectorRegistry

from bench import ingest
from bench.data import Dataset
from bench.report import Figure
from bench.worker import _end_offsets
from services.contract.codec import Codec
from services.platform.postgres.migrate import apply_migrations
from services.readmodel.metrics import ProjectorMetrics
from services.readmodel.projection import TOPICS
from services.readmodel.projector import PROJECTION, Projector, ProjectorConfig

RATES = (200, 1000)
TARGET_P99_MS = 500.0
DRAIN_SECONDS = 60.0


class _TimedProjector(Projector):
    """The projector, noting when each record's transaction committed."""

    def __init__(self, *args, applied_at: dict[str, float], **kwargs):
        super().__init__(*args, **kwargs)
        self.applied_at = applied_at

    async def apply(self, conn, records):
        applied = await super().apply(conn, records)
        now = time.perf_counter()
        for r in records:
            try:
                self.applied_at[str(self.codec.decode(r.value).record["event_id"])] = now
            except Exception:  # an undecodable record is not a sample
                continue
        return applied


async def _start_at_end(database_url: str, bootstrap: str) -> None:
    ends = await _end_offsets(bootstrap, [t.name for t in TOPICS])
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn)
        await conn.execute("DELETE FROM projection_positions WHERE projection = $1", PROJECTION)
        await conn.executemany(
            "INSERT INTO projection_positions (projection, topic, partition, last_offset)"
            " VALUES ($1, $2, $3, $4)",
            [(PROJECTION, tp.topic, tp.partition, end - 1) for tp, end in ends.items()],
        )
    finally:
        await conn.close()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _offer(session, bodies: list[dict], rate: float, sent: dict[str, float]) -> int:
    """Open loop: POST i starts at i / rate seconds; returns how many were not accepted."""
    failures = 0

    async def post(body: dict) -> None:
        nonlocal failures
        sent[body["event_id"]] = time.perf_counter()
        try:
            async with session.post("/v1/visits", json=body) as r:
                await r.read()
                failures += r.status != 202
        except aiohttp.ClientError:
            failures += 1

    tasks = []
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(body)))
    await asyncio.gather(*tasks)
    return failures


async def _drained(running: asyncio.Task, applied_at: dict, ids: set[str]) -> None:
    """Until every id is in the read model (or DRAIN_SECONDS passed)."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline and not all(e in applied_at for e in ids):
        if running.done():
            running.result()  # raises what stopped the projector
        await asyncio.sleep(0.1)


async def measure(stack, data: Dataset, codec: Codec, seconds: float) -> list[Figure]:
    await _start_at_end(stack.database_url, stack.bootstrap)
    applied_at: dict[str, float] = {}
    config = ProjectorConfig(
        stack.bootstrap, stack.database_url, group_id="bench-latency", poll_timeout_ms=50
    )
    projector = _TimedProjector(
        config, codec, ProjectorMetrics(CollectorRegistry()), applied_at=applied_at
    )
    running = asyncio.create_task(projector.run())
    runner, base, sink = await ingest._serve(stack.bootstrap, codec)
    figures = []
    try:
        headers = {"Authorization": f"Bearer {ingest.SECRET}"}
        connector = aiohttp.TCPConnector(limit=512)
        async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
            # Warm up until the projector has joined its group and applies new records.
            warm = [ingest._json(r) for r in ingest._fresh(ingest._visits(data, 20))]
            await _offer(session, warm, 50, {})
            await _drained(running, applied_at, {b["event_id"] for b in warm})
            for rate in RATES:
                count = max(20, int(rate * seconds))
                bodies = [ingest._json(r) for r in ingest._fresh(ingest._visits(data, count))]
                sent: dict[str, float] = {}
                failures = await _offer(session, bodies, rate, sent)
                await _drained(running, applied_at, set(sent))
                latencies = [(applied_at[e] - t) * 1000 for e, t in sent.items() if e in applied_at]
                missing = len(sent) - len(latencies)
                if not latencies:
                    raise RuntimeError(f"no record reached the read model at {rate}/s")
                p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
                target = rate == 1000
                figures.append(
                    Figure(
                        "B6",
                        f"latency POST → read-model row at {rate} events/s offered, p99",
                        p99,
                        "ms",
                        target=f"p99 <= {TARGET_P99_MS:.0f} ms" if target else None,
                        passed=(p99 <= TARGET_P99_MS and not missing) if target else None,
                        count=len(sent),
                        seconds=seconds,
                        note=(
                            f"p50 {p50:,.0f} ms, max {max(latencies):,.0f} ms, "
                            f"{failures} not accepted, {missing} not in the read model "
                            f"within {DRAIN_SECONDS:.0f} s"
                        ),
                    )
                )
    finally:
        await runner.cleanup()
        await sink.close()
        projector.stop()
        try:
            await asyncio.wait_for(running, 30)
        except Exception:  # stopping: the figures are already taken
            running.cancel()
    return figures
