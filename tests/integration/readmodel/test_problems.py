"""Problems from every source in the read model, as deployed: `shouwang projector` and
`shouwang support-api` as child processes on the session's broker and a private database.

A visit with a failed check opens a problem with its due date (the shipped policy's
`deadlines.problem_rectification_days`, 30) and the visiting cadre responsible; the same visit
delivered again changes nothing; a task on the problem list sets a new due date and responsible
person, a rectification closes it; the rectification rate by township and for the county is
answered by the operator API and exported on its real /metrics. A later visit that finds the
matter secured closes a problem, whichever of the two visits the projector reads first."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.platform.auth.tokens import PostgresTokenStore, hash_secret, new_token
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.ports import free_ports
from services.platform.localstack.processes import stop_child, tail
from tests import records
from tests.integration.readmodel.test_projector import fresh_database, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
FOUND = dt.datetime(2020, 5, 16, 10, 0, tzinfo=dt.UTC)
DUE = dt.date(2020, 6, 15)  # found + 30 days: the shipped policies' rectification period
__all__ = ["fresh_database"]  # the fixture, used by name


@pytest.fixture
async def deployed(kafka_bootstrap: str, fresh_database: str, stack_tmp_dir: Path):
    """The projector and the operator API on the private database; an operator token."""
    await ensure_topics(kafka_bootstrap, TopicLayout())
    secret = f"sw_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=2)
    await PostgresTokenStore(pool).issue(
        new_token("operator", f"op-{uuid.uuid4().hex[:6]}"), hash_secret(secret)
    )
    await pool.close()
    logs = Path(tempfile.mkdtemp(prefix="problems-", dir=stack_tmp_dir))
    (port,) = free_ports(1)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": fresh_database,
        "SHOUWANG_HOME": str(logs / "home"),
        "SHOUWANG_PROJECTOR_GROUP": f"test-problems-{uuid.uuid4().hex[:8]}",
        "SHOUWANG_SUPPORT_API_PORT": str(port),
    }
    for name in ("SHOUWANG_BIND_HOST", "SHOUWANG_POLICY_DIR"):
        env.pop(name, None)  # the defaults a user gets
    processes = _start(env, logs)
    try:
        yield fresh_database, f"http://127.0.0.1:{port}", secret, processes, logs
    finally:
        for process in processes.values():
            stop_child(process, timeout=30)


def _start(env: dict[str, str], logs: Path) -> dict[str, subprocess.Popen]:
    processes = {}
    for name in ("projector", "support-api"):
        with (logs / name).open("wb") as log:  # the child keeps its own descriptor
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", name],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
    return processes


class Producer:
    def __init__(self, bootstrap: str):
        self.codec = Codec.default()
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")

    async def send(self, topic: str, event: records.Record):
        record = event[1]
        return await self.producer.send_and_wait(
            topic, self.codec.encode(*event), key=record["household_id"].encode()
        )


async def applied(conn: asyncpg.Connection, metadata) -> bool:
    """The projector's stored position has passed the record `metadata` names."""
    offset = await conn.fetchval(
        "SELECT last_offset FROM projection_positions WHERE topic = $1 AND partition = $2",
        metadata.topic,
        metadata.partition,
    )
    return offset is not None and offset >= metadata.offset


async def problem_rows(conn: asyncpg.Connection, household_id: str) -> dict[str, dict]:
    rows = await conn.fetch(
        """SELECT problem_id, check_item, status, responsible, found_at, rectified_at, origin,
               visit_id, coalesce(task_due, default_due) AS due_date
        FROM problems WHERE household_id = $1""",
        household_id,
    )
    return {r["problem_id"]: dict(r) for r in rows}


