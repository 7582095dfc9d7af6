"""What `shouwang import households|cadres` runs: a CSV table import, wired to the clock and
the sealed sink (`imports/table.py` runs and reports it)."""

from __future__ import annotations

import argparse
import getpass

from services.platform.clock import wall_clock
from services.platform.config import Settings
from services.visits.bootstrap import sealed_sink
from services.visits.imports.cadres import CADRES
from services.visits.imports.households import HOUSEHOLDS
from services.visits.imports.table import TableImport, run_csv_import

TABLES: dict[str, TableImport] = {"households": HOUSEHOLDS, "cadres": CADRES}


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Import (or with --check only check) the CSV file of the table `args.what` names."""
    return run_csv_import(
        TABLES[args.what],
        args.file,
        actor=args.actor or f"operator:{getpass.getuser()}",
        as_of=args.as_of,
        skip_bad=args.skip_bad,
        check=args.check,
        clock=wall_clock,
        sealed_sink=lambda: sealed_sink(settings),
    )
