"""Entrypoint for `shouwang console`: the web console for reviewers and county operators.

Thin: the CLI has parsed the arguments and read the Settings; `bootstrap` builds and runs the
rest (imported by the handler, not here: the CLI imports this module to build its parser).
"""

from __future__ import annotations

import argparse
import asyncio
import os

from services.console.settings import ConsoleSettings
from services.platform.config import Settings

READS = ("services.console.settings:ConsoleSettings.from_env",)


def add_commands(commands: argparse._SubParsersAction) -> None:
    console = commands.add_parser(
        "console", help="run the web console (review queue, households) for people"
    )
    console.set_defaults(run=run_console, reads=READS)


def run_console(args: argparse.Namespace, settings: Settings) -> int:
    """`shouwang console`: serve the console until SIGINT/SIGTERM."""
    from services.console.bootstrap import serve_console  # lazy: see the module docstring

    asyncio.run(serve_console(settings, ConsoleSettings.from_env(os.environ)))
    return 0
