"""Entrypoint for `shouwang support`: start the faust worker that `bootstrap` builds."""

from __future__ import annotations

import argparse

from services.platform.config import Settings


def run_support(args: argparse.Namespace, settings: Settings) -> int:
    """`shouwang support`: the worker named by SHOUWANG_SUPPORT_APP_ID, until it is stopped."""
    # Imported when the command runs: the worker needs faust, and the CLI imports this module to
    # build its parser (tests/unit/test_cli.py).
    from services.support import worker_run

    return worker_run.run_worker(settings, settings.support_app_id)
