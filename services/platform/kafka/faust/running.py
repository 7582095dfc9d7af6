"""Running a faust app's worker in the foreground, the same way for every service."""

from __future__ import annotations

import faust

from services.platform.collector import young_generation_at_least
from services.platform.logs import is_terminal

# A worker's batch holds thousands of small objects (decoded records, folded states, rows) for
# a moment: with CPython's default young generation (700) they are collected and promoted again
# and again. Measured on the monitoring worker catching up (B2's records at scale 0.2, three
# alternated pairs, CPU of the process): 5.0-5.8 CPU-s at 700, 4.8-4.9 at 10,000.
WORKER_YOUNG_GENERATION = 10_000


def run_worker(app: faust.App) -> None:
    """Run `app`'s worker until it is stopped; faust's own logging setup left alone."""
    worker = faust.Worker(app, loglevel="INFO", override_logging=False)
    if not is_terminal(worker.stdout):
        # faust's start-up spinner writes cursor and backspace codes even into a file or pipe.
        worker.spinner = None
    with young_generation_at_least(WORKER_YOUNG_GENERATION):
        worker.execute_from_commandline()
