"""Entrypoint for `shouwang monitoring`: wire the worker (bootstrap), prepare its topics, run it."""

from __future__ import annotations

import argparse

from services.platform.config import Settings

# What the worker reads besides every command's settings (its --help lists them).
READS = ("services.monitoring.bootstrap:MonitoringSettings.from_env",)


def run_monitoring(args: argparse.Namespace, settings: Settings) -> int:
    """`shouwang monitoring`: the risk worker, until it is stopped."""
    # Imported when the command runs: the worker needs faust, aiokafka and prometheus_client,
    # and the CLI imports this module to build its parser (tests/unit/test_cli.py).
    from services.monitoring import worker_run

    return worker_run.run_worker(settings)
