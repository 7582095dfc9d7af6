"""`shouwang demo`: parse the options; `demo_run.py` runs the demo, a failure exits 1."""

from __future__ import annotations

import argparse
from pathlib import Path

from services.platform.arguments import positive_float, positive_int
from services.platform.config import Settings
from services.tools.simulation.command import until_day


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `demo` on the CLI's sub-command parser."""
    demo = commands.add_parser(
        "demo",
        help="run the whole system on a synthetic county and report what it found",
        description=(
            "Start a private Kafka and PostgreSQL under <home>/demo, the visits, monitoring, "
            "support and projector services as separate processes, run the simulated hundred-day "
            "campaign through the visits API, wait until every service has processed it, then "
            "print a report and write it as HTML. Stops everything it started on exit."
        ),
    )
    demo.add_argument(
        "--scale",
        type=positive_float,
        default=0.1,
        help="county size: 1 = Dianjiang (9,803 lifted households); default 0.1 (a few minutes)",
    )
    demo.add_argument("--seed", type=int, default=2020, help="random seed (default 2020)")
    demo.add_argument(
        "--until",
        type=until_day,
        default=None,
        help="keep monitoring after the campaign up to this day (YYYY-MM-DD), e.g. 2021-06-30 "
        "to cross the 2021 policy switch; default: the campaign's end",
    )
    demo.add_argument("--no-keep", dest="keep", action="store_false", help="exit after the report")
    demo.add_argument("--out", type=Path, default=None, help="directory for report.html/.json/.txt")
    demo.add_argument(
        "--home",
        type=Path,
        default=None,
        help="data directory (default $SHOUWANG_HOME, else .shouwang)",
    )
    demo.add_argument(
        "--rate", type=float, default=0.0, help="events per second (default 0: as fast as accepted)"
    )
    demo.add_argument(
        "--timeout",
        type=positive_float,
        default=900.0,
        help="seconds to wait for the services to catch up (default 900)",
    )
    demo.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="processes each of monitoring, support and the projector, one consumer group per "
        "service sharing the partitions (default 1; at most the household topics' partitions)",
    )
    demo.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Imported when the command runs: the orchestrator brings every service's client libraries
    # (aiohttp, aiokafka, asyncpg, faust), and the CLI imports this module to build its parser.
    from services.tools.demo import demo_run

    return demo_run.run(args, settings)
