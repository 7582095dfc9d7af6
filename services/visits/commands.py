"""The visits service's CLI: `visits`, `tokens issue|revoke|list`, `import households|cadres`.

Arguments are parsed here; each run_* imports the module that does the work: `bootstrap.py`
(the wiring: pools, producers, the clock), `token_admin.py` (tokens, each change logged on
operator.actions) and `csv_import.py` (a table import, run and reported by `imports/table.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from pathlib import Path

from services.platform.config import Settings

MASTER_KEY_READER = "services.platform.personal.keys:load_master_key"

# Each run_* imports its module when the command runs, not here: they need aiohttp, asyncpg or
# aiokafka, and the CLI imports this module to build its parser (tests/unit/test_cli.py).


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `visits`, `tokens` and `import` on the CLI's sub-command parser."""
    visits = commands.add_parser("visits", help="run the ingest API (see services/visits)")
    # The master key seals registry records' personal data (services/platform/personal).
    visits.set_defaults(run=run_visits, reads=(MASTER_KEY_READER,))

    tokens = commands.add_parser("tokens", help="API tokens: issue, revoke, list")
    actions = tokens.add_subparsers(dest="action", required=True)
    issue = actions.add_parser("issue", help="issue a token; it is printed once")
    issue.add_argument("--kind", choices=["cadre", "feed", "operator", "auditor"], required=True)
    issue.add_argument(
        "--holder", required=True, help="cadre, feed, operator or auditor id; becomes the actor"
    )
    issue.add_argument("--township", action="append", default=[], help="repeatable")
    issue.add_argument(
        "--village",
        action="append",
        default=[],
        help="a village of the token's one township (a village-level cadre token); repeatable",
    )
    issue.add_argument(
        "--service-point",
        action="store_true",
        help="a village service point (one --village): records households' applications only",
    )
    issue.add_argument(
        "--event-type", action="append", default=[], help="e.g. HardshipReported; repeatable"
    )
    issue.add_argument("--note", default="")
    # The token's own request limits over its kind's (SHOUWANG_VISITS_<KIND>_CONCURRENCY, ...).
    issue.add_argument(
        "--max-concurrent", type=int, default=None, help="requests open at once (kind's default)"
    )
    issue.add_argument(
        "--rate", type=float, default=None, help="requests per second on average (kind's default)"
    )
    issue.add_argument(
        "--burst", type=int, default=None, help="requests at once above the rate (kind's default)"
    )
    issue.add_argument("--actor", default=None, help="operator id (default: operator:$USER)")
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    revoke.add_argument("--actor", default=None, help="operator id (default: operator:$USER)")
    revoke.add_argument("--reason", default="", help="why, for the log (e.g. phone lost)")
    actions.add_parser("list", help="list tokens (never their secrets)")
    tokens.set_defaults(run=run_tokens)

    importing = commands.add_parser("import", help="bulk imports")
    what = importing.add_subparsers(dest="what", required=True)
    for name, about in (
        ("households", "a household table (户表) CSV"),
        ("cadres", "a cadre roster CSV (cadre.registry)"),
    ):
        table = what.add_parser(name, help=about)
        table.add_argument("file", type=Path)
        table.add_argument(
            "--skip-bad", action="store_true", help="import the good rows of a file with bad rows"
        )
        table.add_argument(
            "--as-of", type=dt.date.fromisoformat, help="occurred_at for rows without 登记日期"
        )
        table.add_argument("--actor", default=None, help="operator id (default: operator:$USER)")
        table.add_argument("--check", action="store_true", help="check only, write nothing")
        if name == "households":
            table.add_argument(
                "--members",
                type=Path,
                default=None,
                help="a member table (人员表) CSV joined by household id: members one by one",
            )
        table.set_defaults(run=run_import, reads=(MASTER_KEY_READER,))


def run_visits(args: argparse.Namespace, settings: Settings) -> int:
    from services.visits.bootstrap import serve  # lazy: see above

    asyncio.run(serve(settings))
    return 0


def run_tokens(args: argparse.Namespace, settings: Settings) -> int:
    from services.visits import token_admin  # lazy: see above

    return token_admin.run(args, settings)


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    from services.visits import csv_import  # lazy: see above

    return csv_import.run(args, settings)
