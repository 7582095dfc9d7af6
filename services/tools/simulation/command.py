"""`shouwang simulate`: run the synthetic county through the visits API, Kafka or a file.

The parser is here; `simulate_run.py` runs it.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from services.platform.arguments import positive_float, positive_int
from services.platform.config import Settings
from services.tools.simulation.api_target import API_TOKEN_ENV, API_URL_ENV, DEFAULT_API_URL
from services.tools.simulation.parameters import CampaignCalendar


def add_simulate_command(commands: argparse._SubParsersAction) -> None:
    """Register `simulate` on the CLI's subcommands."""
    parser = commands.add_parser(
        "simulate",
        help="run a synthetic county's hundred-day campaign into the system",
        description=(
            "Generate a seeded, reproducible county modelled on Dianjiang 2020 and write it "
            "through the visits API (default), straight to Kafka (--direct) or to a JSON-lines "
            "file (--out). Prints counts by type, households by status and finding rates."
        ),
    )
    parser.add_argument("--seed", type=int, default=2020, help="random seed (default 2020)")
    parser.add_argument(
        "--scale",
        type=positive_float,
        default=1.0,
        help="county size: 1 = Dianjiang (9,803 lifted households), 0.01 = ~100 (default 1)",
    )
    parser.add_argument(
        "--days", type=_non_negative_int, default=None, help="stop after this many campaign days"
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--direct",
        action="store_true",
        help="produce Avro straight to Kafka (KAFKA_BOOTSTRAP_SERVERS or the local stack)",
    )
    target.add_argument("--out", type=Path, help="write JSON lines to this file ('-' = stdout)")
    target.add_argument(
        "--api", help=f"visits API base URL (default ${API_URL_ENV}, else {DEFAULT_API_URL})"
    )
    parser.add_argument(
        "--token", help=f"bearer token for the visits API (default ${API_TOKEN_ENV})"
    )
    parser.add_argument(
        "--rate",
        type=_non_negative_float,
        default=0.0,
        help="events per second (default 0 = as fast as possible)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=500, help="events per write (default 500)"
    )
    parser.add_argument(
        "--until",
        type=until_day,
        default=None,
        help="keep monitoring after the campaign up to this day (YYYY-MM-DD; a day in 2021 "
        "crosses the national policy switch); default: the campaign's end, 2020-07-03",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(
        run=run,
        # --direct seals personal data with the master key; the API's URL and token by default.
        reads=(API_URL_ENV, API_TOKEN_ENV, "services.platform.personal.keys:load_master_key"),
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Imported when the command runs, not with the parser: the generator and the sinks (aiohttp,
    # aiokafka, asyncpg) cost more than the rest of the CLI's parser (tests/unit/test_cli.py).
    from services.tools.simulation import simulate_run

    return simulate_run.run(args, settings)


def until_day(text: str) -> dt.date:
    """`--until`: a calendar day no earlier than the campaign's end."""
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day written YYYY-MM-DD") from None
    end = CampaignCalendar().spot_check_end
    if day < end:
        raise argparse.ArgumentTypeError(f"{day} is before the campaign ends ({end})")
    return day


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value
