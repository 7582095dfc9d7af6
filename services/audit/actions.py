"""Entry point: `shouwang actions`: operator actions read back from the log or an archive."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from services.contract.topics import OPERATOR_ACTIONS
from services.platform.config import Settings

if TYPE_CHECKING:
    from services.contract.codec import Codec


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `actions` on the CLI's sub-command parser."""
    actions = commands.add_parser("actions", help="list operator actions from the log")
    actions.add_argument("--subject", help="only this subject, e.g. token:ID or catalogue:ID")
    actions.add_argument("--archive", help="read an archive directory instead of Kafka")
    actions.set_defaults(run=run_actions)


def run_actions(args: argparse.Namespace, settings: Settings) -> int:
    from services.contract.codec import Codec
    from services.platform.actions.events import describe
    from services.platform.actions.log import read_actions
    from services.platform.kafka.producer import BrokerUnavailable

    codec = Codec.default()
    if args.archive:
        actions = _archived_actions(Path(args.archive), codec, args.subject)
    else:
        from services.platform.config import kafka_bootstrap

        try:
            actions = asyncio.run(read_actions(kafka_bootstrap(settings), codec, args.subject))
        except BrokerUnavailable as exc:
            print(f"shouwang actions: {exc}", file=sys.stderr)
            return 3
    for action in actions:
        print(describe(action))
    print(f"{len(actions)} action(s)", file=sys.stderr)
    return 0


def _archived_actions(directory: Path, codec: Codec, subject: str | None) -> list[dict]:
    from services.audit import archive

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
