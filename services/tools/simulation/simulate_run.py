"""What `shouwang simulate` runs: the chosen sink, the campaign written through it, the summary."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from services.platform.config import Settings, SettingsError, kafka_bootstrap
from services.platform.postgres.database import local_database_url
from services.tools.simulation.api_target import API_TOKEN_ENV, API_URL_ENV, DEFAULT_API_URL
from services.tools.simulation.parameters import CampaignCalendar, SimulationParameters
from services.tools.simulation.runner import simulate
from services.tools.simulation.sinks.api import ApiSink
from services.tools.simulation.sinks.base import EventSink, SinkError
from services.tools.simulation.sinks.jsonl import JsonLinesSink
from services.tools.simulation.sinks.kafka import KafkaSink
from services.tools.simulation.summary import Summary


def run(args: argparse.Namespace, settings: Settings) -> int:
    parameters = SimulationParameters(
        seed=args.seed,
        scale=args.scale,
        days=args.days,
        calendar=CampaignCalendar(until=args.until),
    )
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
    progress = None if args.quiet else _Progress()
    async with sink:
        if isinstance(sink, ApiSink):
            await sink.probe("--api" if args.api else API_URL_ENV)
        return await simulate(
            parameters, sink, rate=args.rate, batch_size=args.batch_size, progress=progress
        )


def _sink(args: argparse.Namespace, settings: Settings) -> EventSink:
    if args.out is not None:
        return JsonLinesSink(sys.stdout if str(args.out) == "-" else args.out)
    if args.direct:
        return KafkaSink(
            kafka_bootstrap(settings),
            settings.layout,
            keys_database_url=local_database_url(settings),
        )
    url = args.api or os.environ.get(API_URL_ENV) or DEFAULT_API_URL
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
