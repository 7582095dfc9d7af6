"""Entrypoint for `shouwang support`: the faust worker, its topics and its catalogue."""

from __future__ import annotations

import asyncio
import logging

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
    from services.support.catalogue_commands import activate_at_start

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
