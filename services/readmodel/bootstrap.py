"""Wiring: the projector's and the operator API's dependencies built from Settings, and serving.

Each side connects with its own duty's database (platform/postgres/database.py): the projector
as "projector" (writes the read model; migrates only with the owner's URL), the operator API as
"reader" (reads it, and the token table). Each has its own Prometheus registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, generate_latest

from services.contract.catalogue import Catalogue, load_catalogue
from services.platform.auth.gate import TokenGate
from services.platform.auth.tokens import PostgresTokenStore
from services.platform.config import Settings, kafka_bootstrap
from services.platform.postgres.database import database_for, prepare_schema
from services.readmodel.api import ApiDependencies, build_api, init_connection
from services.readmodel.metrics import ApiMetrics
from services.readmodel.projector import ProjectorConfig, serve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProjectorParts:
    """What `projector.serve` needs: where to read and write, the catalogue whose pools it
    records at start-up, and the registry its metrics go on."""

    config: ProjectorConfig
    catalogue: Catalogue
    registry: CollectorRegistry


def projector_parts(settings: Settings) -> ProjectorParts:
    """The projector's dependencies: the catalogue (a bad one is refused before the database
    is looked up), the projector duty's database, the broker, and a fresh registry."""
    catalogue = load_catalogue(settings.catalogue_path)
    database = database_for(settings, "projector")
    config = ProjectorConfig(
        bootstrap=kafka_bootstrap(settings),
        database_url=database.url,
        migrate=database.owner,
        group_id=settings.projector_group,
        batch_size=settings.projector_batch_size,
    )
    return ProjectorParts(config, catalogue, CollectorRegistry())


async def serve_projector(settings: Settings) -> None:
    """Project until SIGTERM or SIGINT, with /metrics on SHOUWANG_PROJECTOR_METRICS_PORT if set
    (address SHOUWANG_BIND_HOST)."""
    parts = projector_parts(settings)
    runner = None
    if settings.projector_metrics_port:
        runner = web.AppRunner(projector_metrics_app(parts.registry), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.bind_host, settings.projector_metrics_port).start()
        log.info("projector metrics on %s:%d", settings.bind_host, settings.projector_metrics_port)
    try:
        await serve(parts.config, parts.catalogue, parts.registry)
    finally:
        if runner is not None:
            await runner.cleanup()


def projector_metrics_app(registry: CollectorRegistry) -> web.Application:
    """The projector's web server: /metrics and nothing else (prometheus_client's own server
    answers every path with the metrics)."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", metrics, allow_head=False)
    return app


@contextlib.asynccontextmanager
async def api_dependencies(settings: Settings) -> AsyncIterator[ApiDependencies]:
    """The operator API's dependencies, its pool closed on the way out.

    Read-only: the reader role, unless only the owner's URL is configured (then the schema is
    migrated first, as by any service started with the owner's URL).
    """
    database = database_for(settings, "reader")
    await prepare_schema(database)
    pool = await asyncpg.create_pool(
        database.url, min_size=1, max_size=4, command_timeout=10, init=init_connection
    )
    # Revocations arrive from operator.actions while the API serves (platform/auth/gate.py).
    gate = TokenGate(
        PostgresTokenStore(pool), kafka_bootstrap(settings), settings.visits.token_cache_seconds
    )
    feed = gate.start()
    try:
        registry = CollectorRegistry()
        yield ApiDependencies(
            pool=pool,
            tokens=gate.tokens,
            registry=registry,
            metrics=ApiMetrics(registry),
        )
    finally:
        feed.cancel()
        await asyncio.gather(feed, return_exceptions=True)
        await pool.close()


async def serve_api(settings: Settings, host: str | None = None) -> None:
    """The operator API on SHOUWANG_SUPPORT_API_PORT (address SHOUWANG_BIND_HOST) until
    SIGINT/SIGTERM."""
    host = host or settings.bind_host
    async with api_dependencies(settings) as deps:
        runner = web.AppRunner(build_api(deps), access_log=None)
        try:
            await runner.setup()
            await web.TCPSite(runner, host, settings.support_api_port, shutdown_timeout=10).start()
            log.info("operator API listening on %s:%d", host, settings.support_api_port)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()
