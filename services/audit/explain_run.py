"""What `shouwang explain` runs: one household's events (its partition, or an archive) explained."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

from services.audit import archive
from services.audit.explain import explain, moment, render
from services.audit.replay import HouseholdLog, Replay
from services.contract.codec import Codec
from services.contract.inputs import MONITORING_INPUTS
from services.contract.topics import TopicLayout
from services.monitoring.adapters.policy_files import load_policies
from services.platform.config import Settings, kafka_bootstrap
from services.platform.kafka.log import KafkaLog, Range, partition_of


async def household_log(
    bootstrap: str, layout: TopicLayout, household_id: str, replay: Replay
) -> HouseholdLog | None:
    """One household's records of the monitoring inputs (its partition of each, read to the
    end) fed to `replay`; its log, or None when it has no events. The console's history page
    reads a household the same way, so it gives the same answer as this command."""
    topics = [t.name for t in MONITORING_INPUTS]
    key = household_id.encode()
    only = {t.name: {partition_of(key, layout.partitions(t))} for t in MONITORING_INPUTS}
    log = KafkaLog(bootstrap, topics, Range(only_partitions=only))
    async for batch in log.batches():
        for r in batch:
            if r.key == key:
                replay.feed(r)
    return replay.households.get(household_id)


async def explain_household(
    args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO
) -> int:
    """`shouwang explain HOUSEHOLD`: its state and reasons as of a moment, text or JSON."""
    codec, policies = Codec.default(), load_policies()
    replay = Replay(codec, policies, pinned_policy=args.policy)
    if args.archive:
        topics = [t.name for t in MONITORING_INPUTS]
        key = args.household.encode()
        records = archive.records(Path(args.archive), set(topics))
        for r in records:
            if r.key == key:
                replay.feed(r)
        h = replay.households.get(args.household)
    else:
        h = await household_log(kafka_bootstrap(settings), settings.layout, args.household, replay)
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
