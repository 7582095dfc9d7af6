"""`shouwang faults [--quick] [--scenario NAME]`: run the fault scenarios, print PASS/FAIL each.

The parser is here; `harness.py` runs the scenarios, each on the same private stack (a
LocalKafka and a LocalPostgres under a run directory, stopped at the end); the exit code is 1
when any scenario failed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from services.platform.config import Settings

# The harness is imported when the scenarios run, not here: it needs asyncpg and aiokafka, and
# the CLI imports this module to build its parser (tests/unit/test_cli.py).


def run(args: argparse.Namespace, settings: Settings) -> int:
    from services.tools.faults import harness  # lazy: see above

    return harness.run(args, settings)


def add_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "faults",
        help="fault harness: poison, crashes, database outage, overload, hostile clients, "
        "scale-out, broker loss "
        "(PASS/FAIL)",
    )
    parser.add_argument("--quick", action="store_true", help="small load, short outages (CI)")
    parser.add_argument(
        "--scenario",
        choices=[
            "poison",
            "crashes",
            "db-outage",
            "overload",
            "hostile",
            "scale-out",
            "broker-loss",
        ],
        help="run only this one",
    )
    parser.add_argument("--seed", type=int, help="seed for kill moments and garbage bytes")
    parser.add_argument("--dir", type=Path, help="parent of the run directory (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the run directory on PASS")
    parser.set_defaults(run=run)
