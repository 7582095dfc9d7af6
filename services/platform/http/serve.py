"""Serving an aiohttp application until SIGINT or SIGTERM: the visits API, the operator API and
the console run the same way, and stop the same way (in-flight requests get 10 s)."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

log = logging.getLogger(__name__)


async def serve_until_signalled(app: web.Application, host: str, port: int, what: str) -> None:
    """Listen on host:port until SIGINT/SIGTERM, then finish in-flight requests and clean up."""
    runner = web.AppRunner(app, access_log=None)
    try:
        await runner.setup()
        await web.TCPSite(runner, host, port, shutdown_timeout=10).start()
        log.info("%s listening on http://%s:%d/", what, host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("%s stopping", what)
    finally:
        await runner.cleanup()
