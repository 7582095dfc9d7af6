"""Wiring: real adapters (aiokafka, asyncpg, Prometheus registry, the wall clock) into the app,
the imports and the token commands; and serving the app."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry

from services.contract.catalogue import Catalogue, load_catalogue
from services.contract.codec import Codec
from services.platform.actions.log import append, operator_sink, prepare_topic
from services.platform.auth.gate import TokenGate
from services.platform.auth.tokens import PostgresTokenStore
from services.platform.clock import wall_clock
from services.platform.config import Settings, VisitsSettings, kafka_bootstrap
from services.platform.http.serve import serve_until_signalled
from services.platform.kafka.producer import Delivery, KafkaSink
from services.platform.metrics import new_registry
from services.platform.personal.keys import CachedKeys, PostgresKeyStore, load_master_key
from services.platform.personal.sealer import PersonalSealer, postgres_sealer
from services.platform.postgres.database import Database, database_for, prepare_schema
from services.visits.adapters.directory import CachedDirectory, PostgresDirectory
from services.visits.adapters.household_view import HouseholdViews, MonitoringViews, NoView
from services.visits.entrypoints.http import Dependencies, build_app
from services.visits.entrypoints.openapi import build_document
from services.visits.metrics import VisitsMetrics
from services.visits.service import Limits

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def sealed_sink(settings: Settings) -> AsyncIterator[tuple[PersonalSealer, KafkaSink]]:
    """The sealer and the producer a bulk import (households, cadres) writes registry records
    through, closed when it is done.

    The sealer comes first: without a master key it raises SettingsError before anything
    connects, so a misconfigured import writes nothing. It uses the visits duty's database,
    whose role may make personal-data keys.
    """
    async with postgres_sealer(database_for(settings, "visits")) as sealer:
        sink = KafkaSink(kafka_bootstrap(settings), timeout=settings.visits.request_timeout_seconds)
        try:
            yield sealer, sink
        finally:
            await sink.close()


@contextlib.asynccontextmanager
async def token_store(settings: Settings) -> AsyncIterator[PostgresTokenStore]:
    """The token table, through the tokens duty's database (schema checked or migrated first)."""
    database = database_for(settings, "tokens")
    await prepare_schema(database)
    pool = await asyncpg.create_pool(database.url, min_size=1, max_size=1)
    try:
        yield PostgresTokenStore(pool)
    finally:
        await pool.close()


async def record_operator_action(settings: Settings, record: Mapping[str, Any]) -> Delivery:
    """Append one operator action to operator.actions (acks=all), creating the topic if needed;
    BrokerUnavailable when Kafka does not take it."""
    timeout = settings.visits.request_timeout_seconds
    bootstrap = kafka_bootstrap(settings)
    sink = operator_sink(bootstrap, timeout)
    try:
        await prepare_topic(bootstrap, settings.layout, timeout)
        return await append(sink, Codec.default(), record)
    finally:
        await sink.close()


def limits_of(settings: VisitsSettings) -> Limits:
    return Limits(
        max_body_bytes=settings.max_body_bytes,
        max_batch=settings.max_batch,
        future_skew=dt.timedelta(seconds=settings.future_skew_seconds),
        retry_after_seconds=settings.retry_after_seconds,
        max_in_flight=settings.max_in_flight,
        operator_reserve=settings.operator_reserve,
        body_timeout_seconds=settings.body_timeout_seconds,
        quotas=settings.quotas,
    )


@dataclass
class Wired:
    """The running service's parts, so that it can be closed in order."""

    dependencies: Dependencies
    pool: asyncpg.Pool
    sink: KafkaSink


@contextlib.asynccontextmanager
async def wired(
    bootstrap: str,
    database: str | Database,
    settings: VisitsSettings,
    registry: CollectorRegistry | None = None,
    codec: Codec | None = None,
    master_key: bytes | None = None,
    catalogue: Catalogue | None = None,
) -> AsyncIterator[Wired]:
    """Real dependencies for the app: the schema ready, a pool, a lazily started producer.

    A plain URL is taken as the owner's (migrations applied with it). The API reads tokens and
    the household directory and makes personal-data keys, nothing else, so it runs with the
    visits role when one is set (0006_personal_keys). `master_key` wraps those keys; by default
    it comes from the environment, and without one the service does not start (SettingsError).
    """
    master = master_key if master_key is not None else load_master_key()
    if isinstance(database, str):
        database = Database(database, owner=True)
    await prepare_schema(database)
    pool = await asyncpg.create_pool(database.url, min_size=1, max_size=4, command_timeout=5)
    sink = KafkaSink(bootstrap, timeout=settings.request_timeout_seconds)
    # Revocations arrive from operator.actions while the app serves (platform/auth/gate.py).
    gate = TokenGate(PostgresTokenStore(pool), bootstrap, settings.token_cache_seconds)
    feed = gate.start()
    views = household_views(settings)
    try:
        codec = codec or Codec.default()
        measures = catalogue or load_catalogue()
        deps = Dependencies(
            codec=codec,
            sink=sink,
            tokens=gate.tokens,
            directory=CachedDirectory(PostgresDirectory(pool)),
            sealer=PersonalSealer(
                CachedKeys(PostgresKeyStore(pool, master), ttl=settings.personal_key_cache_seconds)
            ),
            metrics=VisitsMetrics(registry or new_registry()),
            # the committed document, but with the catalogue in force (SHOUWANG_CATALOGUE)
            openapi=build_document(codec, measures),
            catalogue=measures,
            limits=limits_of(settings),
            clock=wall_clock,
            views=views,
            ready_checks={"database": _pool_usable(pool)},
        )
        yield Wired(deps, pool, sink)
    finally:
        await views.close()
        feed.cancel()
        await asyncio.gather(feed, return_exceptions=True)
        await sink.close()
        await pool.close()


def household_views(settings: VisitsSettings) -> HouseholdViews:
    """The monitoring view the door checks a review decision's procedure order against; none
    without SHOUWANG_VISITS_MONITORING_URL (every decision then accepted unchecked, counted)."""
    if settings.monitoring_url is None or settings.monitoring_token is None:
        missing = (
            "SHOUWANG_VISITS_MONITORING_URL"
            if settings.monitoring_url is None
            else "SHOUWANG_VISITS_MONITORING_TOKEN (or _FILE)"
        )
        log.warning(
            "%s is not set: review decisions are taken without checking their procedure order "
            "at the door (the monitoring fold still refuses a skipped step)",
            missing,
        )
        return NoView()
    return MonitoringViews(
        settings.monitoring_url, settings.monitoring_token, settings.monitoring_timeout_seconds
    )


def _pool_usable(pool: asyncpg.Pool):
    async def database() -> str | None:
        await pool.fetchval("SELECT 1")  # tokens and the directory are read through this pool
        return None

    return database


async def serve(settings: Settings) -> None:
    """Run the API until SIGINT/SIGTERM; in-flight requests finish before the producer closes."""
    visits = settings.visits
    database = database_for(settings, "visits")
    catalogue = load_catalogue(settings.catalogue_path)  # a bad file stops the start here
    async with wired(kafka_bootstrap(settings), database, visits, catalogue=catalogue) as parts:
        await serve_until_signalled(
            build_app(parts.dependencies), visits.host, visits.port, "visits API"
        )
