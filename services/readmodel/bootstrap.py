"""Wiring: the projector's and the operator API's dependencies built from Settings, and serving.

Each side connects with its own duty's database (platform/postgres/database.py): the projector
as "projector" (writes the read model; migrates only with the owner's URL), the operator API as
"reader" (reads it, and the token table). Each has its own Prometheus registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.contract.catalogue import Catalogue, load_catalogue
from services.contract.codec import Codec
from services.platform import health
from services.platform.auth.gate import TokenGate
from services.platform.auth.tokens import PostgresTokenStore
from services.platform.config import Settings, kafka_bootstrap
from services.platform.http.problems import problems_middleware
from services.platform.http.serve import serve_until_signalled
from services.platform.metrics import new_registry
from services.platform.postgres.database import database_for, prepare_schema
from services.platform.unreachable import probe_database
from services.readmodel.api import ApiDependencies, build_api, init_connection
from services.readmodel.metrics import ApiMetrics, CampaignGauges, ProjectorMetrics
from services.readmodel.projector import Projector, ProjectorConfig, serve
from services.readmodel.rectification import periods_from_env

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
    periods = periods_from_env()  # a policy without a rectification period stops start-up
    database = database_for(settings, "projector")
    config = ProjectorConfig(
        bootstrap=kafka_bootstrap(settings),
        database_url=database.url,
        migrate=database.owner,
        group_id=settings.projector_group,
        batch_size=settings.projector_batch_size,
        periods=periods,
    )
    return ProjectorParts(config, catalogue, new_registry())


async def serve_projector(settings: Settings) -> None:
    """Project until SIGTERM or SIGINT; /metrics, /healthz and /readyz on
    SHOUWANG_PROJECTOR_METRICS_PORT if set (address SHOUWANG_BIND_HOST)."""
    parts = projector_parts(settings)
    # Once at start: the projector waits out a database that goes away later (an outage), but
    # one that never answered is a wrong URL or a server not started, the operator's to fix.
    # (An unreachable broker needs no probe: the consumer's start fails, after the schema
    # check, and main reports it.)
    await probe_database(parts.config.database_url)
    projector = Projector(parts.config, Codec.default(), ProjectorMetrics(parts.registry))
    runner = None
    if settings.projector_metrics_port:
        app = projector_app(parts.registry, projector_checks(projector, parts.config, settings))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, port = settings.bind_host, settings.projector_metrics_port
        await web.TCPSite(runner, host, port).start()
        log.info("projector /metrics, /healthz, /readyz on %s:%d", host, port)
    try:
        await serve(parts.config, parts.catalogue, parts.registry, projector)
    finally:
        if runner is not None:
            await runner.cleanup()


def projector_app(registry: CollectorRegistry, checks: dict[str, health.Check]) -> web.Application:
    """The projector's web server: /metrics, /healthz and /readyz, nothing else (all three
    served without a token: platform/auth/http.py EXEMPT_PATHS)."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application(middlewares=[problems_middleware()])  # 404/405/400 as problems too
    app.router.add_get("/metrics", metrics, allow_head=False)
    health.add_routes(app.router, checks)
    return app


def projector_checks(
    projector: Projector, config: ProjectorConfig, settings: Settings
) -> dict[str, health.Check]:
    """Ready: partitions assigned, the database answering, lag under SHOUWANG_READY_MAX_LAG
    (records not yet applied, against the ends the broker reports now)."""

    async def partitions() -> str | None:
        if projector.consumer is None:
            return "no partitions assigned yet (the consumer group has not balanced)"
        return None

    async def database() -> str | None:
        # Its own connection: the projector's is busy inside a batch's transaction.
        conn = await asyncpg.connect(config.database_url, timeout=health.CHECK_TIMEOUT_SECONDS)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
        return None

    async def lag() -> str | None:
        consumer = projector.consumer
        if consumer is None:
            return "not consuming yet"
        assigned = dict(projector.positions)
        ends = await consumer.end_offsets(list(assigned))
        unknown = [tp for tp, at in assigned.items() if at is None]
        first = await consumer.beginning_offsets(unknown) if unknown else {}
        positions = {tp: first.get(tp, 0) if at is None else at for tp, at in assigned.items()}
        return health.lag_reason(health.consumer_lag(ends, positions), settings.ready_max_lag)

    return {"partitions": partitions, "database": database, "lag": lag}


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
        registry = new_registry()
        yield ApiDependencies(
            pool=pool,
            tokens=gate.tokens,
            registry=registry,
            metrics=ApiMetrics(registry),
            campaign=CampaignGauges(registry),
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
        await serve_until_signalled(
            build_api(deps), host, settings.support_api_port, "operator API"
        )
