"""Entry point: `shouwang actions`: operator actions read back from the log or an archive."""

from __future__ import annotations

import argparse

from services.platform.config import Settings


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `actions` on the CLI's sub-command parser."""
    actions = commands.add_parser("actions", help="list operator actions from the log")
    actions.add_argument(
        "--subject",
        help="only this subject: token:ID, catalogue:ID, household:ID or cadre:ID; a bare ID "
        "matches it under any of those",
    )
    actions.add_argument("--archive", help="read an archive directory instead of Kafka")
    actions.set_defaults(run=run_actions)


def run_actions(args: argparse.Namespace, settings: Settings) -> int:
    # Imported when the command runs: it reads the log (aiokafka), and the CLI imports this
    # module to build its parser (tests/unit/test_cli.py).
    from services.audit import action_listing

    return action_listing.list_actions(args, settings)
