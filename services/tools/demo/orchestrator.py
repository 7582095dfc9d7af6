"""Run the demo: private Kafka and PostgreSQL, the services as processes, campaign, report.

Everything the demo starts lives under `<home>/demo` (servers' data, service logs, faust's
table directories) and is stopped when it ends, normally, on failure, on Ctrl-C or SIGTERM.
Each run starts from a clean slate: a previous run's servers and data are removed first.
This module holds the sequence; the stack is in `stack`, the wait for the services in `settle`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from services.contract.topics import INPUT_TOPICS
from services.platform.config import Settings
from services.platform.localstack.kafka import LocalKafka
from services.platform.localstack.ports import LOOPBACK, free_ports
from services.platform.localstack.postgres import LocalPostgres
from services.tools.demo.batching_sink import TypeBatchingSink
from services.tools.demo.errors import DemoError
from services.tools.demo.html_report import render_html
from services.tools.demo.read_model import read_facts
from services.tools.demo.report import RunStats, build_report, render_text
from services.tools.demo.risk_log import read_assessments
from services.tools.demo.settle import wait_caught_up
from services.tools.demo.stack import Endpoints, child_env, clean_slate, start_servers
from services.tools.demo.supervisor import ServiceDied, Supervisor


@dataclass(frozen=True)
class DemoOptions:
    """What `shouwang demo` was asked for."""

    scale: float = 0.1
    seed: int = 2020
    until: dt.date | None = None  # monitoring goes on after the campaign up to this day
    keep: bool = True
    out: Path | None = None  # default: <home>/demo
    rate: float = 0.0  # events per second through the API; 0 = as fast as it takes them
    settle_timeout: float = 900.0  # longest wait for the services to catch up
    support_stall: float = 90.0  # give up on a support worker that makes no progress this long
    # processes each of monitoring, support and the projector runs, one consumer group each
    workers: int = 1


def run_demo(options: DemoOptions, settings: Settings, say: Callable[[str], None] = print) -> dict:
    """Run the whole demo; returns the report. Stops everything it started before returning."""
    started = time.monotonic()
    partitions = settings.layout.household_partitions
    if not 1 <= options.workers <= partitions:
        # a worker beyond the partition count would get nothing to do
        raise DemoError(
            f"workers: {options.workers} asked, from 1 to {partitions} (the household topics' "
            "partitions, SHOUWANG_PARTITIONS)"
        )
    run_dir = settings.home / "demo"
    out = (options.out or run_dir).resolve()
    clean_slate(run_dir, say)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o755)  # PostgreSQL runs as an unprivileged account under root
    kafka = LocalKafka(run_dir / "stack" / "kafka", detach=True)
    postgres = LocalPostgres(run_dir / "stack" / "postgres")
    supervisor: Supervisor | None = None
    previous_term = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        say(f"starting Kafka and PostgreSQL under {run_dir / 'stack'} ...")
        start_servers(kafka, postgres)
        ports = free_ports(5)
        ends = Endpoints(kafka.bootstrap, postgres.database_url, *ports)
        say(f"  Kafka {ends.bootstrap}, PostgreSQL {ends.database_url}")
        supervisor = Supervisor(run_dir, child_env(settings, ends))
        report, token = asyncio.run(_run(options, settings, ends, supervisor, out, started, say))
        if options.keep:
            _keep_running(supervisor, ends, token, say)
        return report
    except KeyboardInterrupt:
        say("\ninterrupted; stopping everything the demo started ...")
        raise
    finally:
        # A second Ctrl-C must not leave servers behind half-stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if supervisor is not None:
                supervisor.stop_all()
            postgres.stop()
            kafka.stop()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous_term)
        say("stopped the services, Kafka and PostgreSQL")


async def _run(
    options: DemoOptions,
    settings: Settings,
    ends: Endpoints,
    supervisor: Supervisor,
    out: Path,
    started: float,
    say: Callable[[str], None],
) -> tuple[dict, str]:
    """Everything between the servers' start and the report; returns it and the API token."""
    from services.platform.kafka.admin import ensure_topics
    from services.platform.postgres.migrate import apply_migrations
    from services.tools.demo.level_tokens import LevelTokens
    from services.tools.simulation.parameters import CampaignCalendar, SimulationParameters
    from services.tools.simulation.runner import simulate
    from services.tools.simulation.sinks.api import ApiSink

    await ensure_topics(ends.bootstrap, settings.layout)
    await apply_migrations(ends.database_url)
    token = _issue_token(supervisor.env)
    visits_url = f"http://{LOOPBACK}:{ends.visits_port}"
    monitoring_url = f"http://{LOOPBACK}:{ends.monitoring_port}"
    # The door checks each review decision's procedure order against the monitoring worker's
    # household view, read with a read-only token of its own (visits/README.md).
    door_token = supervisor.run_dir / "secrets" / "visits-monitoring-token"
    _write_secret(
        door_token,
        _issue_token(
            supervisor.env, "auditor", "demo-visits-door",
            "shouwang demo: the visits door reads the household view",
        ),
    )  # fmt: skip
    supervisor.start(
        "visits",
        ["visits"],
        {
            "SHOUWANG_VISITS_HOST": LOOPBACK,
            "SHOUWANG_VISITS_PORT": str(ends.visits_port),
            "SHOUWANG_VISITS_MONITORING_URL": monitoring_url,
            "SHOUWANG_VISITS_MONITORING_TOKEN_FILE": str(door_token),
        },
        {"API": visits_url, "metrics": f"{visits_url}/metrics"},
    )
    _start_workers(supervisor, ends, options.workers)
    console_url = f"http://{LOOPBACK}:{ends.console_port}"
    supervisor.start(
        "console",
        ["console"],
        {
            "SHOUWANG_CONSOLE_PORT": str(ends.console_port),
            "SHOUWANG_CONSOLE_VISITS_URL": visits_url,
        },
        {"console": f"{console_url}/", "metrics": f"{console_url}/metrics"},
    )
    for service in supervisor.services:
        say(f"  {service.name}: pid {service.pid}, log {service.log_file}")
    say("waiting for the visits API ...")
    await _wait_ready(f"{visits_url}/readyz", supervisor, 120.0)

    parameters = SimulationParameters(
        seed=options.seed, scale=options.scale, calendar=CampaignCalendar(until=options.until)
    )
    say(
        f"running the campaign (seed {options.seed}, scale {options.scale:g}: "
        f"{parameters.lifted_households:,} lifted households) through {visits_url} ..."
    )
    progress = _Progress(supervisor, say)
    ingest_started = time.monotonic()
    # Review decisions go with their level's token (visits/domain/levels.py): village-level and
    # township reviewer tokens per township, issued once the projector knows its households.
    levels = LevelTokens(Settings.from_env(supervisor.env), token)
    async with TypeBatchingSink(ApiSink(visits_url, token, level_tokens=levels)) as sink:
        summary = await _guarded(
            simulate(parameters, sink, rate=options.rate, progress=progress), supervisor
        )
    ingest_seconds = time.monotonic() - ingest_started
    door = await _door_checks(f"{visits_url}/metrics")
    say(
        f"  {summary.events:,} events accepted in {ingest_seconds:.1f} s "
        f"({summary.events / max(ingest_seconds, 1e-9):,.0f}/s), review decisions with "
        f"{levels.issued} village-level and township reviewer tokens; waiting for the services ..."
    )

    settle_started = time.monotonic()
    lag, records, warnings = await wait_caught_up(
        ends,
        supervisor,
        say,
        settle_timeout=options.settle_timeout,
        support_stall=options.support_stall,
    )
    settle_seconds = time.monotonic() - settle_started
    calendar = parameters.calendar
    run = RunStats(
        seed=options.seed,
        scale=options.scale,
        campaign_start=calendar.start,
        campaign_end=calendar.end,
        events_written=summary.events,
        ingest_seconds=ingest_seconds,
        settle_seconds=settle_seconds,
        wall_seconds=time.monotonic() - started,
        records_by_topic=records,
        input_topics=tuple(t.name for t in INPUT_TOPICS),
        lag=lag.by_consumer,
        warnings=tuple(warnings),
    )
    facts = await read_facts(ends.database_url, today=calendar.end)  # the county's last day
    report = build_report(facts, run, await read_assessments(ends.bootstrap))
    report["door"] = door
    report["services"] = {s.name: s.urls for s in supervisor.services}
    report["generated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    _write(report, out, say)
    return report, token


def _start_workers(supervisor: Supervisor, ends: Endpoints, workers: int) -> None:
    """Start `workers` processes each of monitoring, support and the projector.

    The processes of one service share its consumer group, so Kafka splits the partitions
    between them; the first of each listens on the demo's own ports, the others on free ones.
    """
    extra = iter(free_ports(3 * (workers - 1)))
    for index in range(workers):
        suffix = f"-{index + 1}" if index else ""
        monitoring_port = ends.monitoring_port if index == 0 else next(extra)
        support_port = ends.support_metrics_port if index == 0 else next(extra)
        projector_port = ends.projector_metrics_port if index == 0 else next(extra)
        monitoring_url = f"http://{LOOPBACK}:{monitoring_port}"
        supervisor.start(
            f"monitoring{suffix}",
            ["monitoring"],
            # Assess as of each household's latest event: the campaign is in 2020, and the
            # demo shows what the system found then, not what is overdue today.
            {
                "SHOUWANG_MONITORING_PORT": str(monitoring_port),
                "SHOUWANG_MONITORING_CLOCK": "event",
            },
            {
                "households": f"{monitoring_url}/v1/households/{{id}}",
                "metrics": f"{monitoring_url}/metrics",
            },
        )
        supervisor.start(
            f"support{suffix}",
            ["support"],
            {"SHOUWANG_SUPPORT_METRICS_PORT": str(support_port)},
            {"metrics": f"http://{LOOPBACK}:{support_port}/metrics"},
        )
        supervisor.start(
            f"projector{suffix}",
            ["projector"],
            {"SHOUWANG_PROJECTOR_METRICS_PORT": str(projector_port)},
            {"metrics": f"http://{LOOPBACK}:{projector_port}/metrics"},
        )


def _issue_token(
    env: dict[str, str],
    kind: str = "operator",
    holder: str = "demo-simulator",
    note: str = "shouwang demo: simulated apps and feeds",
) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "tokens", "issue", "--kind", kind,
         "--holder", holder, "--note", note],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    match = re.search(r"^token \(shown once[^:]*: (\S+)$", result.stdout, re.M)
    if result.returncode != 0 or match is None:
        raise DemoError(f"`shouwang tokens issue` failed: {result.stderr.strip()[-2000:]}")
    return match.group(1)


