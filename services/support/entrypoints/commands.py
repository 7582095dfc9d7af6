"""Entrypoints for `shouwang support` (the faust worker) and `shouwang import cadres FILE.csv`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
from pathlib import Path

from services.contract.topics import Topic
from services.platform.config import Settings, faust_datadir

log = logging.getLogger(__name__)
APP_ID = "shouwang-support"


def internal_topics(app_id: str) -> tuple[Topic, ...]:
    """The app's own topics, sized like the household topics.

    faust would create the changelogs itself, but two workers starting together race: one
    reads the changelog's metadata before the other's creation is visible and crashes
    (PartitionsMismatch, "has 0 partitions"). Creating them before the worker starts, like the
    source topics, removes the race.
    """
    from services.support.entrypoints.app import CHANGELOG_TABLES, pool_commands_topic

    week = {"retention.ms": str(7 * 86_400_000), "cleanup.policy": "delete"}
    commands = Topic(pool_commands_topic(app_id), "json", "pool", "internal",
                     "Needs, releases and cadres re-keyed by pool instance.", week)  # fmt: skip
    changelogs = tuple(
        Topic(
            f"{app_id}-{table}-changelog",
            "json",
            "table key",
            "internal",
            f"faust changelog of table {table}",
            {"cleanup.policy": "compact"},
        )
        for table in CHANGELOG_TABLES
    )
    return (commands, *changelogs)


async def _prepare_topics(bootstrap: str, settings: Settings, app_id: str) -> None:
    from services.platform.kafka.admin import ensure_topics

    await ensure_topics(bootstrap, settings.layout)
    await ensure_topics(bootstrap, settings.layout, internal_topics(app_id))


def run_support(settings: Settings, app_id: str = APP_ID) -> int:
    import faust
    from prometheus_client import CollectorRegistry, generate_latest

    from services.contract.catalogue_changes import load_with_content
    from services.contract.codec import Codec
    from services.platform.config import kafka_bootstrap
    from services.support.entrypoints.app import build_app
    from services.support.metrics import SupportMetrics

    # Fail fast on a bad catalogue; its bytes are kept for the activation's hash.
    catalogue, content = load_with_content(settings.catalogue_path)
    bootstrap = kafka_bootstrap(settings)
    asyncio.run(_prepare_topics(bootstrap, settings, app_id))
    # The catalogue is about to decide who gets what: the log must say which one is in use.
    from services.support.entrypoints.catalogue_commands import activate_at_start

    activate_at_start(settings, bootstrap, app_id, catalogue, content)
    registry = CollectorRegistry()
    store = "rocksdb://" if settings.support_rocksdb else "memory://"
    app = build_app(app_id=app_id, bootstrap=bootstrap, catalogue=catalogue,
                    codec=Codec.default(), metrics=SupportMetrics(registry),
                    layout=settings.layout, store=store,
                    datadir=faust_datadir(settings.home, app_id),
                    web_port=settings.support_metrics_port)  # fmt: skip

    if settings.support_metrics_port:
        # faust's own web server (the worker's event loop) serves the registry.
        @app.page("/metrics")
        async def metrics_page(web, request):
            return web.bytes(generate_latest(registry), content_type="text/plain; version=0.0.4")

    log.info(
        "support worker %s: catalogue %s, %d measures",
        app_id,
        catalogue.id,
        len(catalogue.measures),
    )
    worker = faust.Worker(app, loglevel="INFO", override_logging=False)
    worker.execute_from_commandline()
    return 0


def add_import_command(importing: argparse._SubParsersAction) -> None:
    """Register `shouwang import cadres FILE.csv` beside `import households`."""
    cadres = importing.add_parser("cadres", help="a cadre roster CSV (cadre.registry)")
    cadres.add_argument("file", type=Path)
    cadres.add_argument(
        "--skip-bad", action="store_true", help="import the good rows of a file with bad rows"
    )
    cadres.add_argument(
        "--as-of", type=dt.date.fromisoformat, help="occurred_at for rows without 登记日期"
    )
    cadres.add_argument("--actor", default=None, help="operator id (default: operator:$USER)")
    cadres.add_argument("--check", action="store_true", help="check only, write nothing")
    cadres.set_defaults(run=run_import_cadres)


def run_import_cadres(args: argparse.Namespace, settings: Settings) -> int:
    from services.visits.entrypoints.commands import run_csv_import
    from services.visits.imports.cadres import import_cadres, parse

    return run_csv_import(args, settings, "cadres", parse, import_cadres)


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
    from services.readmodel.api import ApiDependencies, ApiMetrics, build_api, init_connection
    from services.readmodel.commands import database_for, prepare_schema

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
