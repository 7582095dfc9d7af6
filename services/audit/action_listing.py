"""What `shouwang actions` runs: operator actions read back from the log or an archive."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from services.audit import archive
from services.contract.codec import Codec
from services.contract.topics import OPERATOR_ACTIONS
from services.platform.actions.events import describe
from services.platform.actions.log import read_actions
from services.platform.config import Settings, kafka_bootstrap
from services.platform.kafka.producer import BrokerUnavailable
from services.platform.unreachable import recognise


def list_actions(args: argparse.Namespace, settings: Settings) -> int:
    """Print each action (of one subject with --subject); exit 3 when Kafka is unreachable."""
    codec = Codec.default()
    if args.archive:
        actions = _archived_actions(Path(args.archive), codec, args.subject)
    else:
        try:
            actions = asyncio.run(read_actions(kafka_bootstrap(settings), codec, args.subject))
        except BrokerUnavailable as exc:
            print(f"shouwang actions: {recognise(exc, settings) or exc}", file=sys.stderr)
            return 3
    for action in actions:
        print(describe(action))
    print(f"{len(actions)} action(s)", file=sys.stderr)
    return 0


def _archived_actions(directory: Path, codec: Codec, subject: str | None) -> list[dict]:
    seen: set[str] = set()
    found = []
    for r in archive.records(directory, {OPERATOR_ACTIONS.name}):
        if subject is not None and r.key != subject.encode("utf-8"):
            continue
        action = codec.decode(r.value, expected=OPERATOR_ACTIONS.event_type).record
        if action["event_id"] not in seen:
            seen.add(action["event_id"])
            found.append(action)
    return found
