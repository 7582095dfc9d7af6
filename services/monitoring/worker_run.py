"""What `shouwang monitoring` runs: wire the worker (bootstrap), prepare its topics, run it."""

from __future__ import annotations

import asyncio
import logging

import faust

from services.monitoring.bootstrap import parts, prepare_topics, worker_app
from services.platform.config import Settings
from services.platform.logs import is_terminal

# The logger keeps the name it had when this lived in commands.py: a worker's log lines read as
# before.
log = logging.getLogger("services.monitoring.commands")


def run_worker(settings: Settings) -> int:
    """Wire the worker from settings, create its topics, run it until it is stopped."""
    wired = parts(settings)
    own = wired.own
    asyncio.run(prepare_topics(wired.bootstrap, settings, own.app_id))
    app = worker_app(wired)
    log.info(
        "monitoring worker %s: policies %s, web on %d, %s",
        own.app_id,
        ", ".join(p.id for p in wired.policies.policies),
        own.web_port,
        own.guarantee,
    )
    worker = faust.Worker(app, loglevel="INFO", override_logging=False)
    if not is_terminal(worker.stdout):
        # faust's start-up spinner writes cursor and backspace codes even into a file or pipe.
        worker.spinner = None
    worker.execute_from_commandline()
    return 0
