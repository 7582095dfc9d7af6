"""The projector against the real broker and PostgreSQL: rows appear once, even across a kill."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from services.console.history import HistoryReader
from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.monitoring.adapters.policy_files import load_policies
from services.platform.kafka.admin import ensure_topics
from services.platform.postgres.migrate import apply_migrations
from tests import records
from tests.records import Record

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
NOW = dt.datetime(2020, 5, 16, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """A private database on the session server, dropped afterwards."""
    name = f"proj_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(database_url)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    await apply_migrations(url)
    try:
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def registry_record(household_id: str, at: dt.datetime, labour: int) -> Record:
    """The household these tests project, as its registry row at `at` (one event per row)."""
    return records.registry(
        household_id,
        at,
        labour=labour,
        weak_labour=1,
        students=1,
        chronically_ill=1,
        livelihood="MIXED",
        allowance=True,
        personal={"head_name": "周中勇", "citizen_id": "500231197801010000", "phone": None},
        label=f"registry/{at.isoformat()}/{labour}",
    )


def risk_record(household_id: str, at: dt.datetime) -> Record:
    return records.risk(
        household_id,
        at,
        reasons=[{"code": "rigid_expenditure", "message": "m", "event_ids": ["e1"]}],
    )


def step_record(household_id: str, measure_id: str, step: str, at: dt.datetime) -> Record:
    return records.measure(
        household_id,
        at,
        measure_id,
        step,
        pool="township:鹤游镇:industry-poultry",
        cadre_id=None,
        quantities=[{"item": "ducklings", "amount": 50, "unit": "head"}],
        reasons=["r"],
    )


async def produce(bootstrap: str, prefix: str, households: int) -> int:
    """Per household: two registry rows (out of order), one assessment, three measure steps."""
    codec = Codec.default()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    await producer.start()
    sent = 0
    try:
        for i in range(households):
            hid = f"{prefix}-{i:05d}"
            key = hid.encode()
            mid = f"{hid}-m"
            events = [
                ("household.registry", registry_record(hid, NOW, labour=2)),
                ("household.registry",  # older: must not win
                 registry_record(hid, NOW - 30 * DAY, labour=0)),
                ("household.risk", risk_record(hid, NOW)),
                ("household.measures", step_record(hid, mid, "DELIVERED", NOW + 2 * DAY)),
                ("support.measures", step_record(hid, mid, "RECOMMENDED", NOW)),
                ("household.measures", step_record(hid, mid, "ACCEPTED", NOW + DAY)),
            ]  # fmt: skip
            for topic, event in events:
                await producer.send(topic, codec.encode(*event), key=key)
                sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def start_projector(bootstrap: str, database_url: str, group: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        "SHOUWANG_PROJECTOR_GROUP": group,
        "SHOUWANG_PROJECTOR_BATCH": "500",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "projector"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


async def wait_for(condition, seconds: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + seconds
    while True:
        value = await condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"projector exited {process.returncode}: "
                                 f"{process.stderr.read().decode()[-2000:]}")  # fmt: skip
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_killed_mid_stream_and_restarted_the_projector_applies_each_event_once(
    kafka_bootstrap: str, fresh_database: str
):
    await ensure_topics(kafka_bootstrap, TopicLayout())
    prefix = f"proj-{uuid.uuid4().hex[:8]}"
    households = 1500
    sent = await produce(kafka_bootstrap, prefix, households)
    conn = await asyncpg.connect(fresh_database)
    group = f"test-projector-{prefix}"

    async def steps_applied() -> int:
        return await conn.fetchval(
            "SELECT count(*) FROM measure_steps WHERE household_id LIKE $1", prefix + "%"
        )

    first = start_projector(kafka_bootstrap, fresh_database, group)
    try:
        # Kill as soon as part of the stream is in: later batches are in flight or unread.
        partial = await wait_for(steps_applied, 120, "the first batches", first)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    assert partial < 3 * households, "the projector finished before it could be killed"

    second = start_projector(kafka_bootstrap, fresh_database, group)
    try:

        async def done() -> bool:
            # Topics are read at different paces: wait for every topic's share, not just one.
            household_events = await conn.fetchval(
                "SELECT coalesce(sum(events_projected), 0) FROM households "
                "WHERE household_id LIKE $1",
                prefix + "%",
            )
            return await steps_applied() == 3 * households and household_events >= 3 * households

        await wait_for(done, 180, "all measure steps after the restart", second)
        rows = await conn.fetch(
            "SELECT household_id, labourers, members, events_projected, workflow_status, level "
            "FROM households WHERE household_id LIKE $1",
            prefix + "%",
        )
        assert len(rows) == households
        # Three household events each (two registry rows, one assessment): a double-applied
        # event would show as 4 or more, a lost one as 2.
        assert {r["events_projected"] for r in rows} == {3}
        assert {r["labourers"] for r in rows} == {2}  # the newer registry row won
        assert {(r["workflow_status"], r["level"]) for r in rows} == {("monitored", "HIGH")}
        measures = await conn.fetch(
            "SELECT status, quantities FROM measures WHERE household_id LIKE $1", prefix + "%"
        )
        assert len(measures) == households
        assert {m["status"] for m in measures} == {"delivered"}  # rank wins over arrival order
        assessments = await conn.fetchval(
            "SELECT count(*) FROM assessments WHERE household_id LIKE $1", prefix + "%"
        )
        assert assessments == households
        total = await conn.fetchval("SELECT count(*) FROM pools")
        assert total >= 10  # catalogue pools recorded at start
        assert sent == 6 * households
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(20)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait(10)
        await conn.close()
    assert second.returncode == 0, second.stderr.read().decode()[-2000:]


async def test_a_record_the_database_refuses_is_kept_aside_and_the_batch_goes_on(fresh_database):
    from collections import namedtuple

    from prometheus_client import CollectorRegistry

    from services.readmodel.metrics import ProjectorMetrics
    from services.readmodel.projector import Projector, ProjectorConfig

    Record = namedtuple("Record", "topic partition offset value timestamp")
    codec = Codec.default()
    millis = int(NOW.timestamp() * 1000)
    good, bad = "refuse-good", "refuse-bad"
    records = [
        Record("household.registry", 0, 10, codec.encode(*registry_record(bad, NOW, labour=-3)),
               millis),
        Record("household.registry", 0, 11, codec.encode(*registry_record(good, NOW, labour=2)),
               millis),
    ]  # fmt: skip
    projector = Projector(
        ProjectorConfig(bootstrap="unused:1", database_url=fresh_database),
        codec,
        ProjectorMetrics(CollectorRegistry()),
    )
    conn = await asyncpg.connect(fresh_database)
    try:
        assert await projector.apply(conn, records) == 1
        # Redelivery of the same batch changes nothing: both positions are stored.
        assert await projector.apply(conn, records) == 0
        households = await conn.fetch(
            "SELECT household_id FROM households WHERE household_id = ANY($1::text[])",
            [good, bad],
        )
        rejects = await conn.fetch("SELECT topic, kafka_offset, error FROM projection_rejects")
        position = await conn.fetchval(
            "SELECT max(last_offset) FROM projection_positions WHERE topic = 'household.registry'"
        )
    finally:
        await conn.close()
    assert [r["household_id"] for r in households] == [good]
    assert [(r["topic"], r["kafka_offset"]) for r in rejects] == [("household.registry", 10)]
    assert "labourers_check" in rejects[0]["error"]
    assert position == 11


async def test_the_history_page_reads_a_households_records_by_their_positions_and_past_them(
    kafka_bootstrap: str, fresh_database: str
) -> None:
    """The console's history reader with the read model fetches the records the projector
    positioned, and those past its positions, and explains them as reading the household's
    partitions whole does (`shouwang explain`'s way)."""
    layout = TopicLayout()
    await ensure_topics(kafka_bootstrap, layout)
    prefix = f"hist-{uuid.uuid4().hex[:6]}"
    await produce(kafka_bootstrap, prefix, households=20)
    target = f"{prefix}-00007"
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=2)
    projector = start_projector(kafka_bootstrap, fresh_database, f"test-projector-{prefix}")
    try:

        async def positioned() -> bool:
            count = await pool.fetchval(
                "SELECT count(*) FROM household_records WHERE household_id = $1", target
            )
            return count == 5  # two registry rows and three measure steps; risk is an output

        await wait_for(positioned, 120, "the household's records positioned", projector)
    finally:
        projector.send_signal(signal.SIGTERM)
        projector.wait(30)
    try:
        # Written after the projector stopped: only a read past its positions finds these.
        codec = Codec.default()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for topic, event in (
                ("household.income", records.income(target, NOW + DAY, 2500)),
                ("household.visits", records.visit(target, NOW + 2 * DAY)),
            ):
                await producer.send_and_wait(topic, codec.encode(*event), key=target.encode())
        finally:
            await producer.stop()
        policies = load_policies()
        as_of = NOW + 3 * DAY
        reader = HistoryReader(kafka_bootstrap, layout, policies, pool)
        try:
            by_positions = await reader.read(target, as_of)
            again = await reader.read(target, as_of)  # on the consumer kept from the first
        finally:
            await reader.close()
        whole = await HistoryReader(kafka_bootstrap, layout, policies).read(target, as_of)
    finally:
        await pool.close()
    assert again == by_positions
    assert by_positions is not None and whole is not None
    assert len(whole.events) == 7  # the five positioned records, the income and the visit
    assert by_positions.events == whole.events
    assert by_positions.document == whole.document
    assert await HistoryReader(kafka_bootstrap, layout, policies).read("nobody", as_of) is None
