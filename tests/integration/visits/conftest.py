"""The visits app wired to the session's real broker and PostgreSQL, plus a record reader."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.contract.codec import Codec, Decoded
from services.contract.topics import TopicLayout
from services.platform.auth.tokens import PostgresTokenStore, hash_secret, new_secret, new_token
from services.platform.config import VisitsSettings
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from services.platform.postgres.migrate import apply_migrations
from services.visits.bootstrap import wired
from services.visits.entrypoints.http import build_app

# The default layout: the broker is the session's, and the suites run after these (monitoring,
# audit, ...) ensure the default layout and stop on any other (`TopicMismatch`). Visits tests
# work with any layout, so one created earlier by another suite is kept.
LAYOUT = TopicLayout()


async def prepare_topics(bootstrap: str) -> None:
    with contextlib.suppress(TopicMismatch):
        await ensure_topics(bootstrap, LAYOUT)


@dataclass
class Service:
    """A running app on real servers, with a fresh township and tokens for this test module."""

    client: TestClient
    pool: asyncpg.Pool
    bootstrap: str
    township: str
    secrets: dict[str, str]
    codec: Codec

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[role]}"}

    async def register(self, household_id: str, township: str | None = None) -> None:
        """Put a household in the read model, as the registry projection would."""
        await self.pool.execute(
            "INSERT INTO households (household_id, township) VALUES ($1, $2) "
            "ON CONFLICT (household_id) DO UPDATE SET township = EXCLUDED.township",
            household_id,
            township or self.township,
        )


async def issue(pool: asyncpg.Pool, kind: str, holder: str, townships=(), types=()) -> str:
    secret = new_secret()
    await PostgresTokenStore(pool).issue(
        new_token(kind, holder, townships, types), hash_secret(secret)
    )
    return secret


@contextlib.asynccontextmanager
async def running_app(
    bootstrap: str, database_url: str, settings: VisitsSettings
) -> AsyncIterator[tuple[TestClient, asyncpg.Pool]]:
    async with wired(bootstrap, database_url, settings) as parts:
        client = TestClient(TestServer(build_app(parts.dependencies)))
        await client.start_server()
        try:
            yield client, parts.pool
        finally:
            await client.close()


@pytest.fixture(scope="module")
async def service(kafka_bootstrap: str, database_url: str) -> AsyncIterator[Service]:
    await prepare_topics(kafka_bootstrap)
    await apply_migrations(database_url)
    settings = VisitsSettings(request_timeout_seconds=10.0, token_cache_seconds=0.2)
    async with running_app(kafka_bootstrap, database_url, settings) as (client, pool):
        township = f"town-{uuid.uuid4().hex[:8]}"
        secrets = {
            "cadre": await issue(pool, "cadre", "cadre-0042", [township]),
            "elsewhere": await issue(pool, "cadre", "cadre-9", [f"other-{township}"]),
            "feed": await issue(pool, "feed", "feed-health", [], ["HardshipReported"]),
            "operator": await issue(pool, "operator", "op-1"),
        }
        yield Service(client, pool, kafka_bootstrap, township, secrets, Codec.default())


async def read_record(
    bootstrap: str,
    codec: Codec,
    topic: str,
    partition: int,
    offset: int,
    wait_seconds: float = 30.0,
) -> tuple[bytes, Decoded]:
    """The record at (topic, partition, offset), decoded; fails after `wait_seconds`."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        async with asyncio.timeout(wait_seconds):
            while True:
                batch = await consumer.getmany(tp, timeout_ms=500)
                for message in batch.get(tp, []):
                    if message.offset == offset:
                        return message.key, codec.decode(message.value)
    finally:
        await consumer.stop()


def normalised(value):
    """Compare records across JSON and Avro: times in UTC ISO, UUIDs and dates as text."""
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date | uuid.UUID):
        return str(value)
    return value
