"""The epidemic campaign's totals end to end: visits and measures on the real broker, the real
projector into PostgreSQL, and the real operator API (`shouwang support-api`) answering
/v1/campaign and exporting the same figures on its /metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.platform.auth.tokens import PostgresTokenStore, hash_secret, new_secret, new_token
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.ports import free_ports
from services.readmodel.campaign import CAMPAIGN_FIGURES
from tests.integration.readmodel.test_projector import (  # noqa: F401 (fresh_database: a fixture)
    fresh_database,
    start_projector,
    wait_for,
)
from tests.records import measure, registry, visit

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
DAY0 = dt.datetime(2020, 3, 1, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def events(p: str) -> list[tuple[str, tuple]]:
    h1, h2, h3 = f"{p}-h1", f"{p}-h2", f"{p}-h3"
    a, b = f"{p}-甲镇", f"{p}-乙镇"
    return [
        ("household.registry", registry(h1, DAY0, township=a)),
        ("household.registry", registry(h2, DAY0, township=b)),
        ("household.registry", registry(h3, DAY0, township=a)),
        # the field app's correction of h1's visit (sent again, recorded later) is read first
        # here: it still wins over the original read after it
        ("household.visits", visit(h1, DAY0 + 2 * DAY, visit_id=f"{p}-v1",
                                   unsold=("chickens", 100, "head", 9000), seeking_work=2,
                                   spring_farming=True, family_impact="两个儿子没能外出务工",
                                   students_at_home=(3, 1), recorded=DAY0 + 6 * DAY,
                                   label=f"visit/{p}-v1/corrected")),
        # h1: the seed's poultry farmer, helped with sales and migrant work after the visit
        ("household.visits", visit(h1, DAY0 + 2 * DAY, visit_id=f"{p}-v1",
                                   unsold=("chickens", 100, "head", 8000), seeking_work=2,
                                   spring_farming=True, family_impact="两个儿子没能外出务工",
                                   students_at_home=(3, 1))),
        ("household.measures", measure(h1, DAY0 + 4 * DAY, f"{p}-m1", "DELIVERED", "SALES_AID",
                                       "sales.produce-buyers")),
        ("household.measures", measure(h1, DAY0 + 5 * DAY, f"{p}-m2", "DELIVERED",
                                       "MIGRANT_WORK", "employment.migrant-work")),
        # an older visit of h1, synced late: it must not replace the newer block
        ("household.visits", visit(h1, DAY0 + DAY, visit_id=f"{p}-v0", seeking_work=7)),
        # h2: industry aid delivered before the visit answers nothing the visit found
        ("household.measures", measure(h2, DAY0, f"{p}-m3", "DELIVERED", "INDUSTRY",
                                       "industry.poultry")),
        ("household.visits", visit(h2, DAY0 + 3 * DAY, visit_id=f"{p}-v2", seeking_work=1,
                                   spring_farming=True)),
        # h2's later visit reported more, then was corrected to carry no block at all: h2's
        # earlier block (v2, above) counts again
        ("household.visits", visit(h2, DAY0 + 4 * DAY, visit_id=f"{p}-v2b", seeking_work=5)),
        ("household.visits", visit(h2, DAY0 + 4 * DAY, visit_id=f"{p}-v2b",
                                   recorded=DAY0 + 7 * DAY, label=f"visit/{p}-v2b/corrected")),
        # h3: a visit with no epidemic block is not in the campaign
        ("household.visits", visit(h3, DAY0 + 3 * DAY, visit_id=f"{p}-v3")),
    ]  # fmt: skip


def start_api(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "support-api"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def figures(**given: int) -> dict[str, int]:
    return dict.fromkeys(CAMPAIGN_FIGURES, 0) | given


async def test_campaign_totals_from_events_to_the_api_and_metrics(
    kafka_bootstrap: str,
    fresh_database: str,  # noqa: F811 (the imported fixture)
):
    await ensure_topics(kafka_bootstrap, TopicLayout())
    p = f"camp-{uuid.uuid4().hex[:8]}"
    codec = Codec.default()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for topic, event in events(p):
            await producer.send_and_wait(
                topic, codec.encode(*event), key=event[1]["household_id"].encode()
            )
    finally:
        await producer.stop()

    conn = await asyncpg.connect(fresh_database)
    secret = new_secret()
    await PostgresTokenStore(conn).issue(new_token("operator", "op-campaign"), hash_secret(secret))
    (port,) = free_ports(1)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "DATABASE_URL": fresh_database, "SHOUWANG_SUPPORT_API_PORT": str(port)}  # fmt: skip
    projector = start_projector(kafka_bootstrap, fresh_database, f"test-campaign-{p}")
    api = start_api(env)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {secret}"}
    try:

        async def projected() -> bool:
            # every visit and measure step applied (the late visit included)
            visits = await conn.fetchval(
                "SELECT coalesce(sum(events_projected), 0) FROM households "
                "WHERE household_id LIKE $1",
                p + "%",
            )
            steps = await conn.fetchval(
                "SELECT count(*) FROM measure_steps WHERE household_id LIKE $1", p + "%"
            )
            return visits == 10 and steps == 3

        await wait_for(projected, 120, "the campaign's events in the read model", projector)

        async with aiohttp.ClientSession(headers=auth) as http:

            async def answer(**params: str) -> dict | None:
                try:
                    async with http.get(f"{base}/v1/campaign", params=params) as response:
                        assert response.status == 200, await response.text()
                        return await response.json()
                except aiohttp.ClientConnectionError:
                    return None  # not listening yet

            body = await wait_for(answer, 120, "the operator API", api)
            # The session's broker holds other tests' visits too (the projector reads every
            # topic from its start): this test's figures are its two townships' rows.
            a, b = f"{p}-甲镇", f"{p}-乙镇"
            total, *towns = body["items"]
            rows = {t["township"]: t for t in towns}
            assert rows[a] == {"township": a, "total": False} | figures(
                households_visited=1, family_impact_recorded=1, members_seeking_work=2,
                workers_organised=2, unsold_produce_yuan=9000, produce_sold_with_aid_yuan=9000,
                spring_farming_needs_help=1, students_learning_at_home=3,
                students_without_access=1,
            )  # fmt: skip
            assert rows[b] == {"township": b, "total": False} | figures(
                households_visited=1, members_seeking_work=1, spring_farming_needs_help=1
            )
            assert total["total"] and total["township"] is None
            for figure in CAMPAIGN_FIGURES:  # the total row adds up every township's
                assert total[figure] == sum(t[figure] for t in towns), figure
            only_b = await answer(township=b)
            assert only_b["items"] == [rows[b] | {"township": None, "total": True}, rows[b]]

            async with http.get(f"{base}/v1/campaign", params={"township": "a\x00b"}) as bad:
                assert bad.status == 400

            async with http.get(f"{base}/metrics") as response:
                text = await response.text()
        county, township = {}, {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "shouwang_campaign_county":
                    county[sample.labels["figure"]] = sample.value
                elif sample.name == "shouwang_campaign_township":
                    township[(sample.labels["township"], sample.labels["figure"])] = sample.value
        # other tests' households may still be arriving: the county holds at least this test's
        assert set(county) == set(CAMPAIGN_FIGURES)
        for figure in CAMPAIGN_FIGURES:
            assert county[figure] >= rows[a][figure] + rows[b][figure], figure
        for name, row in ((a, rows[a]), (b, rows[b])):
            for figure in CAMPAIGN_FIGURES:
                assert township[(name, figure)] == float(row[figure]), (name, figure)
    finally:
        for process in (projector, api):
            process.terminate()
        for process in (projector, api):
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
        await conn.close()
