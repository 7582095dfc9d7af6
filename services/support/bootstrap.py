"""Wiring: the support worker's dependencies built from Settings (catalogue, topics, clock,
registry, the faust app), so the CLI command only starts it."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import faust
from prometheus_client import CollectorRegistry, generate_latest

from services.contract.catalogue import Catalogue
from services.contract.catalogue_changes import load_with_content
from services.contract.codec import Codec
from services.contract.topics import Topic
from services.platform import health
from services.platform.auth.gate import worker_gate
from services.platform.clock import wall_clock
from services.platform.config import Settings, faust_datadir, kafka_bootstrap
from services.platform.kafka.admin import ensure_topics
from services.platform.kafka.faust import readiness as faust_readiness
from services.platform.metrics import new_registry
from services.support.catalogue_activation import activate_at_start
from services.support.entrypoints.app import CHANGELOG_TABLES, build_app, pool_commands_topic
from services.support.metrics import SupportMetrics

log = logging.getLogger(__name__)


def internal_topics(app_id: str) -> tuple[Topic, ...]:
    """The app's own topics, sized like the household topics.

    faust would create the changelogs itself, but two workers starting together race: one
    reads the changelog's metadata before the other's creation is visible and crashes
    (PartitionsMismatch, "has 0 partitions"). Creating them before the worker starts, like the
    source topics, removes the race.
    """
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


async def prepare_topics(bootstrap: str, settings: Settings, app_id: str) -> None:
    await ensure_topics(bootstrap, settings.layout)
    await ensure_topics(bootstrap, settings.layout, internal_topics(app_id))


@dataclass(frozen=True)
class SupportWorker:
    """A support worker ready to start: its app, its catalogue and its metrics registry."""

    app: faust.App
    catalogue: Catalogue
    registry: CollectorRegistry


def support_worker(settings: Settings, app_id: str) -> SupportWorker:
    """Load the catalogue (failing fast on a bad one), create the topics, record the
    catalogue's activation, and build the app with the wall clock and a fresh registry."""
    catalogue, content = load_with_content(settings.catalogue_path)  # bytes kept for the hash
    bootstrap = kafka_bootstrap(settings)
    asyncio.run(prepare_topics(bootstrap, settings, app_id))
    # The catalogue is about to decide who gets what: the log must say which one is in use.
    activate_at_start(settings, bootstrap, app_id, catalogue, content)
    registry = new_registry()
    gate = worker_gate(settings, bootstrap)  # faust's index page: operators only
    store = "rocksdb://" if settings.support_rocksdb else "memory://"
    app = build_app(app_id=app_id, bootstrap=bootstrap, catalogue=catalogue,
                    codec=Codec.default(), metrics=SupportMetrics(registry),
                    layout=settings.layout, clock=wall_clock, store=store,
                    datadir=faust_datadir(settings.home, app_id),
                    web_port=settings.support_metrics_port, web_host=settings.bind_host,
                    tokens=gate.tokens)  # fmt: skip
    if settings.support_metrics_port:
        # faust's own web server (the worker's event loop) serves the registry.
        @app.page("/metrics")
        async def metrics_page(web, request):
            return web.bytes(generate_latest(registry), content_type="text/plain; version=0.0.4")

        health.add_faust_pages(app, faust_readiness.checks(app, settings.ready_max_lag))

        @app.task
        async def revocation_feed() -> None:
            await gate.run()

    return SupportWorker(app, catalogue, registry)
