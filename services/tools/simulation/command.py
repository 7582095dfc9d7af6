"""`shouwang simulate`: run the synthetic county through the visits API, Kafka or a file."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from services.platform.config import Settings, SettingsError, kafka_bootstrap

# The CLI imports this module to build its parser; the generator and the sinks are imported
# by `run` (tests/unit/test_cli.py).
if TYPE_CHECKING:
    from services.tools.simulation.parameters import SimulationParameters
    from services.tools.simulation.sinks.base import EventSink
    from services.tools.simulation.summary import Summary

API_URL_ENV = "SHOUWANG_VISITS_URL"
API_TOKEN_ENV = "SHOUWANG_VISITS_TOKEN"


def add_simulate_command(commands: argparse._SubParsersAction) -> None:
    """Register `simulate` on the CLI's subcommands."""
    parser = commands.add_parser(
        "simulate",
        help="run a synthetic county's hundred-day campaign into the system",
        description=(
            "Generate a seeded, reproducible county modelled on Dianjiang 2020 and write it "
            "through the visits API (default), straight to Kafka (--direct) or to a JSON-lines "
            "file (--out). Prints counts by type, households by status and finding rates."
        ),
    )
    parser.add_argument("--seed", type=int, default=2020, help="random seed (default 2020)")
    parser.add_argument(
        "--scale",
        type=_positive_float,
        default=1.0,
        help="county size: 1 = Dianjiang (9,803 lifted households), 0.01 = ~100 (default 1)",
    )
    parser.add_argument(
        "--days", type=_non_negative_int, default=None, help="stop after this many campaign days"
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--direct",
        action="store_true",
        help="produce Avro straight to Kafka (KAFKA_BOOTSTRAP_SERVERS or the local stack)",
    )
    target.add_argument("--out", type=Path, help="write JSON lines to this file ('-' = stdout)")
    target.add_argument(
        "--api", help=f"visits API base URL (default ${API_URL_ENV}, else http://127.0.0.1:8081)"
    )
    parser.add_argument(
        "--token", help=f"bearer token for the visits API (default ${API_TOKEN_ENV})"
    )
    parser.add_argument(
        "--rate",
        type=_non_negative_float,
        default=0.0,
        help="events per second (default 0 = as fast as possible)",
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, default=500, help="events per write (default 500)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from services.tools.simulation.parameters import SimulationParameters
    from services.tools.simulation.sinks.base import SinkError

    parameters = SimulationParameters(seed=args.seed, scale=args.scale, days=args.days)
    sink = _sink(args, settings)
    started = time.monotonic()
    try:
        summary = asyncio.run(_run(parameters, sink, args))
    except SinkError as exc:
        print(f"shouwang simulate: {exc}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    report = sys.stderr if args.out is not None and str(args.out) == "-" else sys.stdout
    print(summary.render(), file=report)
    rate = summary.events / elapsed if elapsed > 0 else 0.0
    print(f"wrote {summary.events} events in {elapsed:.1f} s ({rate:,.0f} events/s)", file=report)
    return 0


async def _run(parameters: SimulationParameters, sink: EventSink, args: argparse.Namespace):
    from services.tools.simulation.runner import simulate

    progress = None if args.quiet else _Progress()
    async with sink:
        return await simulate(
            parameters, sink, rate=args.rate, batch_size=args.batch_size, progress=progress
        )


def _sink(args: argparse.Namespace, settings: Settings) -> EventSink:
    if args.out is not None:
        from services.tools.simulation.sinks.jsonl import JsonLinesSink

        return JsonLinesSink(sys.stdout if str(args.out) == "-" else args.out)
    if args.direct:
        from services.platform.postgres.database import local_database_url
        from services.tools.simulation.sinks.kafka import KafkaSink

        return KafkaSink(
            kafka_bootstrap(settings),
            settings.layout,
            keys_database_url=local_database_url(settings),
        )
    from services.tools.simulation.sinks.api import ApiSink

    url = args.api or os.environ.get(API_URL_ENV) or "http://127.0.0.1:8081"
    token = args.token or os.environ.get(API_TOKEN_ENV)
    if not token:
        raise SettingsError(
            f"the visits API needs a bearer token: pass --token or set {API_TOKEN_ENV} "
            "(or use --direct / --out)"
        )
    return ApiSink(url, token)


class _Progress:
    """A line on stderr every few seconds: events written and the rate."""

    def __init__(self, every_seconds: float = 5.0):
        self.every = every_seconds
        self.started: float | None = None  # the first batch, after planning
        self.last = 0.0

    def __call__(self, summary: Summary) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started = self.last = now
            return
        if now - self.last >= self.every:
            self.last = now
            rate = summary.events / (now - self.started)
            day = f"{summary.last_recorded:%Y-%m-%d}" if summary.last_recorded else "-"
            print(f"  {summary.events} events, at {day}, {rate:,.0f}/s", file=sys.stderr)


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value
