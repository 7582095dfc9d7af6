"""/healthz and /readyz of the real processes: not ready before the group assigns partitions
(and, for a faust worker, before its tables are recovered), ready after; a consumer more
records behind than SHOUWANG_READY_MAX_LAG answers 503, and ready again once it catches up.

A consumer group cannot balance while one of its members is alive to the broker but does not
answer: the coordinator waits for it to rejoin until its session times out. A member stopped
with SIGSTOP is that, for as long as the test keeps it stopped (well within its session
timeout), so the process under test is held, deterministically, in "no partitions yet".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from services.platform.localstack.ports import free_port
from services.platform.localstack.processes import stop_child, tail
from services.readmodel.projection import TOPICS
from services.tools.workers import monitoring_env, start_monitoring_worker
from tests.integration.readmodel.test_commands import Command, fetch
from tests.integration.readmodel.test_projector import (
    NOW,
    fresh_database,  # noqa: F401  (fixture)
    registry_record,
)

pytestmark = pytest.mark.integration

# A foreign member of the projector's group (aiokafka, the projector's own assignor): it
# prints "assigned" once the group gave it partitions, and leaves the group on SIGTERM.
MEMBER = """
import asyncio, signal, sys
from aiokafka import AIOKafkaConsumer

async def main(bootstrap, group, topics):
    consumer = AIOKafkaConsumer(*topics.split(","), bootstrap_servers=bootstrap,
        group_id=group, enable_auto_commit=False, session_timeout_ms=60000,
        heartbeat_interval_ms=3000, max_poll_interval_ms=300000)
    await consumer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    announced = False
    while not stop.is_set():
        await consumer.getmany(timeout_ms=200)
        if consumer.assignment() and not announced:
            print("assigned", flush=True)
            announced = True
    await consumer.stop()

