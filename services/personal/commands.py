"""`shouwang personal show|forget`: read a subject's personal data from the log, or shred its key.

`show` is for operators with the master key: it reads the subject's registry events (one
partition, no consumer group) and opens each sealed sub-record, after recording who opened
whose data and why on operator.actions. `forget` deletes the subject's data key and records who
did it, when and why (operator.actions first, then the key tables); afterwards `show` answers
"erased" for every event sealed with that key, and the rest of those events (the risk history)
reads as before. `shouwang actions --subject household:ID` lists both.
The parsers are here; what the commands do is `subject_data.py`'s.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from services.platform.config import Settings

# subject_data is imported when a command runs, not here: it holds the key store (asyncpg),
# the sealing (cryptography), the log reader (aiokafka) and the codec, and the CLI imports this
# module to build its parser (tests/unit/test_cli.py).


async def run_show(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    from services.personal import subject_data  # lazy: see above

    return await subject_data.show(args, settings, out, err)


async def run_forget(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    from services.personal import subject_data  # lazy: see above

    return await subject_data.forget(args, settings, out, err)


def _run(coroutine_fn):
    def run(args: argparse.Namespace, settings: Settings) -> int:
        from services.personal import subject_data  # lazy: see above

        return subject_data.run_reporting_store_errors(coroutine_fn, args, settings)

    return run


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `personal show` and `personal forget` on the CLI's sub-command parser."""
    personal = commands.add_parser("personal", help="personal data: show (operators), forget")
    personal.set_defaults(reads=("services.platform.personal.keys:load_master_key",))
    actions = personal.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="a household's (or cadre's) personal data from the log")
    show.add_argument("subject_id", metavar="SUBJECT_ID", help="household id (cadre id: --cadre)")
    show.add_argument("--cadre", action="store_true", help="SUBJECT_ID is a cadre id")
    show.add_argument("--json", action="store_true")
    show.add_argument(
        "--actor", help="who opens the data (default operator:$USER), recorded before it is shown"
    )
    show.add_argument(
        "--reason", required=True, help="why (case, request), recorded before the data is shown"
    )
    show.set_defaults(run=_run(run_show))
    forget = actions.add_parser(
        "forget", help="erase a subject's data key (crypto-shredding); risk history stays"
    )
    forget.add_argument("subject_id", metavar="SUBJECT_ID", help="household id (cadre id: --cadre)")
    forget.add_argument("--cadre", action="store_true", help="SUBJECT_ID is a cadre id")
    forget.add_argument("--actor", required=True, help="who erases (operator id), recorded")
    forget.add_argument("--reason", required=True, help="why (request or ruling), recorded")
    forget.set_defaults(run=_run(run_forget))