async def test_problems_from_visits_and_the_list_with_due_dates_closure_and_rates(
    kafka_bootstrap: str, deployed
):
    database, api, secret, processes, logs = deployed
    run = uuid.uuid4().hex[:6]
    town_a, town_b = f"鹤游镇-{run}", f"大石乡-{run}"
    zhou, wu, li = f"H-prob-{run}-1", f"H-prob-{run}-2", f"H-prob-{run}-3"
    town_c = f"桂溪街道-{run}"
    visit = records.visit(
        zhou,
        FOUND,
        visit_id=f"V-{run}",
        checks={"housing": "PROBLEM"},
        card="MISSING",
        problems=(("POLICY_CARD", "明白卡掉了, reposted", True),),
    )
    housing = f"V-{run}/HOUSING"
    producer = Producer(kafka_bootstrap)
    await producer.producer.start()
    conn = await asyncpg.connect(database)
    try:
        await producer.send("household.registry", records.registry(zhou, FOUND, township=town_a))
        await producer.send("household.registry", records.registry(wu, FOUND, township=town_b))
        last = await producer.send("household.visits", visit)
        await producer.send(
            "household.visits",
            records.visit(wu, FOUND, visit_id=f"W-{run}", checks={"water": "PROBLEM"}),
        )
        await wait_for(lambda: applied(conn, last), 120, "the visit", processes["projector"])

        # A later visit that finds the water secured closes the problem found before it, also
        # when it reaches the projector first (a field app that synced the earlier one late).
        await producer.send("household.registry", records.registry(li, FOUND, township=town_c))
        later = FOUND + dt.timedelta(days=3)
        await producer.send("household.visits", records.visit(li, later, visit_id=f"L2-{run}"))
        synced = await producer.send(
            "household.visits",
            records.visit(li, FOUND, visit_id=f"L1-{run}", checks={"water": "PROBLEM"}),
        )
        await wait_for(lambda: applied(conn, synced), 60, "the late visit", processes["projector"])
        [closed_by_visit] = (await problem_rows(conn, li)).values()
        assert (closed_by_visit["problem_id"], closed_by_visit["status"]) == (
            f"L1-{run}/WATER", "rectified",
        )  # fmt: skip
        assert closed_by_visit["rectified_at"] == later

        first = await problem_rows(conn, zhou)
        assert set(first) == {housing, f"V-{run}/POLICY_CARD"}
        assert first[housing] == {
            "problem_id": housing,
            "check_item": "housing",
            "status": "open",
            "responsible": "cadre-yang",  # the visiting cadre
            "found_at": FOUND,
            "rectified_at": None,
            "origin": "visit",
            "visit_id": f"V-{run}",
            "due_date": DUE,
        }
        card = first[f"V-{run}/POLICY_CARD"]
        assert (card["status"], card["rectified_at"]) == ("rectified", FOUND)  # fixed on the spot

        # The same visit delivered again: nothing changes, nothing is added.
        again = await producer.send("household.visits", visit)
        await wait_for(lambda: applied(conn, again), 60, "the redelivery", processes["projector"])
        assert await problem_rows(conn, zhou) == first

        # A task on the problem list about the visit's problem: its due date and person win.
        task = records.problem(
            zhou, FOUND + dt.timedelta(days=2), housing, "TASK_ASSIGNED", "HOUSING",
            due="2020-07-01",
        )  # fmt: skip
        done = await producer.send("household.problems", task)
        await wait_for(lambda: applied(conn, done), 60, "the task", processes["projector"])
        tasked = (await problem_rows(conn, zhou))[housing]
        assert (tasked["status"], tasked["responsible"], tasked["due_date"]) == (
            "open", "cadre-chen", dt.date(2020, 7, 1),
        )  # fmt: skip
        assert (tasked["origin"], tasked["found_at"]) == ("visit", FOUND)

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            auth = {"Authorization": f"Bearer {secret}"}
            await ready(http, api, processes["support-api"], logs)
            # Before the fix: town A found 2 (1 rectified), town B found 1 (open, overdue).
            rates = await get(http, f"{api}/v1/rectification", auth)
            by_town = {t["township"]: t for t in rates["townships"]}
            assert by_town[town_a] == {
                "township": town_a, "found": 2, "rectified": 1, "open": 1, "overdue": 1,
                "rate": 0.5,
            }  # fmt: skip
            assert (by_town[town_b]["found"], by_town[town_b]["rate"]) == (1, 0.0)
            assert (by_town[town_c]["found"], by_town[town_c]["rate"]) == (1, 1.0)
            # the session's broker holds other tests' problems too: the county row adds up
            # every township's (this test's towns are its own)
            county = rates["county"]
            assert county["found"] == sum(t["found"] for t in rates["townships"])
            assert county["rectified"] == sum(t["rectified"] for t in rates["townships"])
            assert county["rate"] == pytest.approx(county["rectified"] / county["found"])
            listed = await get(http, f"{api}/v1/problems?status=open&township={town_a}", auth)
            assert [(p["problem_id"], p["due_date"], p["overdue"]) for p in listed["items"]] == [
                (housing, "2020-07-01", True)
            ]

            fix = records.problem(
                zhou, FOUND + dt.timedelta(days=5), housing, "RECTIFIED", "HOUSING"
            )
            fixed = await producer.send("household.problems", fix)
            await wait_for(lambda: applied(conn, fixed), 60, "the fix", processes["projector"])
            closed = (await problem_rows(conn, zhou))[housing]
            assert (closed["status"], closed["rectified_at"]) == (
                "rectified", FOUND + dt.timedelta(days=5),
            )  # fmt: skip
            assert closed["responsible"] == "cadre-chen"  # the fix names no one new

            rates = await get(http, f"{api}/v1/rectification?township={town_a}", auth)
            assert [(t["township"], t["found"], t["rate"]) for t in rates["townships"]] == [
                (town_a, 2, 1.0)
            ]
            overdue = await get(http, f"{api}/v1/problems?overdue=true", auth)
            mine = [p["problem_id"] for p in overdue["items"] if run in p["problem_id"]]
            assert mine == [f"W-{run}/WATER"]
            bad = await http.get(f"{api}/v1/problems?status=closed", headers=auth)
            assert bad.status == 400
            assert [e["field"] for e in (await bad.json())["errors"]] == ["status"]

            async with http.get(f"{api}/metrics") as response:  # the real scrape, no token
                assert response.status == 200
                scraped = samples(await response.text())
        assert scraped[("shouwang_readmodel_rectification_ratio", (("township", town_a),))] == 1.0
        assert scraped[("shouwang_readmodel_rectification_ratio", (("township", town_b),))] == 0.0
        assert 0.0 <= scraped[("shouwang_readmodel_county_rectification_ratio", ())] <= 1.0
        state = (("state", "overdue"), ("township", town_b))
        assert scraped[("shouwang_readmodel_problems", state)] == 1.0
    finally:
        await conn.close()
        await producer.producer.stop()


async def ready(http: aiohttp.ClientSession, api: str, process, logs: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise AssertionError(f"support-api exited:\n{tail(logs / 'support-api')}")
        try:
            async with http.get(f"{api}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"support-api not ready:\n{tail(logs / 'support-api')}")
        await asyncio.sleep(0.2)


async def get(http: aiohttp.ClientSession, url: str, headers: dict) -> dict:
    async with http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