asyncio.run(main(*sys.argv[1:]))
"""


def start_member(bootstrap: str, group: str, log: Path) -> subprocess.Popen:
    topics = ",".join(t.name for t in TOPICS)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", MEMBER, bootstrap, group, topics],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def until(condition, seconds: float, what: str, *processes: subprocess.Popen):
    deadline = time.monotonic() + seconds
    while True:
        value = await condition()
        if value:
            return value
        for process in processes:
            assert process.poll() is None, f"{process.args[-1]} exited {process.returncode}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def readyz(port: int) -> tuple[int, dict] | None:
    answer = await fetch(f"http://127.0.0.1:{port}/readyz")
    return None if answer is None else (answer[0], json.loads(answer[1]))


async def test_the_projector_is_ready_once_assigned_and_not_while_over_its_lag_budget(
    kafka_bootstrap: str,
    fresh_database: str,  # noqa: F811
    tmp_path: Path,
):
    with contextlib.suppress(TopicMismatch):  # an earlier test made them with another layout
        await ensure_topics(kafka_bootstrap, TopicLayout())
    group = f"readiness-{uuid.uuid4().hex[:8]}"
    member_log = tmp_path / "member.log"
    member = start_member(kafka_bootstrap, group, member_log)
    port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": fresh_database,
        "SHOUWANG_PROJECTOR_GROUP": group,
        "SHOUWANG_PROJECTOR_METRICS_PORT": str(port),
        "SHOUWANG_READY_MAX_LAG": "5",
    }
    projector = None
    try:

        async def member_assigned() -> bool:
            return "assigned" in member_log.read_text(errors="replace")

        await until(member_assigned, 120, "the foreign member's assignment", member)
        member.send_signal(signal.SIGSTOP)  # alive to the broker, deaf to the rebalance
        projector = Command("projector", env, tmp_path / "projector.log")
        status, body = await projector.until(lambda: readyz(port), 60, "/readyz")
        assert status == 503, body
        assert body["type"] == "urn:shouwang:problem:not_ready"
        assert "no partitions assigned" in body["reasons"]["partitions"]
        healthz = await fetch(f"http://127.0.0.1:{port}/healthz")
        assert healthz is not None and healthz[0] == 200  # alive, only not ready

        member.send_signal(signal.SIGCONT)
        member.send_signal(signal.SIGTERM)  # leaves the group: the projector gets it all

        async def ready() -> bool:
            answer = await readyz(port)
            return answer is not None and answer[0] == 200

        await projector.until(ready, 180, "ready after the assignment")

        # Hold the projector inside its next batch: the positions table is locked, so the
        # records produced now are fetched but cannot be applied.
        blocker = await asyncpg.connect(fresh_database)
        try:
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("LOCK TABLE projection_positions IN ACCESS EXCLUSIVE MODE")
            await produce_registry_rows(kafka_bootstrap, 20)

            async def over_budget() -> dict | None:
                answer = await readyz(port)
                if answer is not None and answer[0] == 503 and "lag" in answer[1]["reasons"]:
                    return answer[1]
                return None

            body = await projector.until(over_budget, 60, "503 for the lag")
            reason = body["reasons"]["lag"]
            assert "over the budget of 5 (SHOUWANG_READY_MAX_LAG)" in reason
            assert int(reason.split()[0]) >= 20
            assert "database" not in body["reasons"]  # the database answers; only the lag
            await transaction.rollback()
        finally:
            await blocker.close()
        await projector.until(ready, 60, "ready after catching up")
        assert projector.stop() == 0
    finally:
        if member.poll() is None:
            member.send_signal(signal.SIGCONT)
            stop_child(member, timeout=30)
        if projector is not None and projector.process.poll() is None:
            projector.stop()


async def produce_registry_rows(bootstrap: str, count: int) -> None:
    codec = Codec.default()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        prefix = f"ready-{uuid.uuid4().hex[:8]}"
        for i in range(count):
            hid = f"{prefix}-{i:05d}"
            value = codec.encode(*registry_record(hid, NOW, labour=2))
            await producer.send("household.registry", value, key=hid.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def test_a_monitoring_worker_is_ready_only_once_its_partitions_and_tables_are(
    kafka_bootstrap: str, tmp_path: Path
):
    """Worker A is stopped (SIGSTOP) while worker B of the same app joins: B serves /readyz
    but the group cannot balance, so B answers 503 (no partitions, tables not recovered);
    once A answers again the group balances and both become ready."""
    app_id = f"ready-monitoring-{uuid.uuid4().hex[:8]}"
    ports = {"a": free_port(), "b": free_port()}
    workers: dict[str, subprocess.Popen] = {}
    try:
        for name in ("a", "b"):
            home = tmp_path / name
            home.mkdir()
            env = monitoring_env(kafka_bootstrap, home, app_id, ports[name])
            if name == "b":
                workers["a"].send_signal(signal.SIGSTOP)
            workers[name] = start_monitoring_worker(env, tmp_path / f"{name}.log")
            if name == "a":
                await until(
                    lambda: _status_is(ports["a"], 200), 240, "worker A ready", workers["a"]
                )

        status, body = await until(lambda: readyz(ports["b"]), 120, "B's /readyz", workers["b"])
        assert status == 503, body
        assert {"partitions", "tables", "lag"} <= set(body["reasons"]), body
        assert body["reasons"]["tables"] == "tables not recovered yet"
        healthz = await fetch(f"http://127.0.0.1:{ports['b']}/healthz")
        assert healthz is not None and healthz[0] == 200

        workers["a"].send_signal(signal.SIGCONT)
        for name in ("b", "a"):
            await until(
                lambda n=name: _status_is(ports[n], 200), 240, f"{name} ready", *workers.values()
            )
    except AssertionError:
        for name in workers:
            print(f"--- worker {name}\n{tail(tmp_path / f'{name}.log')}")
        raise
    finally:
        for process in workers.values():
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                stop_child(process, timeout=60)


async def _status_is(port: int, status: int) -> bool:
    answer = await readyz(port)
    return answer is not None and answer[0] == status


async def test_a_monitoring_worker_behind_its_lag_budget_is_not_ready_until_it_catches_up(
    kafka_bootstrap: str, tmp_path: Path
):
    """A fresh worker over a backlog of 20,000 registry rows with a budget of 100: once
    assigned and recovered it answers 503 for its lag alone (it takes seconds to read the
    backlog, far longer than between two probes), then 200."""
    with contextlib.suppress(TopicMismatch):
        await ensure_topics(kafka_bootstrap, TopicLayout())
    await produce_registry_rows(kafka_bootstrap, 20_000)
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    app_id = f"ready-lag-{uuid.uuid4().hex[:8]}"
    env = monitoring_env(kafka_bootstrap, home, app_id, port, SHOUWANG_READY_MAX_LAG="100")
    worker = start_monitoring_worker(env, tmp_path / "worker.log")
    try:

        async def lag_alone() -> dict | None:
            answer = await readyz(port)
            if answer is None or answer[0] == 200:
                assert answer is None, f"ready before its lag was read: {answer}"
                return None
            reasons = answer[1]["reasons"]
            return reasons if set(reasons) == {"lag"} else None

        reasons = await until(lag_alone, 240, "503 for the lag alone", worker)
        behind = int(reasons["lag"].split()[0])
        assert behind > 100 and "over the budget of 100" in reasons["lag"]
        await until(lambda: _status_is(port, 200), 300, "ready after catching up", worker)
    except AssertionError:
        print(tail(tmp_path / "worker.log"))
        raise
    finally:
        stop_child(worker, timeout=60)
