"""A monitoring worker against the real broker: seed scenarios end to end, a poison record,
and a restart that recovers the household table from its changelog."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NamedTuple

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.contract.codec import Codec
from services.contract.topics import BY_NAME, DEAD_LETTERS, RISK, TopicLayout, topic_for
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.ports import free_port
from services.platform.localstack.processes import stop_child
from services.tools.workers import (
    issue_view_token,
    monitoring_env,
    start_monitoring_worker,
    view_headers,
)
from tests.records import Record, approved, at, visit
from tests.seed_households import (
    marginal,
    monitored_then_eliminated,
    policy_card_fixed_on_the_spot,
    sudden_hardship,
    wu_chickens,
    wu_sales_aid,
    zhou_uremia,
)

pytestmark = pytest.mark.integration
CODEC = Codec.default()


def start_worker(
    bootstrap: str, app_id: str, home: Path, port: int, database_url: str, rocksdb: bool = False
) -> subprocess.Popen:
    # The household view needs a token: the worker reads the token table of `database_url`.
    env = monitoring_env(bootstrap, home, app_id, port, rocksdb=rocksdb, DATABASE_URL=database_url)
    # one log per worker, kept for diagnosis (Watcher.diagnosis reads them on a timeout)
    return start_monitoring_worker(env, home / f"worker-{time.monotonic_ns()}.log")


def topic_of(event_type: str) -> str:
    return topic_for(f"shouwang.events.{event_type}").name


class Watcher:
    """Reads assessments and dead letters for this test's households."""

    def __init__(self, bootstrap: str, prefix: str, logs: Path):
        self.logs = logs  # where start_worker keeps each worker's log
        self.consumer = AIOKafkaConsumer(
            RISK.name,
            DEAD_LETTERS.name,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            group_id=None,
            isolation_level="read_committed",
        )
        self.prefix = prefix
        self.assessments: dict[str, list[dict]] = {}
        self.dead: list[dict] = []

    async def until(
        self, done: Callable[[], bool], seconds: float, what: str, workers: list[subprocess.Popen]
    ) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            for worker in workers:
                assert worker.poll() is None, f"the worker exited with {worker.returncode}"
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}: {self.summary()}\n{self.diagnosis()}"
                )
            batch = await self.consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    if r.topic == DEAD_LETTERS.name:
                        dead = CODEC.decode(r.value).record
                        if (r.key or b"").decode() in BY_NAME and (
                            dead["original_key"] or b""
                        ).decode().startswith(self.prefix):
                            self.dead.append(dead)
                        continue
                    record = CODEC.decode(r.value).record
                    if record["household_id"].startswith(self.prefix):
                        self.assessments.setdefault(record["household_id"], []).append(record)

    def latest(self, household_id: str) -> dict | None:
        items = self.assessments.get(household_id)
        return items[-1] if items else None

    def diagnosis(self, lines: int = 40) -> str:
        """What a timeout needs explained: this test's dead letters and each worker's last
        log lines (the temporary directory is gone by the time CI's report is read)."""
        dead = [(d["origin_topic"], d["error_kind"], d["error"]) for d in self.dead]
        out = [f"dead letters: {dead}"]
        for log in sorted(self.logs.glob("worker-*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(out)

    def summary(self) -> dict:
        return {
            h: (a[-1]["workflow"], a[-1]["level"], a[-1]["category"])
            for h, a in self.assessments.items()
        }


class BrokerSession(NamedTuple):
    producer: AIOKafkaProducer
    watcher: Watcher
    workers: list[subprocess.Popen]  # the test starts (and restarts) its workers here


@contextlib.asynccontextmanager
async def broker_session(bootstrap: str, prefix: str, logs: Path) -> AsyncIterator[BrokerSession]:
    """The topics, an idempotent producer and a Watcher of `prefix`'s households (worker logs
    under `logs`); on the way out both stop, and so does every worker left in `workers`."""
    await ensure_topics(bootstrap, TopicLayout())
    session = BrokerSession(
        AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True),
        Watcher(bootstrap, prefix, logs),
        [],
    )
    try:
        await session.producer.start()
        await session.watcher.consumer.start()
        yield session
    finally:
        await session.watcher.consumer.stop()
        await session.producer.stop()
        for worker in session.workers:
            stop_child(worker)


async def send_all(producer: AIOKafkaProducer, records: list[Record]) -> None:
    for event_type, record in records:
        await producer.send(
            topic_of(event_type),
            key=record["household_id"].encode(),
            value=CODEC.encode(event_type, record),
        )
    await producer.flush()


def codes(assessment: dict) -> set[str]:
    return {r["code"] for r in assessment["reasons"]}


async def test_scenarios_poison_and_restart_through_the_broker(
    kafka_bootstrap, database_url, tmp_path
):
    prefix = f"mon-{uuid.uuid4().hex[:8]}"
    app_id = f"monitoring-it-{prefix}"
    h = {
        name: f"{prefix}-{name}"
        for name in ("zhou", "wu", "marginal", "sudden", "elim", "card", "poison")
    }
    zhou = [
        *zhou_uremia(h["zhou"]),
        *approved(h["zhou"], at("2020-05-16", 20), "INCLUDE", "UNSTABLE_LIFTED"),
    ]
    scenarios = [
        *zhou,
        *wu_chickens(h["wu"]),
        *wu_sales_aid(h["wu"]),
        *marginal(h["marginal"]),
        *sudden_hardship(h["sudden"]),
        *monitored_then_eliminated(h["elim"]),
        *policy_card_fixed_on_the_spot(h["card"]),
    ]
    expected = {
        h["zhou"]: lambda a: (
            (a["workflow"], a["level"], a["category"]) == ("MONITORED", "HIGH", "UNSTABLE_LIFTED")
            and "serious_illness" in codes(a)
        ),
        h["wu"]: lambda a: a["workflow"] == "NOT_FLAGGED" and "unsold_produce" not in codes(a),
        h["marginal"]: lambda a: (a["workflow"], a["category"]) == ("FLAGGED", "MARGINAL"),
        h["sudden"]: lambda a: (
            (a["category"], a["policy_version"]) == ("SUDDEN_HARDSHIP", "national-2021")
        ),
        h["elim"]: lambda a: a["workflow"] == "ELIMINATED" and "policy_exception" not in codes(a),
        h["card"]: lambda a: a["workflow"] == "NOT_FLAGGED" and a["overdue"] == [],
        h["poison"]: lambda a: a["workflow"] == "FLAGGED",
    }
    port = free_port()
    async with broker_session(kafka_bootstrap, prefix, tmp_path) as (producer, watcher, workers):
        workers.append(start_worker(kafka_bootstrap, app_id, tmp_path, port, database_url))
        await send_all(producer, scenarios)
        # A poison record, then a good one for the same household on the same partition.
        await producer.send_and_wait(
            "household.visits", key=h["poison"].encode(), value=b"\x00garbage from an old app"
        )
        await send_all(producer, marginal(h["poison"]))

        def all_expected() -> bool:
            return all(
                (a := watcher.latest(k)) is not None and ok(a) for k, ok in expected.items()
            ) and bool(watcher.dead)

        await watcher.until(all_expected, 240, "every scenario's assessment", workers)
        (dead,) = watcher.dead
        assert dead["error_kind"] == "UNDECODABLE" and dead["origin_topic"] == "household.visits"
        assert dead["original_value"] == b"\x00garbage from an old app"
        for household_id, items in watcher.assessments.items():  # emitted on change only
            digests = [
                (
                    a["workflow"],
                    a["level"],
                    a["category"],
                    json.dumps(a["reasons"]),
                    a["overdue"],
                    str(a["procedure"]),  # each step of the procedure is news too
                )
                for a in items
            ]
            assert all(x != y for x, y in itertools.pairwise(digests)), household_id

        # The assessment can be final before every event is applied (events that change
        # nothing may still be on their way from other topics): wait for the view to count
        # them all, and never more.
        deadline = time.monotonic() + 120
        headers = view_headers(await issue_view_token(database_url))
        async with aiohttp.ClientSession(headers=headers) as http:
            while True:
                async with http.get(f"http://127.0.0.1:{port}/v1/households/{h['zhou']}") as r:
                    assert r.status == 200, await r.text()
                    before = await r.json()
                assert before["state_version"] <= len(zhou)
                if before["state_version"] == len(zhou) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        assert before["assessment"]["level"] == "HIGH"
        assert before["workflow"]["status"] == "MONITORED"
        assert before["state_version"] == len(zhou)
        last_before = watcher.latest(h["zhou"])

        # Restart: the new worker recovers the table from the changelog.
        stop_child(workers.pop())
        workers.append(start_worker(kafka_bootstrap, app_id, tmp_path, port, database_url))
        await send_all(producer, zhou[-1:])  # a redelivered decision: no change, same id
        follow_up = visit(
            h["zhou"], at("2020-06-10"), visit_id="v-0610", income=5700, causes=("ILLNESS",)
        )
        await send_all(producer, [follow_up])

        def follow_up_assessed() -> bool:
            a = watcher.latest(h["zhou"])
            return str(follow_up[1]["event_id"]) in {
                e for r in a["reasons"] for e in r["event_ids"]
            }

        await watcher.until(follow_up_assessed, 240, "the follow-up visit's assessment", workers)
        after = watcher.latest(h["zhou"])
        assert (after["workflow"], after["level"], after["category"]) == (
            "MONITORED",
            "HIGH",
            "UNSTABLE_LIFTED",
        )
        # the reasons still name events the old worker applied: the state was recovered
        illness = next(r for r in after["reasons"] if r["code"] == "serious_illness")
        assert str(zhou[3][1]["event_id"]) in illness["event_ids"]
        replayed = [
            a for a in watcher.assessments[h["zhou"]] if a["event_id"] == last_before["event_id"]
        ]
        assert len(replayed) >= 1
        headers = view_headers(await issue_view_token(database_url))
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(f"http://127.0.0.1:{port}/v1/households/{h['zhou']}") as r:
                assert r.status == 200, await r.text()
                now = await r.json()
        assert now["state_version"] == len(zhou) + 1
        assert now["registry"] == before["registry"]


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
async def test_kill_9_then_redelivery_changes_nothing(
    kafka_bootstrap, database_url, tmp_path, store
):
    """With RocksDB (production) the table survives on disk and the changelog tops it up;
    with memory it is rebuilt from the changelog alone. Either way nothing changes."""
    rocksdb = store == "rocksdb"
    prefix = f"mon9-{uuid.uuid4().hex[:8]}"
    app_id = f"monitoring-it-{prefix}"
    household = f"{prefix}-zhou"
    records = zhou_uremia(household)
    port = free_port()
    async with broker_session(kafka_bootstrap, prefix, tmp_path) as (producer, watcher, workers):
        workers.append(start_worker(kafka_bootstrap, app_id, tmp_path, port, database_url, rocksdb))
        await send_all(producer, records)

        def flagged() -> bool:
            a = watcher.latest(household)
            return a is not None and (a["workflow"], a["level"]) == ("FLAGGED", "HIGH")

        await watcher.until(flagged, 180, "the flagged assessment", workers)
        first = watcher.latest(household)
        workers[0].kill()  # SIGKILL: no shutdown, no final commit
        workers[0].wait(10)
        workers[0] = start_worker(kafka_bootstrap, app_id, tmp_path, port, database_url, rocksdb)
        if rocksdb:
            written = [p for p in (tmp_path / "faust").rglob("CURRENT")]
            assert written, "the worker wrote no RocksDB table"
        await send_all(producer, records)  # every event again, as a replaying producer would
        decisions = approved(household, at("2020-05-16", 20), "INCLUDE", "UNSTABLE_LIFTED")
        await send_all(producer, decisions)

        def monitored() -> bool:
            a = watcher.latest(household)  # the decision may overtake redelivered records
            return (a["workflow"], a["level"]) == ("MONITORED", "HIGH")

        await watcher.until(monitored, 240, "the monitored assessment", workers)
        # every re-emit of the flagged assessment carries the same deterministic id
        flagged_ids = {
            a["event_id"]
            for a in watcher.assessments[household]
            if a["workflow"] == "FLAGGED" and a["reasons"] == first["reasons"]
        }
        assert flagged_ids == {first["event_id"]}
        # The decision may be applied before some redelivered records (another topic): wait
        # for the view to count every distinct event, and never more.
        deadline = time.monotonic() + 60
        headers = view_headers(await issue_view_token(database_url))
        async with aiohttp.ClientSession(headers=headers) as http:
            while True:
                async with http.get(f"http://127.0.0.1:{port}/v1/households/{household}") as r:
                    assert r.status == 200, await r.text()
                    view = await r.json()
                everything = len(records) + len(decisions)
                assert view["state_version"] <= everything  # duplicates changed nothing
                if view["state_version"] == everything or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        assert view["state_version"] == everything
        assert view["assessment"]["level"] == "HIGH"
