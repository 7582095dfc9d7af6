"""Wiring for `shouwang monitoring`: from Settings to what the worker needs (its settings,
the policies through the policy files adapter, its topics, the metrics registry, the clock) and
the faust app built from them (entrypoints/app.py builds it; this passes it its parts)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.monitoring.adapters.policy_files import policies_in
from services.monitoring.domain.policy import PolicyBook
from services.platform import health
from services.platform.clock import wall_clock
from services.platform.config import Settings, SettingsError, faust_datadir, kafka_bootstrap
from services.platform.kafka import clients as kafka_clients
from services.platform.kafka.faust import readiness as faust_readiness

GUARANTEES = ("exactly_once", "at_least_once")


@dataclass(frozen=True)
class MonitoringSettings:
    """The monitoring worker's environment (services/monitoring/README.md lists each)."""

    app_id: str = "shouwang-monitoring"  # SHOUWANG_MONITORING_APP_ID
    web_port: int = 8083  # SHOUWANG_MONITORING_PORT: household view and /metrics (on
    # SHOUWANG_BIND_HOST; the view needs a token: SHOUWANG_READER_DATABASE_URL's token table)
    rocksdb: bool = False  # SHOUWANG_MONITORING_ROCKSDB=1: tables in RocksDB under home
    policy_dir: Path | None = None  # SHOUWANG_POLICY_DIR: policy files (default: shipped)
    pinned_policy: str | None = None  # SHOUWANG_POLICY: one version, whatever the date
    sweep_seconds: float = 60.0  # SHOUWANG_MONITORING_SWEEP_SECONDS: deadline ticks, gauges
    guarantee: str = "at_least_once"  # SHOUWANG_MONITORING_GUARANTEE (README: why not EOS)
    event_clock: bool = False  # SHOUWANG_MONITORING_CLOCK=event: assess as of the latest event

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MonitoringSettings:
        env = os.environ if env is None else env
        try:
            port = int(env.get("SHOUWANG_MONITORING_PORT") or cls.web_port)
            sweep = float(env.get("SHOUWANG_MONITORING_SWEEP_SECONDS") or cls.sweep_seconds)
        except ValueError as exc:
            raise SettingsError(f"monitoring settings: {exc}") from None
        if not 0 < port < 65536:
            raise SettingsError(f"SHOUWANG_MONITORING_PORT={port}: not a TCP port")
        if not 0 < sweep <= 86_400:
            raise SettingsError(f"SHOUWANG_MONITORING_SWEEP_SECONDS={sweep}: 0 < s ≤ 86400")
        guarantee = env.get("SHOUWANG_MONITORING_GUARANTEE") or cls.guarantee
        if guarantee not in GUARANTEES:
            raise SettingsError(f"SHOUWANG_MONITORING_GUARANTEE={guarantee!r}: one of {GUARANTEES}")
        clock = env.get("SHOUWANG_MONITORING_CLOCK") or "wall"
        if clock not in ("wall", "event"):
            raise SettingsError(f"SHOUWANG_MONITORING_CLOCK={clock!r}: wall or event")
        return cls(
            app_id=env.get("SHOUWANG_MONITORING_APP_ID") or cls.app_id,
            web_port=port,
            rocksdb=env.get("SHOUWANG_MONITORING_ROCKSDB", "") in ("1", "true", "yes"),
            policy_dir=Path(env["SHOUWANG_POLICY_DIR"]) if env.get("SHOUWANG_POLICY_DIR") else None,
            pinned_policy=env.get("SHOUWANG_POLICY") or None,
            sweep_seconds=sweep,
            guarantee=guarantee,
            event_clock=clock == "event",
        )


@dataclass(frozen=True)
class Parts:
    """What the worker is built from; nothing here has connected to anything yet."""

    own: MonitoringSettings
    settings: Settings
    bootstrap: str
    policies: PolicyBook
    clock: Callable[[], datetime]


def parts(settings: Settings, env: Mapping[str, str] | None = None) -> Parts:
    """The worker's settings and policies, checked before any broker is dialled."""
    own = MonitoringSettings.from_env(env)
    policies = policies_in(own.policy_dir)
    if own.pinned_policy:
        policies.get(own.pinned_policy)  # fail fast on an unknown version
    return Parts(own, settings, kafka_bootstrap(settings), policies, wall_clock)


async def prepare_topics(bootstrap: str, settings: Settings, app_id: str) -> None:
    """The catalogue's topics and the app's tick topic (faust does not create source topics
    against this broker)."""
    from aiokafka.admin import NewTopic

    from services.monitoring.entrypoints.app import changelog_topics, ticks_topic
    from services.platform.kafka.admin import ensure_topics

    await ensure_topics(bootstrap, settings.layout)
    layout = settings.layout
    wanted = {
        ticks_topic(app_id): {"retention.ms": str(7 * 86_400_000)},
        **{name: {"cleanup.policy": "compact"} for name in changelog_topics(app_id)},
    }
    admin = kafka_clients.admin(bootstrap, client_id=f"{app_id}-admin")
    await kafka_clients.start(admin, bootstrap)
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name, layout.household_partitions, layout.replication_factor, topic_configs=config
            )
            for name, config in wanted.items()
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
            # wait until the broker reports every new topic's partitions with leaders, so the
            # worker's first metadata already knows them
            async with asyncio.timeout(60):
                while True:
                    described = await admin.describe_topics([t.name for t in missing])
                    if all(
                        d["partitions"]
                        and not d["error_code"]
                        and all(p["leader"] >= 0 for p in d["partitions"])
                        for d in described
                    ):
                        break
                    await asyncio.sleep(0.2)
    finally:
        await admin.close()


def worker_app(parts: Parts) -> Any:
    """The faust app with its metrics registry, served on its web port at /metrics, its
    household view behind tokens (the reader's token table, revocations from the log)."""
    from prometheus_client import generate_latest

    from services.contract.codec import Codec
    from services.monitoring.entrypoints.app import build_app
    from services.monitoring.metrics import MonitoringMetrics
    from services.platform.auth.gate import worker_gate
    from services.platform.metrics import new_registry

    own = parts.own
    registry = new_registry()
    gate = worker_gate(parts.settings, parts.bootstrap)
    app = build_app(
        app_id=own.app_id,
        bootstrap=parts.bootstrap,
        codec=Codec.default(),
        policies=parts.policies,
        metrics=MonitoringMetrics(registry),
        layout=parts.settings.layout,
        store="rocksdb://" if own.rocksdb else "memory://",
        datadir=faust_datadir(parts.settings.home, own.app_id),
        web_port=own.web_port,
        web_host=parts.settings.bind_host,
        tokens=gate.tokens,
        pinned_policy=own.pinned_policy,
        sweep_seconds=own.sweep_seconds,
        processing_guarantee=own.guarantee,
        clock=parts.clock,
        event_clock=own.event_clock,
    )

    @app.page("/metrics")
    async def metrics_page(web, request):
        return web.bytes(generate_latest(registry), content_type="text/plain; version=0.0.4")

    health.add_faust_pages(app, faust_readiness.checks(app, parts.settings.ready_max_lag))

    @app.task
    async def revocation_feed() -> None:
        await gate.run()

    return app
