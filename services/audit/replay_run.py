"""What `shouwang replay` runs: read the log (Kafka or an archive) into a Replay, report, verify.

Only reads: the log (no consumer group, no commits) and the read model, so Ctrl-C at any point
leaves nothing half-done.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from multiprocessing import connection
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
from services.platform.kafka.log import KafkaLog, LogRecord, NotCoPartitioned, Range, Share
from services.platform.postgres.database import database_for
from services.platform.unreachable import ServerUnreachable, recognise


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


@dataclass
class Part:
    """What a replay of one share of the log found (the whole log when one process reads it)."""

    records: int = 0
    applied: int = 0
    rejected: int = 0
    households: set[str] = field(default_factory=set)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    derived: int = 0
    compared: int = 0
    differences: list[Difference] = field(default_factory=list)

    def add(self, other: Part) -> None:
        # Each household's records are on one partition number of every topic, so in one share;
        # one found in two means the topics are not co-partitioned, and neither answer is whole.
        twice = self.households & other.households
        if twice:
            raise NotCoPartitioned(
                f"household {min(twice)} (and {len(twice) - 1} more) has records in two shares "
                "of the log: its topics are not co-partitioned; replay with --processes 1"
            )
        self.records += other.records
        self.applied += other.applied
        self.rejected += other.rejected
        self.households |= other.households
        self.counts += other.counts
        self.derived += other.derived
        self.compared += other.compared
        self.differences += other.differences


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
    progress = Progress(err, "replay")
    try:
        part = await replay_log(args, settings, getattr(args, "processes", 1), progress)
    except (NotCoPartitioned, ShareFailed) as exc:
        print(f"shouwang replay: {exc}", file=err)
        return 1
    rate = progress.done()
    print(
        f"read {part.records} records ({rate:,.0f} events/s), applied {part.applied}, "
        f"not applicable {part.rejected}, households {len(part.households)}",
        file=out,
    )
    for (workflow, category), n in sorted(part.counts.items()):
        print(f"  {workflow:22} {category:18} {n}", file=out)
    if not args.verify:
        return 0
    print(f"verify: {part.derived} emitted assessments re-derived from the log", file=out)
    if not args.no_readmodel:
        print(f"verify: {part.compared} households compared with the read model", file=out)
    for d in sorted(part.differences, key=lambda d: d.household_id):
        print(d.line(), file=out)
    print(f"verify: {len(part.differences)} difference(s)", file=out)
    return 1 if part.differences else 0


async def replay_log(
    args: argparse.Namespace, settings: Settings, processes: int, progress: Progress
) -> Part:
    """The replay's answer, read and folded in `processes` processes (1: in this one)."""
    if processes == 1:
        return await replay_share(args, settings, None, progress)
    return await asyncio.to_thread(_in_processes, args, settings, processes, progress)


async def replay_share(
    args: argparse.Namespace, settings: Settings, share: Share | None, progress: Any
) -> Part:
    """Replay `share` of the log (None: all of it): rebuild, count, and with --verify compare.
    Every check is per household, so a share's answer is its households' whole answer."""
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
    if args.archive:
        log = None
        source = archive.batches_of(Path(args.archive), set(topics), share=share)
    else:
        log = KafkaLog(kafka_bootstrap(settings), topics, replace(_span(args), share=share))
        source = log.batches()
    await feed_batches(source, _Fed(replayed, log), progress)
    part = Part(replayed.records, replayed.applied, len(replayed.rejected),
                set(replayed.households))  # fmt: skip
    selected = replayed.selected(args.township)
    as_of = moment(args.to) if args.to else None
    for h in selected:
        a = replayed.assess_latest(h, as_of)
        if a is not None:
            part.counts[(a.workflow, a.category or "-")] += 1
    if not args.verify:
        return part
    derived, part.differences = replayed.verify_emitted(args.township)
    part.derived = len(derived)
    if not args.no_readmodel:
        expected = expected_rows(replayed, derived, args.township)
        found_rows, found_ids = await _read_model(settings, list(expected))
        part.differences += compare_readmodel(expected, found_rows, found_ids)
        part.compared = len(expected)
    return part


class ShareFailed(RuntimeError):
    """A process replaying a share of the log failed or died: the replay has no whole answer."""


def _in_processes(args: argparse.Namespace, settings: Settings, count: int, progress: Progress):
    """Replay the log in `count` processes, each a share of the partitions, and add up their
    parts. The fold and the assessment are per household and decode is most of a replay's CPU
    (bench B4), so shares scale with cores; progress is the sum of the shares' counts."""
    context = multiprocessing.get_context("spawn")  # no inherited event loop or sockets
    options = {k: v for k, v in vars(args).items() if k != "run"}
    counts = [context.Value("q", 0) for _ in range(count)]
    totals = [context.Value("q", 0) for _ in range(count)]
    children, receivers = [], {}
    for index in range(count):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=_share_main,
            args=(
                options,
                settings,
                Share(index, count),
                counts[index],
                totals[index],
                sender,
                os.getpid(),
            ),
            name=f"shouwang-replay-{index}",
            daemon=True,
        )
        child.start()
        sender.close()
        children.append(child)
        receivers[receiver] = index
    whole, failures, unreachable = Part(), [], []
    try:
        while receivers:
            for ready in connection.wait(list(receivers), timeout=0.5):
                index = receivers.pop(ready)
                try:
                    outcome, value = ready.recv()
                except EOFError:
                    children[index].join()
                    outcome, value = "error", f"exited with status {children[index].exitcode}"
                if outcome == "ok":
                    whole.add(value)
                elif outcome == "unreachable":
                    unreachable.append(ServerUnreachable(**value))
                else:
                    failures.append(f"share {index + 1} of {count}: {value}")
            if all(t.value for t in totals):
                progress.total = sum(t.value for t in totals)
            progress(sum(c.value for c in counts))
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join()
    if unreachable:
        # As one process would say it (the CLI exits 3 naming the server and its variable):
        # every share meets the same server, so one line tells it.
        raise unreachable[0]
    if failures:
        raise ShareFailed("; ".join(failures))
    progress.count = whole.records
    return whole


class ParentGone(RuntimeError):
    """The replay that started this share has ended: nobody will read its answer."""


class _SharedProgress:
    """A share's progress, in two numbers the parent reads (records fed, records to read).
    Told of every batch, it is also where a share notices that its parent is gone: a parent
    killed by a signal runs no clean-up, and its shares would read the log to its end."""

    def __init__(self, count: Any, total: Any, parent: int):
        # the parent's pid as the parent gave it: one killed while this share was starting
        # would already be gone by the time the share could ask
        self._count, self._total, self._parent = count, total, parent

    @property
    def total(self) -> int | None:
        return self._total.value or None

    @total.setter
    def total(self, value: int | None) -> None:
        self._total.value = value or 0

    def __call__(self, count: int) -> None:
        if os.getppid() != self._parent:  # re-parented: the replay was killed
            raise ParentGone("the replay that started this share has ended")
        self._count.value = count


def _share_main(
    options: dict, settings: Settings, share: Share, count, total, result, parent: int
) -> None:
    args = argparse.Namespace(**options)
    progress = _SharedProgress(count, total, parent)
    try:
        part = asyncio.run(replay_share(args, settings, share, progress))
        result.send(("ok", part))
    except ParentGone:
        pass
    except NotCoPartitioned as exc:
        result.send(("error", str(exc)))
    except Exception as exc:  # reported by the parent, which exits non-zero
        found = recognise(exc, settings)
        if found is not None:  # told by the parent as one process tells it
            result.send(("unreachable", asdict(found)))
        else:
            result.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        result.close()


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
