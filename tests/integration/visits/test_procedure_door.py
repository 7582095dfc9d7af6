"""A decision that skips a step is refused at the door (issue #17): `shouwang visits` and
`shouwang monitoring` run as deployed (processes, configured by environment: the door reads
the worker's household view with a read-only auditor token from a file), on the session's broker
and database.

An INCLUDE after START_VERIFICATION alone is answered 422 naming VILLAGE_DELIBERATION and
nothing reaches household.reviews; the steps in order are then each accepted and the fold
includes the household; a county exception with a written reason is taken, one without is
refused naming `reason`; with the worker stopped, a skipping INCLUDE is accepted and counted on
the API's real /metrics (`shouwang_visits_procedure_unchecked_total{reason="unreachable"}`).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.platform.auth.tokens import PostgresTokenStore, hash_secret, new_secret, new_token
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.ports import free_ports
from services.platform.localstack.processes import stop_child, tail
from services.platform.postgres.migrate import apply_migrations
from services.tools.workers import monitoring_env, start_monitoring_worker
from tests.integration.monitoring.test_monitoring_worker import send_all
from tests.seed_households import zhou_uremia

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
TOWNSHIP, VILLAGE_NAME = "鹤游镇", "水井村"  # the seed household's
VILLAGE = {"body": "VILLAGE", "approving_level": "VILLAGE"}
REVIEWER = {"body": "TOWNSHIP", "approving_level": "TOWNSHIP"}
COUNTY = {"body": "COUNTY", "approving_level": "COUNTY"}


def decision(household_id: str, when: str, name: str, **fields) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "household_id": household_id,
        "occurred_at": when,
        "decision": name,
        "category": "UNSTABLE_LIFTED" if name == "INCLUDE" else None,
        "notice_start": None,
        "notice_days": 0,
        "reason": "评议",
        **fields,
    }


async def until(condition: Callable, seconds: float, what: str, processes: dict) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        for name, (process, log) in processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited {process.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def issue(pool: asyncpg.Pool, *args, **kwargs) -> str:
    secret = new_secret()
    await PostgresTokenStore(pool).issue(new_token(*args, **kwargs), hash_secret(secret))
    return secret


async def reviews_of(bootstrap: str, partition: int, household_id: str) -> set[str]:
    """The event ids of every review decision about `household_id` on its partition of
    household.reviews (the one the API's answers named: a household's records share one)."""
    codec = Codec.default()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition("household.reviews", partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, 0)
        found: set[str] = set()
        last = -1
        async with asyncio.timeout(60):
            while last < end - 1:
                for message in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    last = message.offset
                    if message.key == household_id.encode():
                        found.add(str(codec.decode(message.value).record["event_id"]))
        return found
    finally:
        await consumer.stop()


def start_visits(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "visits"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def test_a_skipped_step_is_refused_at_the_door_naming_it(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    await ensure_topics(kafka_bootstrap, TopicLayout())
    await apply_migrations(database_url)
    prefix = f"door-{uuid.uuid4().hex[:8]}"
    entry, excepted = f"{prefix}-entry", f"{prefix}-exception"
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        for household_id in (entry, excepted):  # as the registry's projection would
            await pool.execute(
                "INSERT INTO households (household_id, township, village) VALUES ($1, $2, $3)",
                household_id,
                TOWNSHIP,
                VILLAGE_NAME,
            )
        tokens = {
            "operator": await issue(pool, "operator", f"{prefix}-county"),
            "village": await issue(
                pool, "cadre", f"{prefix}-village", [TOWNSHIP], ["ReviewDecided"],
                villages=[VILLAGE_NAME],
            ),
            "reviewer": await issue(pool, "cadre", f"{prefix}-town", [TOWNSHIP], ["ReviewDecided"]),
        }  # fmt: skip
        door_token = await issue(pool, "auditor", f"{prefix}-visits-door")
    finally:
        await pool.close()
    token_file = tmp_path / "visits-monitoring-token"
    token_file.write_text(door_token + "\n", encoding="utf-8")

    visits_port, monitoring_port = free_ports(2)
    monitoring_url = f"http://127.0.0.1:{monitoring_port}"
    worker_log = tmp_path / "monitoring.log"
    worker = start_monitoring_worker(
        monitoring_env(
            kafka_bootstrap, tmp_path / "home", f"monitoring-{prefix}", monitoring_port,
            DATABASE_URL=database_url,
        ),
        worker_log,
    )  # fmt: skip
    visits_log = tmp_path / "visits.log"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "SHOUWANG_HOME": str(tmp_path / "home"),
        "SHOUWANG_VISITS_PORT": str(visits_port),
        "SHOUWANG_VISITS_MONITORING_URL": monitoring_url,
        "SHOUWANG_VISITS_MONITORING_TOKEN_FILE": str(token_file),
    }
    visits = start_visits(env, visits_log)
    processes = {"visits": (visits, visits_log), "monitoring": (worker, worker_log)}
    api = f"http://127.0.0.1:{visits_port}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

            async def post(role: str, body: dict) -> tuple[int, dict]:
                headers = {"Authorization": f"Bearer {tokens[role]}"}
                async with http.post(f"{api}/v1/review-decisions", json=body, headers=headers) as r:
                    return r.status, await r.json(content_type=None)

            async def view(household_id: str) -> dict | None:
                headers = {"Authorization": f"Bearer {door_token}"}
                url = f"{monitoring_url}/v1/households/{household_id}"
                try:
                    async with http.get(url, headers=headers) as r:
                        return await r.json() if r.status == 200 else None
                except (aiohttp.ClientError, TimeoutError):
                    return None

            async def folded(household_id: str, event_id: str) -> None:
                async def shown() -> bool:
                    document = await view(household_id)
                    decisions = (document or {}).get("workflow", {}).get("decisions", [])
                    return any(d["event_id"] == event_id for d in decisions)

                await until(shown, 120, f"the view to fold {event_id}", processes)

            async def unchecked() -> dict[str, float]:
                async with http.get(f"{api}/metrics") as r:
                    text = await r.text()
                return {
                    s.labels["reason"]: s.value
                    for family in text_string_to_metric_families(text)
                    if family.name == "shouwang_visits_procedure_unchecked"
                    for s in family.samples
                    if s.name.endswith("_total")
                }

            async def serving() -> bool:
                try:
                    async with http.get(f"{api}/readyz") as r:
                        ready = r.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    return False
                return ready

            await until(serving, 180, "the visits API", processes)
            await send_all(producer, [*zhou_uremia(entry), *zhou_uremia(excepted)])

            async def both_in_view() -> bool:
                return await view(entry) is not None and await view(excepted) is not None

            await until(both_in_view, 180, "the monitoring view of both households", processes)

            opening = decision(entry, "2020-05-16T21:00:00Z", "START_VERIFICATION", **COUNTY)
            status, answer = await post("operator", opening)
            assert status == 202, answer
            partitions = {entry: answer["partition"]}
            await folded(entry, opening["event_id"])

            # An INCLUDE straight after the opening: refused, naming the step it skips.
            skipping = decision(entry, "2020-05-17T09:00:00Z", "INCLUDE", **COUNTY)
            status, answer = await post("operator", skipping)
            assert status == 422, answer
            assert answer["type"].endswith("missing_step") and "offset" not in answer
            [error] = answer["errors"]
            assert error["field"] == "decision"
            assert error["message"].startswith(
                "VILLAGE_DELIBERATION has not been recorded for this household's inclusion"
            )

            # A NOTICE before the deliberation: refused too, at the village's level.
            early = decision(
                entry, "2020-05-17T09:00:00Z", "NOTICE", notice_start="2020-05-18",
                notice_days=5, **VILLAGE,
            )  # fmt: skip
            status, answer = await post("village", early)
            assert status == 422 and "VILLAGE_DELIBERATION" in answer["errors"][0]["message"]

            # The steps in order, each by its level, each folded before the next is asked.
            steps = [
                ("village", decision(entry, "2020-05-17T10:00:00Z", "VILLAGE_DELIBERATION",
                                     outcome="PASSED", **VILLAGE)),
                ("village", decision(entry, "2020-05-18T10:00:00Z", "NOTICE",
                                     notice_start="2020-05-18", notice_days=5, **VILLAGE)),
                ("reviewer", decision(entry, "2020-05-23T10:00:00Z", "TOWNSHIP_REVIEW",
                                      outcome="PASSED", **REVIEWER)),
                ("operator", decision(entry, "2020-05-24T10:00:00Z", "INCLUDE", **COUNTY)),
            ]  # fmt: skip
            for role, body in steps:
                status, answer = await post(role, body)
                assert status == 202, (body["decision"], answer)
                await folded(entry, body["event_id"])
            document = await view(entry)
            assert document["workflow"]["status"] == "MONITORED"
            assert "invalid_transition" not in {
                r["code"] for r in document["assessment"]["reasons"]
            }

            # Every decision was judged against a view that had folded the ones before it.
            assert set((await unchecked()).values()) == {0.0}

            # A county exception: refused without a written reason, taken with one.
            opening = decision(excepted, "2020-05-16T20:00:00Z", "START_VERIFICATION", **COUNTY)
            status, answer = await post("operator", opening)
            assert status == 202, answer
            partitions[excepted] = answer["partition"]
            await folded(excepted, opening["event_id"])
            bare = decision(
                excepted, "2020-05-16T21:00:00Z", "INCLUDE", exception=True, reason=" ", **COUNTY
            )
            status, answer = await post("operator", bare)
            assert status == 422 and answer["errors"][0]["field"] == "reason", answer
            why = "uremia, dialysis three times a week: the county includes him at once"
            exception = decision(
                excepted, "2020-05-16T21:00:00Z", "INCLUDE", exception=True, reason=why, **COUNTY
            )
            assert (await post("operator", exception))[0] == 202
            await folded(excepted, exception["event_id"])
            document = await view(excepted)
            assert document["workflow"]["status"] == "MONITORED"
            codes = {r["code"] for r in document["assessment"]["reasons"]}
            assert "procedure_exception" in codes

            # Nothing refused reached the log; everything accepted did.
            logged = await reviews_of(kafka_bootstrap, partitions[entry], entry)
            assert skipping["event_id"] not in logged and early["event_id"] not in logged
            assert {body["event_id"] for _, body in steps} <= logged
            logged = await reviews_of(kafka_bootstrap, partitions[excepted], excepted)
            assert bare["event_id"] not in logged and exception["event_id"] in logged

            # The worker stops (a restart, a crash): the door cannot ask, so it accepts the
            # skipping decision, leaves it to the fold, and counts it.
            stop_child(worker, timeout=30)
            del processes["monitoring"]
            # ELIMINATE of a monitored household with no exit procedure: the view would name
            # the missing step; unreachable, the door takes it and counts why.
            skipping_exit = decision(excepted, "2020-06-02T10:00:00Z", "ELIMINATE", **COUNTY)
            status, answer = await post("operator", skipping_exit)
            assert status == 202, answer
            assert (await unchecked())["unreachable"] == 1.0
    finally:
        await producer.stop()
        stop_child(visits, timeout=30)
        if worker.poll() is None:
            stop_child(worker, timeout=30)
