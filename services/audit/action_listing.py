"""What `shouwang actions` runs: operator actions read back from the log or an archive.

`--subject` takes an action subject as recorded (`household:H-1`), or a bare id (`H-1`), which
matches that id under every kind of subject: an auditor asking "who opened H-1's data" need not
know how the log spells it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Collection
from pathlib import Path

from services.audit import archive
from services.contract.codec import Codec
from services.contract.topics import OPERATOR_ACTIONS
from services.platform.actions.events import SUBJECT_KINDS, describe
from services.platform.actions.log import read_actions
from services.platform.config import Settings, kafka_bootstrap
from services.platform.kafka.producer import BrokerUnavailable
from services.platform.unreachable import recognise


def list_actions(args: argparse.Namespace, settings: Settings) -> int:
    """Print each action (of one subject with --subject); exit 3 when Kafka is unreachable."""
    codec = Codec.default()
    subjects = None if args.subject is None else subjects_matching(args.subject)
    if args.archive:
        actions = _archived_actions(Path(args.archive), codec, subjects)
    else:
        try:
            actions = asyncio.run(read_actions(kafka_bootstrap(settings), codec, subjects))
        except BrokerUnavailable as exc:
            print(f"shouwang actions: {recognise(exc, settings) or exc}", file=sys.stderr)
            return 3
    for action in actions:
        print(describe(action))
    print(f"{len(actions)} action(s)", file=sys.stderr)
    return 0


def subjects_matching(subject: str) -> frozenset[str]:
    """The recorded subjects `--subject` names: itself, and a bare id under every kind."""
    kind, sep, _ = subject.partition(":")
    if sep and kind in SUBJECT_KINDS:
        return frozenset({subject})
    return frozenset({subject, *(f"{k}:{subject}" for k in SUBJECT_KINDS)})


def _archived_actions(
    directory: Path, codec: Codec, subjects: Collection[str] | None
) -> list[dict]:
    seen: set[str] = set()
    found = []
    keys = None if subjects is None else {s.encode("utf-8") for s in subjects}
    for r in archive.records(directory, {OPERATOR_ACTIONS.name}):
        if keys is not None and r.key not in keys:
            continue
        action = codec.decode(r.value, expected=OPERATOR_ACTIONS.event_type).record
        if action["event_id"] not in seen:
            seen.add(action["event_id"])
            found.append(action)
    return found
