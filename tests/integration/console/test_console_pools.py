"""The console's measures-and-pools pages as they run: each pool's capacity, places booked and
measures waiting, scoped by role; a pool's queue in the order the support service's own matcher
serves it (checked against `allocate`), with reasons and links to the households."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest

from services.contract.catalogue import load_catalogue
from services.support.domain.matcher import URGENCY, Need, PoolState, allocate
from tests.console_system import COUNTY_POOL, TOWNSHIP_POOL, ConsoleSystem
from tests.integration.console.test_console import login, page

pytestmark = pytest.mark.integration
FIGURES = re.compile(r'data-figure="(\w+)">([^<]*)<')
QUEUE_ROW = re.compile(r'<tr data-measure="([^"]+)">\s*<td data-figure="position">(\d+)</td>')


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        yield session


def pool_rows(text: str) -> dict[str, dict[str, str]]:
    """The pools page's rows: instance -> its figures."""
    rows = {}
    for chunk in text.split('<tr data-pool="')[1:]:
        instance, rest = chunk.split('"', 1)
        rows[instance] = dict(FIGURES.findall(rest.split("</tr>", 1)[0]))
    return rows


def queue_of(text: str) -> list[tuple[str, int]]:
    return [(m, int(p)) for m, p in QUEUE_ROW.findall(text)]


async def test_each_pool_shows_capacity_booked_and_waiting_within_the_roles_townships(
    http, console_system: ConsoleSystem
):
    town_a = f"township:{console_system.town_a}:{TOWNSHIP_POOL}"
    town_b = f"township:{console_system.town_b}:{TOWNSHIP_POOL}"
    county = f"county:{COUNTY_POOL}"
    await login(http, console_system, "operator")
    status, text = await page(http, console_system, "/pools")
    assert status == 200, text
    assert "帮扶措施与资源池" in text
    rows = pool_rows(text)
    # the catalogue's 40 seedling places per township; one delivered, three waiting
    assert rows[town_a] == {"capacity": "40", "held": "1", "free": "39", "waiting": "3"}
    assert rows[town_b]["held"] == "0" and rows[town_b]["waiting"] == "0"
    assert rows[county]["capacity"] == "200" and int(rows[county]["waiting"]) >= 2
    assert f'href="/pools/{quote(town_a, safe="")}"' in text

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        await login(other, console_system, "reviewer_b")
        status, text = await page(other, console_system, "/pools")
        assert status == 200
        rows = pool_rows(text)
        assert town_b in rows and county in rows and town_a not in rows
        status, text = await page(other, console_system, f"/pools/{quote(town_a, safe='')}")
        assert status == 403

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        await login(other, console_system, "cadre")
        for path in ("/pools", f"/pools/{quote(county, safe='')}"):
            status, _ = await page(other, console_system, path)
            assert status == 403


async def test_a_pools_queue_lists_households_in_order_with_reasons(
    http, console_system: ConsoleSystem
):
    h = console_system.households
    instance = f"township:{console_system.town_a}:{TOWNSHIP_POOL}"
    await login(http, console_system, "reviewer")
    status, text = await page(http, console_system, f"/pools/{quote(instance, safe='')}")
    assert status == 200, text
    assert queue_of(text) == [
        (f"M-{h[name]}-industry.fruit-seedlings", n + 1)
        for n, name in enumerate(("overdue", "soon", "later"))
    ]
    assert f'<a href="/households/{h["soon"]}">' in text
    assert f"waiting for capacity in {instance}" in text
    status, _ = await page(http, console_system, "/pools/county:no-such-pool")
    assert status == 404

    # A reviewer of township B sees its own household in the county queue, at its place in
    # the whole queue (behind town A's, queued earlier), and nothing of town A.
    county = f"county:{COUNTY_POOL}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        await login(other, console_system, "reviewer_b")
        status, text = await page(other, console_system, f"/pools/{quote(county, safe='')}")
        assert status == 200
    shown = dict(queue_of(text))
    assert list(shown) == [f"M-{h['elsewhere']}-employment.workshop-job"]
    assert shown[f"M-{h['elsewhere']}-employment.workshop-job"] > 1
    assert h["soon"] not in text


