"""Entrypoints for `shouwang projector` and `shouwang support-api` (the operator read API)."""

from __future__ import annotations

import asyncio
import logging

from services.platform.config import Settings, kafka_bootstrap
from services.platform.postgres.database import database_for

log = logging.getLogger(__name__)


def run_projector(settings: Settings) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from services.contract.catalogue import load_catalogue
    from services.readmodel.projector import ProjectorConfig, serve

    catalogue = load_catalogue(settings.catalogue_path)
    database = database_for(settings, "projector")
    config = ProjectorConfig(
        bootstrap=kafka_bootstrap(settings),
        database_url=database.url,
        migrate=database.owner,
        group_id=settings.projector_group,
        batch_size=settings.projector_batch_size,
    )
    registry = CollectorRegistry()
    if settings.projector_metrics_port:
        start_http_server(settings.projector_metrics_port, registry=registry)
        log.info("projector metrics on :%d/metrics", settings.projector_metrics_port)
    asyncio.run(serve(config, catalogue, registry))
    return 0


def run_support_api(settings: Settings) -> int:
    """`shouwang support-api`: the operator API over the read model until SIGINT/SIGTERM."""
    asyncio.run(serve_api(settings))
    return 0


async def serve_api(settings: Settings, host: str = "0.0.0.0") -> None:
    import signal

    import asyncpg
    from aiohttp import web
    from prometheus_client import CollectorRegistry

    from services.platform.auth.tokens import CachedTokens, PostgresTokenStore
    from services.platform.postgres.database import database_for, prepare_schema
    from services.readmodel.api import ApiDependencies, ApiMetrics, build_api, init_connection

    # Read-only: the reader role, unless only the owner's URL is configured.
    database = database_for(settings, "reader")
    await prepare_schema(database)
    pool = await asyncpg.create_pool(
        database.url, min_size=1, max_size=4, command_timeout=10, init=init_connection
    )
    registry = CollectorRegistry()
    deps = ApiDependencies(
        pool=pool,
        tokens=CachedTokens(PostgresTokenStore(pool), ttl=settings.visits.token_cache_seconds),
        registry=registry,
        metrics=ApiMetrics(registry),
    )
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
        await pool.close()
