"""B8: B2 (the monitoring worker, start → caught up) with 1, 2 and 3 worker processes in one
consumer group, on 1, 4 and 12 partitions per household topic.

Each partition count gets its own fresh broker (topic names are fixed by the catalogue, so a
layout cannot share a broker with another), the same county preloaded, and its own raw
consume + decode read as a reference. Every figure's ratio is against the 1-worker,
12-partition figure of the same run (the shape B2 measures), so the table is the curve.
Workers are subprocesses (`shouwang monitoring`, memory tables, event clock) with
SHOUWANG_PARTITIONS set to the layout, each with its own home and web port.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

from bench import data as bench_data
from bench.data import Dataset
from bench.replay import raw_read
from bench.report import Figure
from bench.worker import TOPICS, _caught_up, _end_offsets, _start
from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.platform.localstack.processes import stop_child

PARTITIONS = (12, 4, 1)  # 12 first: it is every figure's baseline
WORKERS = (1, 2, 3)  # 3: the closing note of issue 16 asks for 2 and 3


async def run_workers(bootstrap: str, root: Path, partitions: int, workers: int, ends) -> float:
    """Seconds from starting `workers` processes until their group committed `ends`."""
    app_id = f"bench-scale-{partitions}p{workers}w-{uuid.uuid4().hex[:6]}"
    env = {"SHOUWANG_PARTITIONS": str(partitions)}
    homes = [root / f"{app_id}-{i}" for i in range(workers)]
    for home in homes:
        home.mkdir(parents=True)
    started = time.perf_counter()
    processes = [_start(bootstrap, home, app_id, env) for home in homes]
    try:
        await _caught_up(bootstrap, app_id, ends, *processes)
        return time.perf_counter() - started
    finally:
        for process in processes:
            stop_child(process)


def measure(root: Path, data: Dataset, codec: Codec) -> list[Figure]:
    from bench.stack import Stack

    results: list[tuple[int, int, int, float, float]] = []  # partitions, workers, n, s, raw/s
    for partitions in PARTITIONS:
        layout = TopicLayout(household_partitions=partitions)
        print(f"[bench] B8: {partitions} partitions ...", file=sys.stderr, flush=True)
        with Stack(root / f"b8-{partitions}p", postgres=False, layout=layout) as stack:
            asyncio.run(bench_data.preload(stack.bootstrap, data, codec))
            ends = asyncio.run(_end_offsets(stack.bootstrap, TOPICS))
            total = sum(ends.values())
            started = time.perf_counter()
            read = asyncio.run(raw_read(stack.bootstrap, TOPICS, decode=codec))
            raw_rate = read / (time.perf_counter() - started)
            if read != total:
                raise RuntimeError(f"raw read {read} records, end offsets say {total}")
            for workers in WORKERS:
                seconds = asyncio.run(
                    run_workers(stack.bootstrap, stack.root, partitions, workers, ends)
                )
                results.append((partitions, workers, total, seconds, raw_rate))
    return figures(results)


def figures(results: list[tuple[int, int, int, float, float]]) -> list[Figure]:
    base = next(n / s for p, w, n, s, _ in results if (p, w) == (12, 1))
    return [
        Figure(
            "B8",
            f"monitoring worker, start → caught up: {w} worker{'s' * (w > 1)}, {p} partitions",
            n / s,
            "records/s",
            "1 worker, 12 partitions",
            base,
            count=n,
            seconds=s,
            note=f"raw aiokafka consume + decode on this layout: {raw:,.0f} records/s",
            detail={"partitions": p, "workers": w},
        )
        for p, w, n, s, raw in results
    ]