async def _door_checks(metrics_url: str) -> dict:
    """The visits API's procedure check over the campaign, from its own /metrics: decisions
    judged against the monitoring view (taken, refused) and accepted unchecked, by reason."""
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.get(metrics_url) as response:
            text = await response.text()
    door: dict = {"taken": 0, "refused": 0, "unchecked": {}}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.endswith("_total") or not sample.value:
                continue
            if family.name == "shouwang_visits_procedure_checks":
                door[sample.labels["outcome"]] = int(sample.value)
            elif family.name == "shouwang_visits_procedure_unchecked":
                door["unchecked"][sample.labels["reason"]] = int(sample.value)
    return door


def _write_secret(path: Path, secret: str) -> None:
    """`secret` in a file only its owner reads (a fresh demo each run: replaced if there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secret + "\n")


async def _wait_ready(url: str, supervisor: Supervisor, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            supervisor.check()
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise DemoError(f"{url} was not ready within {seconds:.0f} s")
            await asyncio.sleep(0.5)


async def _guarded(work, supervisor: Supervisor, every: float = 1.0):
    """Await `work` while checking every `every` seconds that no service has died."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            supervisor.check()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class _Progress:
    def __init__(self, supervisor: Supervisor, say: Callable[[str], None], every: float = 10.0):
        self.supervisor, self.say, self.every = supervisor, say, every
        self.last = time.monotonic()

    def __call__(self, summary) -> None:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            day = f"{summary.last_recorded:%Y-%m-%d}" if summary.last_recorded else "-"
            self.say(f"  {summary.events:,} events sent, campaign at {day}")


def _write(report: dict, out: Path, say: Callable[[str], None]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = render_text(report)
    (out / "report.txt").write_text(text + "\n", encoding="utf-8")
    (out / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    page = out / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    say("")
    say(text)
    say("")
    say(f"report: {page} (also report.json and report.txt beside it)")


def _keep_running(
    supervisor: Supervisor, ends: Endpoints, token: str, say: Callable[[str], None]
) -> None:
    say("\nthe services stay up until Ctrl-C:")
    for service in supervisor.services:
        for label, url in service.urls.items():
            say(f"  {service.name:10} {label:10} {url}")
    say(f"  kafka      bootstrap  {ends.bootstrap}")
    say(f"  postgres   url        {ends.database_url}")
    say(f"  logs in {supervisor.log_dir}")
    say(f"  operator token (this demo's database only): {token}")
    console = next((s.urls["console"] for s in supervisor.services if s.name == "console"), None)
    if console:
        say(f"  open the console at {console} and log in with that token")
    while True:
        try:
            supervisor.check()
        except ServiceDied as exc:
            raise DemoError(str(exc)) from exc
        time.sleep(1.0)
