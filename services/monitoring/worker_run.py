"""What `shouwang monitoring` runs: wire the worker (bootstrap), prepare its topics, run it."""

from __future__ import annotations

import asyncio
import logging

from services.monitoring.bootstrap import parts, prepare_topics, worker_app
from services.platform.config import Settings
from services.platform.kafka.faust.running import run_worker as run_faust_worker

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
    run_faust_worker(app)
    return 0
