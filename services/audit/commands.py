"""Entrypoints: `shouwang replay`, `shouwang explain`, `shouwang archive export|verify`.

The parsers, and one thin `run_*` per command that imports the module doing the work:
`replay_run`, `explain_run`, `archive_run`. Every command here only reads the log (no consumer
group, no commits) and the read model, so Ctrl-C at any point leaves nothing half-done;
`archive export` writes `.partial` files and replaces the manifest last.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

from services.platform.arguments import positive_int
from services.platform.config import Settings

# Each run_* imports its module when the command runs, not here: those modules read the log
# (aiokafka) and the read model (asyncpg), and the CLI imports this module to build its parser
# (tests/unit/test_cli.py).

INTERRUPTED = 130


async def run_replay_async(
    args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO
) -> int:
    from services.audit import replay_run  # lazy: aiokafka, asyncpg (see above)

    return await replay_run.replay(args, settings, out, err)


async def run_explain_async(
    args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO
) -> int:
    from services.audit import explain_run  # lazy: aiokafka (see above)

    return await explain_run.explain_household(args, settings, out, err)


async def run_archive_async(
    args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO
) -> int:
    from services.audit import archive_run  # lazy: aiokafka (see above)

    return await archive_run.export_or_verify(args, settings, out, err)


def _run(coroutine_fn):
    def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return asyncio.run(coroutine_fn(args, settings, sys.stdout, sys.stderr))
        except KeyboardInterrupt:
            print(f"\nshouwang {args.command}: interrupted; nothing was changed", file=sys.stderr)
            return INTERRUPTED

    return run


def moment_text(text: str) -> str:
    """argparse type: an ISO date or datetime, checked when the arguments are parsed (before any
    read of the log); the text is kept, the run parses it again with the same function."""
    from services.audit.explain import moment  # lazy: only when a date is given

    try:
        moment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def start_text(text: str) -> str:
    """argparse type for `replay --from`: a DATE, or `topic:partition=offset,...`."""
    if "=" not in text:
        return moment_text(text)
    for part in text.split(","):
        where, _, offset = part.partition("=")
        topic, _, partition = where.rpartition(":")
        if not (topic and partition.isdigit() and offset.isdigit()):
            raise argparse.ArgumentTypeError(
                f"{part!r} is not topic:partition=offset (e.g. visits.household:0=120)"
            )
    return text


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `replay`, `explain` and `archive` on the CLI's sub-command parser."""
    replay = commands.add_parser(
        "replay", help="rebuild household state from the log; --verify compares and checks chains"
    )
    replay.add_argument(
        "--from", dest="start", type=start_text, help="DATE, or topic:partition=offset,..."
    )
    replay.add_argument(
        "--to", type=moment_text, help="DATE: read records logged before it, assess as of it"
    )
    replay.add_argument("--township", help="only households of this township")
    replay.add_argument("--household-prefix", help="only households whose id starts so")
    replay.add_argument("--archive", help="replay an archive directory instead of Kafka")
    replay.add_argument("--verify", action="store_true", help="compare; exit 1 on differences")
    replay.add_argument("--no-readmodel", action="store_true", help="with --verify: skip the DB")
    replay.add_argument("--policy", help="pin a policy version (as SHOUWANG_POLICY does)")
    replay.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        help="read and fold the log in N processes, each a share of the partitions (default 1)",
    )
    replay.set_defaults(run=_run(run_replay_async))

    explain_cmd = commands.add_parser("explain", help="a household's state and reasons on a date")
    explain_cmd.add_argument("household")
    explain_cmd.add_argument(
        "--as-of", type=moment_text, help="what was true then (default: latest event)"
    )
    explain_cmd.add_argument(
        "--known-at", type=moment_text, help="only what had been recorded by then"
    )
    explain_cmd.add_argument("--json", action="store_true")
    explain_cmd.add_argument("--archive", help="read an archive directory instead of Kafka")
    explain_cmd.add_argument("--policy", help="pin a policy version")
    explain_cmd.set_defaults(run=_run(run_explain_async))

    archive_cmd = commands.add_parser("archive", help="export the log to Avro files, verify")
    actions = archive_cmd.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="append the topics to an archive directory")
    export.add_argument("dir")
    export.add_argument("--topics", nargs="+", help="default: every topic of the catalogue")
    export.add_argument("--to", type=moment_text, help="only records logged before DATE")
    verify = actions.add_parser("verify", help="check files, counts, checksums and links")
    verify.add_argument("dir")
    archive_cmd.set_defaults(run=_run(run_archive_async))
