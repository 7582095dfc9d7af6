"""`python -m bench [--quick] [--only B3,B1]`: provision, measure, print the table, write JSON."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench import data as bench_data
from bench import fold, machine
from bench.report import NotMeasured, Report, render


@dataclass(frozen=True)
class Mode:
    name: str
    scale: float  # synthetic county scale (1.0 ≈ 85,000 events)
    min_seconds: float  # minimum measuring time of in-process (pure) loops
    ingest_records: int  # B1: visit records sent over HTTP and by the raw producer
    perf_records: int  # B1 ceiling: ProducerPerformance records
    latency_seconds: float  # B6: how long each offered rate runs


FULL = Mode(
    "full",
    scale=0.5,
    min_seconds=5.0,
    ingest_records=4000,
    perf_records=200_000,
    latency_seconds=10.0,
)
QUICK = Mode(
    "quick",
    scale=0.02,
    min_seconds=0.5,
    ingest_records=300,
    perf_records=20_000,
    latency_seconds=2.0,
)
ALL = ("B3", "B1", "B4", "B5", "B2", "B6")
NOT_MEASURED = [
    NotMeasured("B7", "table bytes/household, RSS, changelog recovery", "not built yet (time)"),
    NotMeasured("B8", "scale-out: workers × partitions", "not built yet (time)"),
]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small run of the same code")
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated bench ids")
    parser.add_argument("--scale", type=float, help="override the county scale")
    parser.add_argument("--data-dir", type=Path, help="where the broker and database live")
    parser.add_argument("--results", type=Path, help="directory for the JSON (bench/results)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> Report:
    mode = QUICK if args.quick else FULL
    scale = args.scale or mode.scale
    only = [b.strip().upper() for b in args.only.split(",") if b.strip()]
    needs_kafka = any(b in only for b in ("B1", "B2", "B4", "B5", "B6"))
    needs_postgres = "B5" in only or "B6" in only
    from services.contract.codec import Codec
    from services.localstack.kafka import kafka_version

    codec = Codec.default()
    report = Report(
        mode.name,
        machine.describe(kafka_version() if needs_kafka else None),
        {"seed": bench_data.SEED, "scale": scale, **mode.__dict__, "only": only},
    )
    dataset = bench_data.load(scale, codec)
    report.parameters["events"] = len(dataset.events)

    def attempt(bench: str, measure) -> None:
        if bench not in only:
            return
        print(f"[bench] {bench} ...", file=sys.stderr, flush=True)
        try:
            report.figures.extend(measure())
        except Exception as exc:  # a failed bench is reported, never hidden or faked
            traceback.print_exc()
            report.errors.append({"bench": bench, "error": f"{type(exc).__name__}: {exc}"})

    attempt("B3", lambda: fold.measure(dataset, codec, mode.min_seconds))
    if needs_kafka:
        from bench.stack import Stack

        with tempfile.TemporaryDirectory(prefix="shouwang-bench-") as tmp:
            root = args.data_dir or Path(tmp)
            # PostgreSQL started as root runs as an unprivileged account that must enter it.
            root.chmod(0o711)
            with Stack(root, postgres=needs_postgres) as stack:
                _kafka_benches(stack, dataset, codec, mode, attempt, report)
    measured = {f.bench for f in report.figures} | {e["bench"] for e in report.errors}
    report.not_measured = [n for n in NOT_MEASURED if n.bench not in measured] + [
        NotMeasured(b, "-", "not selected (--only)") for b in ALL if b not in only
    ]
    return report


def _kafka_benches(stack, dataset, codec, mode, attempt, report) -> None:
    def b1():
        from bench import ingest

        return asyncio.run(ingest.measure(stack, dataset, codec, mode))

    def b2():
        from bench import worker

        return asyncio.run(worker.measure(stack, dataset, codec))

    def b6():
        from bench import latency

        return asyncio.run(latency.measure(stack, dataset, codec, mode.latency_seconds))

    def b4():
        from bench import replay

        return asyncio.run(replay.measure(stack, dataset, codec))

    def b5():
        from bench import projection

        return asyncio.run(projection.measure(stack, dataset, codec))

    if {"B2", "B4"} & set(report.parameters["only"]):
        print("[bench] preloading the county into Kafka ...", file=sys.stderr, flush=True)
        produced = asyncio.run(bench_data.preload(stack.bootstrap, dataset, codec))
        report.parameters["preloaded"] = produced
    attempt("B4", b4)  # B4 and B2 before B1, which adds visits to the topics
    attempt("B2", b2)
    attempt("B5", b5)
    attempt("B1", b1)
    attempt("B6", b6)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    # aiokafka warns on every retried produce while a fresh broker settles partition leaders.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    report = run(args)
    print(render(report))
    path = report.write(args.results) if args.results else report.write()
    print(f"\nwritten: {path}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
