"""Two support workers against the real broker: recommendations, no double booking, releases,
a poison record dead-lettered while the next is processed, and each worker's /metrics."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.contract.catalogue import DEFAULT_CATALOGUE
from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.processes import stop_child
from tests.records import cadre, registry, risk

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
NOW = dt.datetime(2020, 5, 16, 12, 0, tzinfo=dt.UTC)
JOBS = 3


def small_catalogue(tmp_path: Path) -> Path:
    """The default catalogue with the public-welfare jobs per township, JOBS each: a county
    pool would be shared with every household other tests put on this session's broker."""
    text = DEFAULT_CATALOGUE.read_text(encoding="utf-8")
    county_jobs = 'id = "public-welfare-jobs"\nscope = "county"\ncapacity = 498'
    assert county_jobs in text
    text = text.replace(
        county_jobs, f'id = "public-welfare-jobs"\nscope = "township"\ncapacity = {JOBS}'
    )
    path = tmp_path / "small.toml"
    path.write_text(text, encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_worker(
    bootstrap: str, app_id: str, catalogue: Path, home: Path, port: int
) -> subprocess.Popen:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SHOUWANG_SUPPORT_APP_ID": app_id,
           "SHOUWANG_CATALOGUE": str(catalogue), "SHOUWANG_HOME": str(home),
           "SHOUWANG_SUPPORT_METRICS_PORT": str(port)}  # fmt: skip
    with open(home / f"worker-{time.monotonic_ns()}.log", "wb") as log:  # kept for diagnosis
        return subprocess.Popen([sys.executable, "-m", "services.cli", "support"], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip


@pytest.fixture
def private_bootstrap(local_kafka_factory) -> str:
    """A broker of this test's own: a fresh support app id reads every topic from the start,
    and on the session broker that is every other test's households too — minutes of backlog
    on a loaded 2-core machine before this test's records are reached."""
    return local_kafka_factory().start()


async def test_assessments_lead_to_recommendations_without_double_booking(
    private_bootstrap: str, tmp_path: Path
):
    kafka_bootstrap = private_bootstrap
    await ensure_topics(kafka_bootstrap, TopicLayout())
    codec = Codec.default()
    prefix = f"sup-{uuid.uuid4().hex[:8]}"
    township = f"镇-{prefix}"
    app_id = f"support-test-{prefix}"
    catalogue = small_catalogue(tmp_path)
    ports = [free_port(), free_port()]
    workers = [start_worker(kafka_bootstrap, app_id, catalogue, tmp_path, port) for port in ports]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    consumer = AIOKafkaConsumer("support.measures", "shouwang.deadletter",
                                bootstrap_servers=kafka_bootstrap,
                                auto_offset_reset="earliest", isolation_level="read_committed",
                                group_id=None)  # fmt: skip
    await producer.start()
    await consumer.start()
    households = [f"{prefix}-{i}" for i in range(8)]
    dead: dict[uuid.UUID, dict] = {}  # by event id: a redelivered poison is one dead letter
    try:
        # A poison record first, on the partition of a household whose records come next.
        await producer.send("household.risk", key=households[0].encode(), value=b"not avro")
        pairing = cadre(f"{prefix}-c", NOW, township=township)
        await producer.send(
            "cadre.registry", key=f"{prefix}-c".encode(), value=codec.encode(*pairing)
        )
        for hid in households:
            baseline = registry(hid, NOW, township=township, count=2, labour=0, weak_labour=1,
                                students=1, chronically_ill=1, livelihood="MIXED",
                                lifted_year=None, allowance=True)  # fmt: skip
            await producer.send(
                "household.registry", key=hid.encode(), value=codec.encode(*baseline)
            )
            await producer.send(
                "household.risk", key=hid.encode(), value=codec.encode(*risk(hid, NOW))
            )
        await producer.flush()

        steps: dict[uuid.UUID, dict] = {}

        async def collect_until(done, seconds: float, what: str) -> None:
            deadline = time.monotonic() + seconds
            while not done():
                for worker in workers:
                    assert worker.poll() is None, f"a support worker exited {worker.returncode}"
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {what}; have {len(steps)}")
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for r in records:
                        record = codec.decode(r.value).record
                        if r.topic == "shouwang.deadletter":
                            if (record["original_key"] or b"").startswith(prefix.encode()):
                                dead[record["event_id"]] = record
                        elif record["household_id"].startswith(prefix):
                            steps[record["event_id"]] = record  # same id twice = one step

        def of(kind: str) -> list[dict]:
            return [s for s in steps.values() if s["measure_type"] == kind]

        def first_round_done() -> bool:
            # Pairings are counted once a cadre holds them: a need that reached the pairing pool
            # before the cadre did is first recommended as waiting, then allocated when the
            # cadre arrives, so six pairing steps alone may still be four allocations.
            jobs = of("PUBLIC_WELFARE_JOB")
            paired = [s for s in of("PAIRING") if s["waiting_for"] is None]
            return len(paired) >= 6 and len(jobs) >= len(households) and \
                len(of("MEDICAL")) >= len(households)  # fmt: skip

        await collect_until(first_round_done, 240, "recommendations from both workers")
        await collect_until(lambda: dead, 60, "the poison record's dead letter")
        assert [
            (d["origin_topic"], d["error_kind"], d["original_value"]) for d in dead.values()
        ] == [("household.risk", "UNDECODABLE", b"not avro")]
        assert {s["household_id"] for s in of("MEDICAL")} == set(households)  # the next ones
        jobs = of("PUBLIC_WELFARE_JOB")
        allocated = [s for s in jobs if s["waiting_for"] is None]
        waiting = [s for s in jobs if s["waiting_for"] is not None]
        assert len(allocated) == JOBS  # two workers, one owner per pool: never over capacity
        assert len(waiting) == len(households) - JOBS
        assert len({s["measure_id"] for s in allocated}) == JOBS
        pairings = [s for s in of("PAIRING") if s["waiting_for"] is None]
        assert {s["cadre_id"] for s in pairings} == {f"{prefix}-c"} and len(pairings) == 6
        assert all(s["reasons"] for s in steps.values())  # each says which rule and reason

        # Cancel one job: the first household in the queue gets the slot.
        freed = allocated[0]
        cancelled = {**freed, "event_id": uuid.uuid4(), "step": "CANCELLED",
                     "source": "OPERATOR", "actor": "op", "waiting_for": None}  # fmt: skip
        await producer.send_and_wait(
            "household.measures",
            key=freed["household_id"].encode(),
            value=codec.encode("MeasureStepRecorded", cancelled),
        )

        def promoted() -> bool:
            done = [s for s in of("PUBLIC_WELFARE_JOB") if s["waiting_for"] is None]
            return len(done) == JOBS + 1

        await collect_until(promoted, 120, "the waiting household to get the freed job")
        now_allocated = {s["measure_id"] for s in of("PUBLIC_WELFARE_JOB")
                         if s["waiting_for"] is None}  # fmt: skip
        assert now_allocated - {s["measure_id"] for s in allocated} <= {
            s["measure_id"] for s in waiting
        }

        # Each worker serves /metrics; together they count what was decided and dead-lettered.
        texts = []
        async with aiohttp.ClientSession() as http:
            for port in ports:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert response.status == 200
                    texts.append(await response.text())
                # an error of the worker's web server is a problem, as on every API
                async with http.get(f"http://127.0.0.1:{port}/no/such/page") as response:
                    assert response.status == 404
                    assert response.content_type == "application/problem+json"
        assert "shouwang_support_pool_capacity" in "".join(texts)
        total = sum(metric(t, "shouwang_support_dead_letters_total", 'kind="UNDECODABLE"')
                    for t in texts)  # fmt: skip
        assert total >= 1
        jobs_pool = f'pool="township:{township}:public-welfare-jobs"'
        jobs_used = [metric(t, "shouwang_support_pool_used", jobs_pool) for t in texts]
        assert max(jobs_used) == JOBS  # one worker owns the county pool and holds every slot
    finally:
        await consumer.stop()
        await producer.stop()
        for worker in workers:
            stop_child(worker, 30)


def metric(text: str, name: str, label_part: str) -> float:
    """The sum of `name` samples whose labels contain `label_part` in Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and label_part in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
