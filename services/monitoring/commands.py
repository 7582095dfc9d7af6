"""Entrypoint for `shouwang monitoring`: wire the worker (bootstrap), prepare its topics, run it."""

from __future__ import annotations

import asyncio
import logging

from services.platform.config import Settings

log = logging.getLogger(__name__)


def run_monitoring(settings: Settings) -> int:
    import faust

    from services.monitoring.bootstrap import parts, prepare_topics, worker_app

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
    worker.execute_from_commandline()
    return 0
