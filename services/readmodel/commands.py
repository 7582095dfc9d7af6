"""Entrypoint for `shouwang projector`: wires settings, catalogue, registry and the projector."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry, start_http_server

from services.config import Settings, SettingsError

log = logging.getLogger(__name__)


def local_database_url(settings: Settings) -> str:
    """DATABASE_URL, else the local stack's PostgreSQL (`shouwang stack up`)."""
    if settings.database_url:
        return settings.database_url
    from services.localstack import stack

    postgres = stack.status(settings.home).get("postgres", {})
    if not postgres.get("running") or not postgres.get("database_url"):
        raise SettingsError(
            "DATABASE_URL is not set and no local stack runs under "
            f"{settings.home}; run `shouwang stack up` or set it"
        )
    return str(postgres["database_url"])


def local_bootstrap(settings: Settings) -> str:
    """KAFKA_BOOTSTRAP_SERVERS, else the local stack's broker."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    from services.localstack import stack

    kafka = stack.status(settings.home).get("kafka", {})
    if not kafka.get("running") or not kafka.get("bootstrap"):
        raise SettingsError(
            "KAFKA_BOOTSTRAP_SERVERS is not set and no local stack runs under "
            f"{settings.home}; run `shouwang stack up` or set it"
        )
    return str(kafka["bootstrap"])


def run_projector(settings: Settings) -> int:
    from services.readmodel.projector import ProjectorConfig, serve
    from services.support.catalogue import load_catalogue

    catalogue = load_catalogue(settings.catalogue_path)
    config = ProjectorConfig(
        bootstrap=local_bootstrap(settings),
        database_url=local_database_url(settings),
        group_id=settings.projector_group,
        batch_size=settings.projector_batch_size,
    )
    registry = CollectorRegistry()
    if settings.projector_metrics_port:
        start_http_server(settings.projector_metrics_port, registry=registry)
        log.info("projector metrics on :%d/metrics", settings.projector_metrics_port)
    asyncio.run(serve(config, catalogue, registry))
    return 0
