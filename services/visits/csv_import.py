"""What `shouwang import households|cadres` runs: a CSV table import, wired to the clock and
the sealed sink (`imports/table.py` runs and reports it)."""

from __future__ import annotations

import argparse
import getpass
import sys

from services.platform.clock import wall_clock
from services.platform.config import Settings
from services.visits.bootstrap import sealed_sink
from services.visits.imports.cadres import CADRES
from services.visits.imports.households import HOUSEHOLDS, with_members
from services.visits.imports.table import CsvFileError, TableImport, read_text, run_csv_import

TABLES: dict[str, TableImport] = {"households": HOUSEHOLDS, "cadres": CADRES}


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Import (or with --check only check) the CSV file of the table `args.what` names."""
    table = TABLES[args.what]
    members = getattr(args, "members", None)
    if members is not None:  # households joined with their member table
        try:
            table = with_members(read_text(members))
        except OSError as exc:
            print(f"shouwang import {args.what}: cannot read {members}: {exc.strerror}",
                  file=sys.stderr)  # fmt: skip
            return 2
        except CsvFileError as exc:
            print(f"shouwang import {args.what}: {members}: {exc}", file=sys.stderr)
            return 2
    return run_csv_import(
        table,
        args.file,
        actor=args.actor or f"operator:{getpass.getuser()}",
        as_of=args.as_of,
        skip_bad=args.skip_bad,
        check=args.check,
        clock=wall_clock,
        sealed_sink=lambda: sealed_sink(settings),
    )
