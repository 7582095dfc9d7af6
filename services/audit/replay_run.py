"""What `shouwang replay` runs: read the log (Kafka or an archive) into a Replay, report, verify.

Only reads: the log (no consumer group, no commits) and the read model, so Ctrl-C at any point
leaves nothing half-done.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import asyncpg

from services.audit import archive
from services.audit.explain import moment
from services.audit.progress import Progress, feed_batches
from services.audit.readmodel_check import compare_readmodel, expected_rows
from services.audit.replay import Difference, Replay
from services.contract.codec import Codec
from services.contract.inputs import MONITORING_INPUTS
from services.contract.topics import RISK
from services.monitoring.adapters.policy_files import load_policies
from services.platform.config import Settings, kafka_bootstrap
from services.platform.kafka.log import KafkaLog, LogRecord, Range
from services.platform.postgres.database import database_for


def _offsets(text: str) -> dict[tuple[str, int], int]:
    """`topic:partition=offset,...`"""
    result = {}
    for part in text.split(","):
        where, _, offset = part.partition("=")
        topic, _, partition = where.rpartition(":")
        result[(topic, int(partition))] = int(offset)
    return result


def _span(args: argparse.Namespace) -> Range:
    start = start_offsets = None
    if args.start:
        if "=" in args.start:
            start_offsets = _offsets(args.start)
        else:
            start = moment(args.start) if len(args.start) != 10 else _day_start(args.start)
    end = moment(args.to) if args.to else None
    return Range(start=start, start_offsets=start_offsets, end=end)


def _day_start(text: str) -> datetime:
    return moment(text + "T00:00:00")


class _Fed:
    def __init__(self, replay: Replay, log: KafkaLog | None):
        self.replay, self.log = replay, log

    @property
    def total(self) -> int | None:
        return self.log.total if self.log else None

    def feed(self, record: LogRecord) -> None:
        self.replay.feed(record)


async def replay(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """`shouwang replay`: rebuild, count by workflow and category; --verify compares."""
    if args.verify and args.start:
        # Refused before reading anything: the answer does not depend on the log.
        print(
            "shouwang replay: --verify needs a replay from the beginning (no --from): a partial "
            "replay rebuilds partial state and cannot reproduce the chains",
            file=err,
        )
        return 2
    codec, policies = Codec.default(), load_policies()
    # Without --verify only the folded households are reported: the emitted assessments are
    # not read, and no chains, event lists or notes are kept (Replay(history=False)).
    replayed = Replay(
        codec,
        policies,
        pinned_policy=args.policy,
        household_prefix=args.household_prefix,
        history=args.verify,
    )
    topics = [t.name for t in MONITORING_INPUTS] + ([RISK.name] if args.verify else [])
    span = _span(args)
    if args.archive:
        log = None
        source = archive.batches_of(Path(args.archive), set(topics))
    else:
        log = KafkaLog(kafka_bootstrap(settings), topics, span)
        source = log.batches()
    progress = Progress(err, "replay")
    fed = _Fed(replayed, log)
    await feed_batches(source, fed, progress)
    rate = progress.done()
    print(
        f"read {replayed.records} records ({rate:,.0f} events/s), applied {replayed.applied}, "
        f"not applicable {len(replayed.rejected)}, households {len(replayed.households)}",
        file=out,
    )
    selected = replayed.selected(args.township)
    as_of = moment(args.to) if args.to else None
    counts: Counter[tuple[str, str]] = Counter()
    for h in selected:
        a = replayed.assess_latest(h, as_of)
        if a is not None:
            counts[(a.workflow, a.category or "-")] += 1
    for (workflow, category), n in sorted(counts.items()):
        print(f"  {workflow:22} {category:18} {n}", file=out)
    if not args.verify:
        return 0
    differences: list[Difference] = []
    derived, diffs = replayed.verify_emitted(args.township)
    differences += diffs
    print(f"verify: {len(derived)} emitted assessments re-derived from the log", file=out)
    if not args.no_readmodel:
        expected = expected_rows(replayed, derived, args.township)
        found_rows, found_ids = await _read_model(settings, list(expected))
        differences += compare_readmodel(expected, found_rows, found_ids)
        print(f"verify: {len(expected)} households compared with the read model", file=out)
    for d in differences:
        print(d.line(), file=out)
    print(f"verify: {len(differences)} difference(s)", file=out)
    return 1 if differences else 0


async def _read_model(settings: Settings, households: list[str]):
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
