"""Measures follow the household, through the real broker, a real support worker and the real
projector: an eliminated household's job goes to the next household in the queue, the release
travels on the pool-commands topic with its reason, each released measure is recorded as a
CANCELLED step on support.measures and shows cancelled in the read model, and the eliminated
household is not served from a queue."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.processes import stop_child
from services.support.domain.following import AFTER_DECISION
from tests.integration.readmodel.test_projector import fresh_database, start_projector, wait_for
from tests.integration.support.test_support_app import (
    JOBS,
    free_port,
    metric,
    small_catalogue,
    start_worker,
)
from tests.records import cadre, registry, risk

pytestmark = pytest.mark.integration
__all__ = ["fresh_database"]  # the read model's private database, a fixture of this module
NOW = dt.datetime(2020, 5, 16, 12, 0, tzinfo=dt.UTC)


async def test_an_eliminated_households_job_goes_to_the_next_in_the_queue_with_the_reason(
    local_kafka_factory, fresh_database: str, tmp_path: Path
):
    bootstrap = local_kafka_factory().start()  # a fresh app id reads every topic from the start
    await ensure_topics(bootstrap, TopicLayout())
    codec = Codec.default()
    prefix = f"fol-{uuid.uuid4().hex[:8]}"
    township = f"镇-{prefix}"
    app_id = f"support-follow-{prefix}"
    pool_topic = f"{app_id}-pool-commands"
    jobs_pool = f"township:{township}:public-welfare-jobs"
    pairing_pool = f"township:{township}:pairing"
    database = await asyncpg.connect(fresh_database)
    port = free_port()
    worker = start_worker(bootstrap, app_id, small_catalogue(tmp_path), tmp_path, port)
    projector = start_projector(bootstrap, fresh_database, f"projector-{prefix}")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    consumer = AIOKafkaConsumer("support.measures", bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", group_id=None)  # fmt: skip
    await producer.start()
    await consumer.start()
    households = [f"{prefix}-{i}" for i in range(JOBS + 1)]  # one more than there are jobs
    steps: dict[uuid.UUID, dict] = {}
    releases: dict[str, dict] = {}  # by measure id: what the pool owner was told, and why

    async def send(topic: str, key: str, record) -> None:
        await producer.send_and_wait(topic, key=key.encode(), value=codec.encode(*record))

    async def collect_until(done, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            assert worker.poll() is None, f"the support worker exited {worker.returncode}"
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; have {len(steps)} steps")
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    if r.topic == pool_topic:
                        command = json.loads(r.value)
                        if "release" in command:
                            releases[command["release"]] = {**command, "pool": r.key.decode()}
                        continue
                    record = codec.decode(r.value).record
                    if record["household_id"].startswith(prefix):
                        steps[record["event_id"]] = record

    def cancellations() -> list[dict]:
        return [s for s in steps.values() if s["step"] == "CANCELLED"]

    def jobs(waiting: bool) -> list[dict]:
        return [s for s in steps.values() if s["measure_type"] == "PUBLIC_WELFARE_JOB"
                and s["step"] == "RECOMMENDED"
                and (s["waiting_for"] is not None) == waiting]  # fmt: skip

    try:
        for hid in households:
            baseline = registry(hid, NOW, township=township, count=2, labour=0, weak_labour=1,
                                students=1, chronically_ill=1, livelihood="MIXED",
                                lifted_year=None, allowance=True)  # fmt: skip
            await send("household.registry", hid, baseline)
            await send("household.risk", hid, risk(hid, NOW))
        await collect_until(lambda: len(jobs(False)) == JOBS and len(jobs(True)) == 1, 240,
                            "every job booked and one household queued")  # fmt: skip
        # The pool-commands topic exists now (the worker created it): read it too, from the start.
        consumer.subscribe(["support.measures", pool_topic])
        holder = jobs(False)[0]
        queued = jobs(True)[0]
        eliminated = holder["household_id"]

        await send("household.risk", eliminated,
                   risk(eliminated, NOW + dt.timedelta(days=30), workflow="ELIMINATED",
                        label="eliminated"))  # fmt: skip
        await collect_until(
            lambda: any(s["measure_id"] == queued["measure_id"] for s in jobs(False)), 120,
            "the queued household to get the eliminated household's job")  # fmt: skip

        release = releases[holder["measure_id"]]
        assert release["pool"] == jobs_pool and release["step"] == "CANCELLED"
        assert (
            f"household ELIMINATED as of {(NOW + dt.timedelta(days=30)).date()}"
            in (release["reason"])
        )
        assert jobs_pool in release["reason"]
        assert len([s for s in jobs(False) if s["household_id"] != eliminated]) == JOBS

        # Each release is recorded on support.measures as a CANCELLED step with its reason.
        eliminated_at = NOW + dt.timedelta(days=30)
        await collect_until(lambda: len(cancellations()) == len(releases), 60,
                            "a CANCELLED step for each release")  # fmt: skip
        for step in cancellations():
            assert step["household_id"] == eliminated and step["actor"] == "support"
            assert step["reasons"] == [releases[step["measure_id"]]["reason"]]
            assert step["pool"] == releases[step["measure_id"]]["pool"]
            assert step["occurred_at"] == eliminated_at + AFTER_DECISION

        # The read model: every released measure (the job, the waiting pairing) cancelled, the
        # job with the release's reason; the queued household's measure recommended, its slot.
        wanted = {measure_id: "cancelled" for measure_id in releases}
        wanted[queued["measure_id"]] = "recommended"

        async def projected() -> bool:
            rows = await database.fetch(
                "SELECT measure_id, status FROM measures WHERE measure_id = ANY($1::text[])",
                list(wanted),
            )
            return {r["measure_id"]: r["status"] for r in rows} == wanted

        await wait_for(projected, 120, "the read model to show the release", projector)
        row = await database.fetchrow(
            "SELECT status, reasons, status_changed_at FROM measures WHERE measure_id = $1",
            holder["measure_id"],
        )
        assert json.loads(row["reasons"]) == [release["reason"]]
        assert row["status_changed_at"] == eliminated_at + AFTER_DECISION
        taken = await database.fetchrow(
            "SELECT household_id, waiting_for, pool FROM measures WHERE measure_id = $1",
            queued["measure_id"],
        )
        assert (taken["household_id"], taken["waiting_for"]) == (queued["household_id"], None)
        step_topics = await database.fetch(
            "SELECT step, source_topic FROM measure_steps WHERE measure_id = $1 ORDER BY step",
            holder["measure_id"],
        )
        assert ("CANCELLED", "support.measures") in {tuple(r) for r in step_topics}
        # Nothing the eliminated household held or waited for stays open in the read model.
        pooled = await database.fetch(
            "SELECT measure_id, status FROM measures WHERE household_id = $1 AND pool IS NOT NULL",
            eliminated,
        )
        assert {r["measure_id"] for r in pooled} == set(releases)
        assert {r["status"] for r in pooled} == {"cancelled"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                text = await response.text()
        assert metric(text, "shouwang_support_cancellations_total", "") == len(releases)

        # Its pairing waited for a cadre (there was none); it was released too. A cadre now
        # pairs every other household and never the eliminated one.
        eliminated_measures = {s["measure_id"] for s in steps.values()
                               if s["household_id"] == eliminated}  # fmt: skip
        pairing = next(m for m in eliminated_measures if releases.get(m, {}).get("pool")
                       == pairing_pool)  # fmt: skip
        assert "ELIMINATED" in releases[pairing]["reason"]
        the_cadre = cadre(f"{prefix}-c", NOW + dt.timedelta(days=31), township=township)
        await send("cadre.registry", f"{prefix}-c", the_cadre)

        def paired() -> list[dict]:
            return [s for s in steps.values() if s["measure_type"] == "PAIRING"
                    and s["step"] == "RECOMMENDED" and s["waiting_for"] is None]  # fmt: skip

        await collect_until(lambda: len(paired()) == len(households) - 1, 120,
                            "the cadre to pair every household still served")  # fmt: skip
        assert eliminated not in {s["household_id"] for s in paired()}
    finally:
        await database.close()
        await consumer.stop()
        await producer.stop()
        stop_child(worker, 30)
        stop_child(projector, 30)
