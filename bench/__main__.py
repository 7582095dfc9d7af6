"""`python -m bench [--quick] [--only B3,B1]`: provision, measure, print the table, write JSON."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
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
    state_households: tuple[int, ...]  # B7: households recovered by a worker, per run
    console_scale: float  # B9: the county the console's pages are timed on (1.0 ≈ 29,000 hh)
    console_requests: int  # B9: timed requests per page
    # B10: (county scale, processes of each worker service per run) sent through the pipeline
    e2e_runs: tuple[tuple[float, tuple[int, ...]], ...]


FULL = Mode(
    "full",
    scale=0.5,
    min_seconds=5.0,
    ingest_records=4000,
    perf_records=200_000,
    latency_seconds=10.0,
    # 1M adds ~5 minutes (filling 2M changelog records, ~45 s recovery per store) and ~2.4 GiB
    # RSS (B7 extrapolates it; `--households 10000,100000,1000000` measures it)
    state_households=(10_000, 100_000),
    console_scale=1.0,  # the county scale: ~29,400 households, ~86,000 events
    console_requests=100,
    # the county with 2 and 1 workers each, then the province (scale 10, ~960,000 events) with
    # 2: the province row, ~40 minutes of the full bench here (bench/README.md)
    e2e_runs=((1.0, (2, 1)), (10.0, (2,))),
)
QUICK = Mode(
    "quick",
    scale=0.02,
    min_seconds=0.5,
    ingest_records=300,
    perf_records=20_000,
    latency_seconds=2.0,
    state_households=(1_000, 10_000),
    console_scale=0.05,
    console_requests=20,
    e2e_runs=((0.02, (2,)),),
)
ALL = ("B3", "B1", "B4", "B5", "B2", "B6", "B7", "B8", "B9", "B10")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small run of the same code")
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated bench ids")
    parser.add_argument("--scale", type=float, help="override the county scale")
    parser.add_argument("--data-dir", type=Path, help="where the broker and database live")
    parser.add_argument("--results", type=Path, help="directory for the JSON (bench/results)")
    parser.add_argument(
        "--console-requests", type=int, help="B9: timed requests per page (default: the mode's)"
    )
    parser.add_argument(
        "--households",
        help="B7: comma-separated household counts to recover (default: the mode's)",
    )
    parser.add_argument(
        "--e2e-scales",
        help="B10: comma-separated county scales through the whole pipeline (default: the "
        "mode's: full 1 and 10, the province, ~960,000 events; quick 0.02)",
    )
    parser.add_argument(
        "--e2e-workers",
        help="B10: comma-separated processes per worker service, one run each at every scale "
        "(default: the mode's: full 2,1 for the county and 2 for the province; quick 2)",
    )
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> Report:
    mode = QUICK if args.quick else FULL
    scale = args.scale or mode.scale
    only = [b.strip().upper() for b in args.only.split(",") if b.strip()]
    unknown = sorted(set(only) - set(ALL))
    if unknown:
        raise SystemExit(
            f"--only: unknown bench ids {', '.join(unknown)} (known: {', '.join(ALL)})"
        )
    if args.console_requests is not None and args.console_requests < 1:
        raise SystemExit("--console-requests: at least 1")
    needs_kafka = any(b in only for b in ("B1", "B2", "B4", "B5", "B6", "B7"))
    # B7 reads the monitoring view, whose token table is in PostgreSQL.
    needs_postgres = any(b in only for b in ("B5", "B6", "B7"))
    from services.contract.codec import Codec
    from services.platform.localstack.jars import kafka_version

    codec = Codec.default()
    households = _households(args.households) if args.households else mode.state_households
    e2e_runs = _e2e_runs(mode, args.e2e_scales, args.e2e_workers)
    report = Report(
        mode.name,
        machine.describe(
            kafka_version() if needs_kafka or {"B8", "B9", "B10"} & set(only) else None
        ),
        {
            "seed": bench_data.SEED,
            "scale": scale,
            **mode.__dict__,
            "state_households": households,
            "e2e_runs": e2e_runs,
            "only": only,
        },
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
                _kafka_benches(stack, dataset, codec, households, attempt, report, mode)
    if "B8" in only:
        from bench import scaleout

        # one fresh broker per partition count, after the main stack is gone
        with tempfile.TemporaryDirectory(prefix="shouwang-bench-b8-") as tmp:
            attempt("B8", lambda: scaleout.measure(Path(tmp), dataset, codec))
    if "B9" in only:
        from bench import console

        # its own broker and PostgreSQL, after the main stack is gone, on its own county scale
        console_scale = args.scale or mode.console_scale
        requests = args.console_requests or mode.console_requests
        report.parameters["console_scale"] = console_scale
        report.parameters["console_requests"] = requests
        with tempfile.TemporaryDirectory(prefix="shouwang-bench-b9-") as tmp:
            root = Path(tmp)
            root.chmod(0o711)
            attempt(
                "B9",
                lambda: console.measure(
                    root,
                    dataset if console_scale == scale else bench_data.load(console_scale, codec),
                    codec,
                    requests,
                ),
            )
    if "B10" in only:
        from bench import endtoend, estimate

        # each run is `shouwang demo`: its own broker and PostgreSQL, after the others are gone
        for e2e_scale, e2e_workers in e2e_runs:
            with tempfile.TemporaryDirectory(prefix="shouwang-bench-b10-") as tmp:
                root = Path(tmp)
                root.chmod(0o711)
                attempt(
                    "B10",
                    lambda root=root, s=e2e_scale, w=e2e_workers: endtoend.measure(
                        root, s, w, codec, dataset
                    ),
                )
        report.figures.extend(estimate.figures(report.figures))
    report.not_measured = [
        NotMeasured(b, "-", "not selected (--only)") for b in ALL if b not in only
    ]
    return report


def _households(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        raise SystemExit(f"--households {text!r}: expected comma-separated whole numbers") from None
    if not counts or any(n < 1 or n >= 10**9 for n in counts):
        raise SystemExit(f"--households {text!r}: each count from 1 to 999,999,999")
    return counts


def _e2e_runs(
    mode: Mode, scales_text: str | None, workers_text: str | None
) -> tuple[tuple[float, tuple[int, ...]], ...]:
    """B10's runs: the mode's, or every given scale with the given worker counts (a scale's
    own counts from the mode when only scales are given, else the mode's first)."""
    scales = _numbers("--e2e-scales", scales_text, float)
    workers = _numbers("--e2e-workers", workers_text, int)
    if any(w > 12 for w in workers):
        raise SystemExit("--e2e-workers: at most 12 (the household topics' partitions)")
    if not scales and not workers:
        return mode.e2e_runs
    by_scale = dict(mode.e2e_runs)
    first = mode.e2e_runs[0][1]
    return tuple((s, workers or by_scale.get(s, first)) for s in scales or tuple(by_scale))


def _numbers(option: str, text: str | None, kind: type) -> tuple:
    """Comma-separated positive numbers of `kind` (empty when `text` is None)."""
    if text is None:
        return ()
    try:
        values = tuple(kind(n) for n in text.split(",") if n.strip())
    except ValueError:
        raise SystemExit(f"{option} {text!r}: expected comma-separated numbers") from None
    if not values or any(not v > 0 for v in values):
        raise SystemExit(f"{option} {text!r}: each must be positive")
    return values


def _kafka_benches(stack, dataset, codec, households, attempt, report, mode) -> None:
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

    def b7():
        from bench import state

        return asyncio.run(state.measure(stack, dataset, codec, households))

    # B7 first: its workers start at the inputs' end offsets anyway, but an empty broker
    # keeps the machine's page cache for the changelogs being recovered
    attempt("B7", b7)
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
    # The bench runs its own PLAINTEXT broker; a shell's Kafka security settings (meant for a
    # real cluster) would reach the service code and worker subprocesses and fail against it.
    for name in [
        n for n in os.environ if n.startswith(("KAFKA_SECURITY", "KAFKA_SASL", "KAFKA_SSL"))
    ]:
        print(f"bench: ignoring {name} (the bench's own broker is PLAINTEXT)", file=sys.stderr)
        del os.environ[name]
    # aiokafka warns on every retried produce while a fresh broker settles partition leaders.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    report = run(args)
    print(render(report))
    path = report.write(args.results) if args.results else report.write()
    print(f"\nwritten: {path}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
