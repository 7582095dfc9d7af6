"""B10: the whole pipeline end to end — the simulated campaign through the visits API, the
monitoring, support and projector workers as processes, W of each — from the first POST until
everything is projected, against the raw Kafka path of the same events in the same run.

The pipeline is `shouwang demo --no-keep --workers W` itself (services/tools/demo): its own
broker and PostgreSQL, the services as separate processes, the campaign posted through the API
and its settle (every consumer's committed offset, and the projector's stored positions, past
the last record of every topic, twice in a row). Its wall time is the demo's own `ingest_seconds
+ settle_seconds`: from the first request until the services had processed the whole log.

The baseline: on a fresh broker of its own, the same events (the same seed and scale) produced
as `shouwang simulate --direct` does (aiokafka, acks=all, idempotent, personal fields sealed),
then read back and decoded by a raw aiokafka consumer: what Kafka and the client library alone
do with these records on this machine, with no service in between.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from pathlib import Path

from bench import data as bench_data
from bench.replay import raw_read
from bench.report import Figure
from services.contract.codec import Codec
from services.contract.inputs import MONITORING_INPUTS

COUNTY_SECONDS = 300.0  # the issue: the county (scale 1) end to end in under 5 minutes here
COUNTY_SCALE = 1.0


@dataclasses.dataclass(frozen=True)
class Run:
    scale: float
    workers: int
    events: int
    seconds: float  # first POST → everything projected
    ingest_seconds: float
    settle_seconds: float
    records_by_topic: dict[str, int]
    warnings: tuple[str, ...]


def settle_timeout(scale: float) -> float:
    """Longest wait for the services after the campaign: generous, as the bench's point is to
    measure the time, and a county at 1 worker took minutes here."""
    return 900.0 + 1200.0 * scale


def pipeline(root: Path, scale: float, workers: int) -> Run:
    """One `shouwang demo` run (no report kept open) at `scale` with `workers` of each worker."""
    from services.platform.config import Settings
    from services.tools.demo.orchestrator import DemoOptions, run_demo

    home = root / f"e2e-scale{scale:g}-{workers}w"
    home.mkdir(parents=True)
    home.chmod(0o755)  # PostgreSQL runs as an unprivileged account under root
    settings = dataclasses.replace(Settings.from_env(), home=home)
    options = DemoOptions(
        scale=scale,
        keep=False,
        out=home / "report",
        workers=workers,
        settle_timeout=settle_timeout(scale),
    )

    def say(line: str) -> None:
        if line.strip():
            print(f"[bench] B10 {scale:g}/{workers}w: {line}", file=sys.stderr, flush=True)

    report = run_demo(options, settings, say)
    run = report["run"]
    return Run(
        scale,
        workers,
        run["events_written"],
        run["ingest_seconds"] + run["settle_seconds"],
        run["ingest_seconds"],
        run["settle_seconds"],
        run["records_by_topic"],
        tuple(run["warnings"]),
    )


def baseline(root: Path, data: bench_data.Dataset, codec: Codec) -> tuple[float, float, int]:
    """The raw path on a fresh broker: seconds to produce, seconds to read + decode, events."""
    from bench.stack import Stack

    with Stack(root / "e2e-raw", postgres=False) as stack:
        started = time.perf_counter()
        produced = asyncio.run(bench_data.preload(stack.bootstrap, data, codec))
        produce_s = time.perf_counter() - started
        topics = sorted({e.topic.name for e in data.events})
        started = time.perf_counter()
        read = asyncio.run(raw_read(stack.bootstrap, topics, decode=codec))
        read_s = time.perf_counter() - started
    if produced != len(data.events) or read != produced:
        raise RuntimeError(f"raw path: {len(data.events)} events, {produced} acked, {read} read")
    return produce_s, read_s, produced


def measure(
    root: Path, scale: float, workers: tuple[int, ...], codec: Codec, data=None
) -> list[Figure]:
    """B10 at one scale: the raw baseline, then the pipeline with each worker count."""
    data = data if data is not None and data.scale == scale else bench_data.load(scale, codec)
    print(f"[bench] B10 {scale:g}: raw baseline, {len(data.events):,} events", file=sys.stderr)
    produce_s, read_s, count = baseline(root, data, codec)
    raw_rate = count / (produce_s + read_s)
    runs = [pipeline(root, scale, w) for w in workers]
    for run in runs:
        if run.events != count:
            raise RuntimeError(
                f"the demo posted {run.events:,} events at scale {scale:g}, the raw path "
                f"{count:,}: not the same campaign"
            )
    return figures(runs, raw_rate, produce_s, read_s)


def figures(runs: list[Run], raw_rate: float, produce_s: float, read_s: float) -> list[Figure]:
    out = []
    for run in runs:
        county = run.scale == COUNTY_SCALE
        inputs = sum(run.records_by_topic.get(t.name, 0) for t in MONITORING_INPUTS)
        note = (
            f"{run.events:,} events; campaign posted in {run.ingest_seconds:,.1f} s, settled "
            f"{run.settle_seconds:,.1f} s later; {run.records_by_topic.get('household.risk', 0):,}"
            f" assessments, {inputs:,} monitoring inputs in the log; raw: produce "
            f"{produce_s:,.1f} s + read and decode {read_s:,.1f} s"
        )
        if run.warnings:
            note += "; warnings: " + " | ".join(run.warnings)
        out.append(
            Figure(
                "B10",
                f"end to end, scale {run.scale:g}: API → monitoring → support → projector, "
                f"{run.workers} worker{'s' * (run.workers > 1)} each, first POST → all projected "
                f"({run.seconds:,.0f} s)",
                run.events / run.seconds,
                "events/s",
                "raw aiokafka produce (acks=all) + consume + decode, same events",
                raw_rate,
                f"< {COUNTY_SECONDS:.0f} s" if county else None,
                (run.seconds < COUNTY_SECONDS) if county else None,
                run.events,
                run.seconds,
                note,
                {"scale": run.scale, "workers": run.workers},
            )
        )
    return out