async def test_the_queue_is_in_the_order_the_support_matcher_serves(
    http, console_system: ConsoleSystem
):
    """Needs of mixed priority and urgency queue in the matcher (`allocate` on a full pool);
    the same measures written as the projector writes them list in the same order."""
    catalogue = load_catalogue()
    entries = [m for m in catalogue.measures if m.type == "INDUSTRY" and m.pool]
    assert len({m.priority for m in entries}) > 1
    town = f"乡-{uuid.uuid4().hex[:6]}"
    instance = f"township:{town}:{TOWNSHIP_POOL}"
    levels = list(URGENCY)
    chance = random.Random(20261204)
    state = PoolState(instance)
    base = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    arrivals = []
    for n in range(24):
        entry = chance.choice(entries)
        level = chance.choice(levels)
        need = Need(
            measure_id=f"M-{town}-{n:02d}",
            household_id=f"H-{town}-{n:02d}",
            catalogue_id=entry.id,
            measure_type=entry.type,
            pool=instance,
            priority=entry.priority,
            urgency=URGENCY[level],
            township=town,
            village="V1",
            rule=f"rule {n}",
            reasons=(f"because {n}",),
            trigger_event_id=str(uuid.uuid4()),
            triggered_at=(base + dt.timedelta(days=chance.randrange(30))).isoformat(),
        )
        state, decisions = allocate(state, need, capacity=0)  # a full pool: everyone waits
        assert decisions and decisions[0].pool == instance
        arrivals.append((need, level))
    expected = [need.measure_id for need in state.waiting]
    assert expected != [need.measure_id for need, _ in arrivals]  # the order is not arrival's

    connection = await asyncpg.connect(console_system.database_url)
    try:
        for n, (need, level) in enumerate(arrivals):
            triggered = dt.datetime.fromisoformat(need.triggered_at)
            await connection.execute(
                "INSERT INTO households (household_id, township, village) VALUES ($1, $2, 'V1')",
                need.household_id,
                town,
            )
            await connection.execute(
                """INSERT INTO assessments (assessment_id, household_id, level, reasons,
                       policy_version, assessed_at, recorded_at)
                   VALUES ($1, $2, $3, '[]'::jsonb, 'dianjiang-2020', $4, $4)""",
                uuid.UUID(need.trigger_event_id),
                need.household_id,
                level,
                triggered,
            )
            await connection.execute(
                """INSERT INTO measures (measure_id, household_id, type, status, status_rank,
                       pool, catalogue_id, waiting_for, reasons, recommended_at,
                       status_changed_at)
                   VALUES ($1, $2, $3, 'waiting', 1, $4, $5, $4, $6::jsonb, $7, $7)""",
                need.measure_id,
                need.household_id,
                need.measure_type,
                instance,
                need.catalogue_id,
                json.dumps([need.rule, *need.reasons]),
                triggered,
            )
            await connection.execute(
                """INSERT INTO measure_steps (event_id, measure_id, household_id, step,
                       waiting_for, source_topic, occurred_at, recorded_at)
                   VALUES ($1, $2, $3, 'RECOMMENDED', $4, 'support.measures', $5, $6)""",
                uuid.uuid4(),
                need.measure_id,
                need.household_id,
                instance,
                triggered,
                base + dt.timedelta(days=40, seconds=n),  # queued in arrival order
            )
    finally:
        await connection.close()
    await login(http, console_system, "operator")
    status, text = await page(http, console_system, f"/pools/{quote(instance, safe='')}")
    assert status == 200, text
    assert queue_of(text) == [(m, n + 1) for n, m in enumerate(expected)]
    assert arrivals[0][0].reasons[0] in text
