"""Measures follow the household, through the real broker and a real support worker: an
eliminated household's job goes to the next household in the queue, the release travels on the
pool-commands topic with its reason, and the eliminated household is not served from a queue."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.processes import stop_child
from tests.integration.support.test_support_app import (
    JOBS,
    free_port,
    small_catalogue,
    start_worker,
)
from tests.records import cadre, registry, risk

pytestmark = pytest.mark.integration
NOW = dt.datetime(2020, 5, 16, 12, 0, tzinfo=dt.UTC)


async def test_an_eliminated_households_job_goes_to_the_next_in_the_queue_with_the_reason(
    local_kafka_factory, tmp_path: Path
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
    worker = start_worker(bootstrap, app_id, small_catalogue(tmp_path), tmp_path, free_port())
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

    def jobs(waiting: bool) -> list[dict]:
        return [s for s in steps.values() if s["measure_type"] == "PUBLIC_WELFARE_JOB"
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
            return [s for s in steps.values()
                    if s["measure_type"] == "PAIRING" and s["waiting_for"] is None]  # fmt: skip

        await collect_until(lambda: len(paired()) == len(households) - 1, 120,
                            "the cadre to pair every household still served")  # fmt: skip
        assert eliminated not in {s["household_id"] for s in paired()}
    finally:
        await consumer.stop()
        await producer.stop()
        stop_child(worker, 30)
