"""Entrypoints: `shouwang replay`, `shouwang explain`, `shouwang archive export|verify`.

Wiring only: settings → sources (Kafka or an archive) → the pure replay/explain → output.
Every command here only reads the log (no consumer group, no commits) and the read model, so
Ctrl-C at any point leaves nothing half-done; `archive export` writes `.partial` files and
replaces the manifest last.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from services.contract.topics import CATALOGUE, RISK, TopicLayout
from services.platform.config import Settings

# The CLI imports this module to build its parser: the log readers (aiokafka) and the codec are
# imported by the commands that use them (tests/unit/test_cli.py).
if TYPE_CHECKING:
    from services.audit.replay import Difference, Replay
    from services.platform.kafka.log import KafkaLog, LogRecord, Range

INTERRUPTED = 130


class Progress:
    """A one-line bar with events/second on a terminal; a plain line every few seconds else."""

    def __init__(self, out: TextIO, label: str, every: float = 5.0):
        self.out, self.label, self.every = out, label, every
        self.tty = out.isatty()
        self.started = self.last = time.monotonic()
        self.total: int | None = None
        self.count = 0

    def __call__(self, count: int) -> None:
        self.count = count
        now = time.monotonic()
        if now - self.last < (0.2 if self.tty else self.every):
            return
        self.last = now
        self._show(now)

    def _show(self, now: float, end: str = "") -> None:
        rate = self.count / max(now - self.started, 1e-9)
        if self.tty:
            if self.total:
                done = min(self.count / self.total, 1.0)
                bar = "#" * int(done * 30)
                text = f"\r{self.label} [{bar:<30}] {self.count}/{self.total} {rate:,.0f} ev/s"
            else:
                text = f"\r{self.label} {self.count} records {rate:,.0f} ev/s"
            self.out.write(text + end)
        else:
            of = f"/{self.total}" if self.total else ""
            self.out.write(f"{self.label}: {self.count}{of} records, {rate:,.0f} events/s\n")
        self.out.flush()

    def done(self) -> float:
        now = time.monotonic()
        self._show(now, "\n" if self.tty else "")
        return self.count / max(now - self.started, 1e-9)


def _offsets(text: str) -> dict[tuple[str, int], int]:
    """`topic:partition=offset,...`"""
    result = {}
    for part in text.split(","):
        where, _, offset = part.partition("=")
        topic, _, partition = where.rpartition(":")
        result[(topic, int(partition))] = int(offset)
    return result


def _span(args: argparse.Namespace) -> Range:
    from services.audit.explain import moment
    from services.platform.kafka.log import Range

    start = start_offsets = None
    if args.start:
        if "=" in args.start:
            start_offsets = _offsets(args.start)
        else:
            start = moment(args.start) if len(args.start) != 10 else _day_start(args.start)
    end = moment(args.to) if args.to else None
    return Range(start=start, start_offsets=start_offsets, end=end)


def _day_start(text: str) -> datetime:
    from services.audit.explain import moment

    return moment(text + "T00:00:00")


async def _read(source, replay_or_sink, progress: Progress) -> int:
    count = 0
    async for batch in source:
        if progress.total is None and getattr(replay_or_sink, "total", None):
            progress.total = replay_or_sink.total
        for record in batch:
            replay_or_sink.feed(record)
        count += len(batch)
        progress(count)
    return count


class _Fed:
    def __init__(self, replay: Replay, log: KafkaLog | None):
        self.replay, self.log = replay, log

    @property
    def total(self) -> int | None:
        return self.log.total if self.log else None

    def feed(self, record: LogRecord) -> None:
        self.replay.feed(record)


async def run_replay_async(
    args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO
) -> int:
    from services.audit import archive
    from services.audit.explain import moment
    from services.audit.readmodel_check import compare_readmodel, expected_rows
    from services.audit.replay import Replay
    from services.contract.codec import Codec
    from services.contract.inputs import MONITORING_INPUTS
    from services.monitoring.adapters.policy_files import load_policies
    from services.platform.kafka.log import KafkaLog

    codec, policies = Codec.default(), load_policies()
    replay = Replay(
        codec, policies, pinned_policy=args.policy, household_prefix=args.household_prefix
    )
    topics = [t.name for t in MONITORING_INPUTS] + [RISK.name]
    span = _span(args)
    if args.archive:
        log = None
        source = archive.batches_of(Path(args.archive), set(topics))
    else:
        from services.platform.config import kafka_bootstrap

        log = KafkaLog(kafka_bootstrap(settings), topics, span)
        source = log.batches()
    progress = Progress(err, "replay")
    fed = _Fed(replay, log)
    await _read(source, fed, progress)
    rate = progress.done()
    print(
        f"read {replay.records} records ({rate:,.0f} events/s), applied {replay.applied}, "
        f"not applicable {len(replay.rejected)}, households {len(replay.households)}",
        file=out,
    )
    selected = replay.selected(args.township)
    as_of = moment(args.to) if args.to else None
    counts: Counter[tuple[str, str]] = Counter()
    for h in selected:
        a = replay.assess_latest(h, as_of)
        if a is not None:
            counts[(a.workflow, a.category or "-")] += 1
    for (workflow, category), n in sorted(counts.items()):
        print(f"  {workflow:22} {category:18} {n}", file=out)
    if not args.verify:
        return 0
    differences: list[Difference] = []
    if span.start or span.start_offsets:
        print(
            "verify: skipped, a replay that does not start at the beginning rebuilds partial "
            "state and cannot reproduce the chains",
            file=err,
        )
        return 2
    derived, diffs = replay.verify_emitted(args.township)
    differences += diffs
    print(f"verify: {len(derived)} emitted assessments re-derived from the log", file=out)
    if not args.no_readmodel:
        expected = expected_rows(replay, derived, args.township)
        found_rows, found_ids = await _read_model(settings, list(expected))
        differences += compare_readmodel(expected, found_rows, found_ids)
        print(f"verify: {len(expected)} households compared with the read model", file=out)
    for d in differences:
        print(d.line(), file=out)
    print(f"verify: {len(differences)} difference(s)", file=out)
    return 1 if differences else 0


async def _read_model(settings: Settings, households: list[str]):
    import asyncpg

    from services.platform.postgres.database import database_for

    conn = await asyncpg.connect(database_for(settings, "reader").url)
    try:
        rows = await conn.fetch(
            "SELECT household_id, township, village, grp, registration_status, members, "
            "labourers, category, level, workflow_status, policy_version, overdue, reasons, "
            "last_visit_at FROM households WHERE household_id = ANY($1)",
            households,
        )
        ids = await conn.fetch(
            "SELECT household_id, assessment_id FROM assessments WHERE household_id = ANY($1)",
            households,
        )
    finally:
        await conn.close()
    found: dict[str, dict[str, Any]] = {}
    for r in rows:
        row = dict(r)
        row["overdue"] = json.loads(row["overdue"]) if row["overdue"] is not None else None
        reasons = json.loads(row["reasons"]) if row["reasons"] is not None else []
        row["reasons"] = [[x["code"], x["event_ids"]] for x in reasons]
        found[row.pop("household_id")] = row
    found_ids: dict[str, set[str]] = {}
    for r in ids:
        found_ids.setdefault(r["household_id"], set()).add(str(r["assessment_id"]))
    return found, found_ids


async def run_explain_async(
    args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO
) -> int:
    from services.audit import archive
    from services.audit.explain import explain, moment, render
    from services.audit.replay import Replay
    from services.contract.codec import Codec
    from services.contract.inputs import MONITORING_INPUTS
    from services.monitoring.adapters.policy_files import load_policies
    from services.platform.kafka.log import KafkaLog, Range, partition_of

    codec, policies = Codec.default(), load_policies()
    replay = Replay(codec, policies, pinned_policy=args.policy)
    topics = [t.name for t in MONITORING_INPUTS]
    key = args.household.encode()
    if args.archive:
        records = archive.records(Path(args.archive), set(topics))
        for r in records:
            if r.key == key:
                replay.feed(r)
    else:
        from services.platform.config import kafka_bootstrap

        layout: TopicLayout = settings.layout
        only = {t.name: {partition_of(key, layout.partitions(t))} for t in MONITORING_INPUTS}
        log = KafkaLog(kafka_bootstrap(settings), topics, Range(only_partitions=only))
        async for batch in log.batches():
            for r in batch:
                if r.key == key:
                    replay.feed(r)
    h = replay.households.get(args.household)
    if h is None:
        print(f"explain: no events for household {args.household}", file=err)
        return 1
    as_of = moment(args.as_of) if args.as_of else h.state.last_occurred_at
    known_at = moment(args.known_at) if args.known_at else None
    events = [e for items in h.events.values() for e in items]
    document = explain(args.household, events, h.notes, policies, as_of, known_at, args.policy)
    if args.json:
        print(json.dumps(document, ensure_ascii=False, indent=2, default=str), file=out)
    else:
        print(render(document), file=out)
    return 0


async def run_archive_async(
    args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO
) -> int:
    from services.audit import archive
    from services.audit.explain import moment
    from services.platform.kafka.log import KafkaLog, Range

    directory = Path(args.dir)
    if args.action == "verify":
        findings, checked = archive.verify(directory)
        for f in findings:
            print(f.line(), file=out)
        print(f"archive verify: {checked} records checked, {len(findings)} problem(s)", file=out)
        return 1 if findings else 0
    from services.platform.config import kafka_bootstrap

    topics = args.topics or [t.name for t in CATALOGUE]
    existing = archive.read_manifest(directory)
    log = KafkaLog(
        kafka_bootstrap(settings),
        topics,
        Range(
            start_offsets=archive.resume_offsets(existing), end=moment(args.to) if args.to else None
        ),
    )
    progress = Progress(err, "archive")

    async def counted():
        count = 0
        async for batch in log.batches():
            progress.total = log.total
            count += len(batch)
            progress(count)
            yield batch

    new = await archive.export(directory, counted())
    progress.done()
    print(
        f"archive export: {len(new)} file(s), {sum(f.count for f in new)} records "
        f"written to {directory}",
        file=out,
    )
    return 0


def _run(coroutine_fn):
    def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return asyncio.run(coroutine_fn(args, settings, sys.stdout, sys.stderr))
        except KeyboardInterrupt:
            print(f"\nshouwang {args.command}: interrupted; nothing was changed", file=sys.stderr)
            return INTERRUPTED

    return run


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `replay`, `explain` and `archive` on the CLI's sub-command parser."""
    replay = commands.add_parser(
        "replay", help="rebuild household state from the log; --verify compares and checks chains"
    )
    replay.add_argument("--from", dest="start", help="DATE, or topic:partition=offset,...")
    replay.add_argument("--to", help="DATE: read records logged before it, assess as of it")
    replay.add_argument("--township", help="only households of this township")
    replay.add_argument("--household-prefix", help="only households whose id starts so")
    replay.add_argument("--archive", help="replay an archive directory instead of Kafka")
    replay.add_argument("--verify", action="store_true", help="compare; exit 1 on differences")
    replay.add_argument("--no-readmodel", action="store_true", help="with --verify: skip the DB")
    replay.add_argument("--policy", help="pin a policy version (as SHOUWANG_POLICY does)")
    replay.set_defaults(run=_run(run_replay_async))

    explain_cmd = commands.add_parser("explain", help="a household's state and reasons on a date")
    explain_cmd.add_argument("household")
    explain_cmd.add_argument("--as-of", help="what was true then (default: latest event)")
    explain_cmd.add_argument("--known-at", help="only what had been recorded by then")
    explain_cmd.add_argument("--json", action="store_true")
    explain_cmd.add_argument("--archive", help="read an archive directory instead of Kafka")
    explain_cmd.add_argument("--policy", help="pin a policy version")
    explain_cmd.set_defaults(run=_run(run_explain_async))

    archive_cmd = commands.add_parser("archive", help="export the log to Avro files, verify")
    actions = archive_cmd.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="append the topics to an archive directory")
    export.add_argument("dir")
    export.add_argument("--topics", nargs="+", help="default: every topic of the catalogue")
    export.add_argument("--to", help="only records logged before DATE")
    verify = actions.add_parser("verify", help="check files, counts, checksums and links")
    verify.add_argument("dir")
    archive_cmd.set_defaults(run=_run(run_archive_async))
