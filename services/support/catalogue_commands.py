"""Entry point: `shouwang catalogue activate FILE`, recorded on operator.actions.

The parser is here; what the command does (and what a support worker does at start) is
`catalogue_activation.py`'s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from services.platform.config import Settings

# catalogue_activation is imported when the command runs, not here: it holds the log's producer
# and consumer (aiokafka) and the codec, and the CLI imports this module to build its parser
# (tests/unit/test_cli.py).


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `catalogue` on the CLI's sub-command parser."""
    catalogue = commands.add_parser("catalogue", help="measure catalogues: record activation")
    what = catalogue.add_subparsers(dest="action", required=True)
    activate = what.add_parser(
        "activate", help="record on operator.actions that FILE is the catalogue in use"
    )
    activate.add_argument("file", type=Path)
    activate.add_argument("--actor", default=None, help="operator id (default: operator:$USER)")
    activate.add_argument("--reason", default="", help="why, for the log")
    catalogue.set_defaults(run=run_catalogue)


def run_catalogue(args: argparse.Namespace, settings: Settings) -> int:
    from services.support import catalogue_activation  # lazy: see above

    return catalogue_activation.activate(args, settings)
