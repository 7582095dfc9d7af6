"""Entrypoints for `shouwang support` (the faust worker) and `shouwang import cadres FILE.csv`."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry, start_http_server

from services.config import Settings
from services.contract.topics import FOREVER

log = logging.getLogger(__name__)
APP_ID = "shouwang-support"


async def _prepare_topics(bootstrap: str, settings: Settings, app_id: str) -> None:
    from services.kafka.admin import ensure_topics

    from .app import pool_commands_topic

    await ensure_topics(bootstrap, settings.layout)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=f"{app_id}-admin")
    await admin.start()
    try:
        name = pool_commands_topic(app_id)
        if name not in set(await admin.list_topics()):
            await admin.create_topics([NewTopic(
                name, settings.layout.household_partitions, settings.layout.replication_factor,
                topic_configs=dict(FOREVER))])  # fmt: skip
    finally:
        await admin.close()


def run_support(settings: Settings, app_id: str = APP_ID) -> int:
    import faust

    from services.contract.codec import Codec
    from services.readmodel.commands import local_bootstrap

    from .app import build_app
    from .catalogue import load_catalogue
    from .metrics import SupportMetrics

    catalogue = load_catalogue(settings.catalogue_path)  # fail fast on a bad catalogue
    bootstrap = local_bootstrap(settings)
    asyncio.run(_prepare_topics(bootstrap, settings, app_id))
    registry = CollectorRegistry()
    if settings.support_metrics_port:
        start_http_server(settings.support_metrics_port, registry=registry)
    store = f"rocksdb://{settings.home / 'support-tables'}" if settings.support_rocksdb \
        else "memory://"  # fmt: skip
    app = build_app(app_id=app_id, bootstrap=bootstrap, catalogue=catalogue,
                    codec=Codec.default(), metrics=SupportMetrics(registry),
                    layout=settings.layout, store=store)  # fmt: skip
    log.info(
        "support worker %s: catalogue %s, %d measures",
        app_id,
        catalogue.id,
        len(catalogue.measures),
    )
    worker = faust.Worker(app, loglevel="INFO", override_logging=False)
    worker.execute_from_commandline()
    return 0
