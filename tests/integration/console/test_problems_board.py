"""The console's problems board as it runs (`shouwang console` with the visits API, on the
session's broker and PostgreSQL): open problems overdue first with their due dates, the
rectification rate by township, each problem linked to its household page, and the page scoped
by role — a county operator sees every township, a township reviewer its own (another's is the
403 page), a cadre only the problems it is responsible for."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from tests.console_system import ConsoleSystem
from tests.integration.console.test_console import http, login, page

pytestmark = pytest.mark.integration
__all__ = ["http"]  # the fixture, used by name
PROBLEM_ROW = re.compile(
    r"<tr( class=\"overdue\")?>\s*<td class=\"due\">(.*?)</td>\s*<td>(.*?)</td>"
)


@pytest.fixture(scope="module")
async def board(console_system: ConsoleSystem) -> AsyncIterator[dict[str, str]]:
    """Problems as the projector leaves them, beside the cadre's two that the console system
    seeds (one open without a due date, one rectified): in township A one overdue for another
    cadre, one due in ten days for the logged-in cadre, one rectified; in township B one
    overdue. Returns the problem ids by name."""
    ids = console_system.households
    run = ids["overdue"].rsplit("-", 2)[-2]
    cadre = console_system.holders["cadre"]
    today = dt.datetime.now(dt.UTC).date()
    found = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    names = {
        "late_a": (ids["overdue"], "housing", "open", f"cadre-x-{run}", today - dt.timedelta(5)),
        "soon_a": (ids["soon"], "water", "open", cadre, today + dt.timedelta(10)),
        "fixed_a": (ids["later"], "policy_card", "rectified", f"cadre-x-{run}", None),
        "late_b": (
            ids["elsewhere"],
            "education",
            "open",
            f"cadre-b-{run}",
            today - dt.timedelta(2),
        ),
    }
    pool = await asyncpg.create_pool(console_system.database_url, min_size=1, max_size=1)
    try:
        for name, (household, item, status, responsible, due) in names.items():
            await pool.execute(
                """INSERT INTO problems (problem_id, household_id, check_item, status,
                       responsible, found_at, rectified_at, status_at, origin, visit_id,
                       default_due)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $6, 'visit', $8, $9)""",
                f"V-{name}-{run}/{item.upper()}",
                household,
                item,
                status,
                responsible,
                found,
                found + dt.timedelta(days=1) if status == "rectified" else None,
                f"V-{name}-{run}",
                due or today,
            )
    finally:
        await pool.close()
    yield {name: f"V-{name}-{run}/{item.upper()}" for name, (_, item, *_rest) in names.items()}


def problem_rows(text: str) -> list[tuple[bool, str, str]]:
    """(overdue, due cell, household cell) of each row of the open problems table, in order."""
    table = text.split('<table class="problems">', 1)[1].split("</table>", 1)[0]
    return [(bool(m[1]), m[2], m[3]) for m in PROBLEM_ROW.finditer(table)]


async def test_an_operator_sees_open_problems_overdue_first_with_the_rate_by_township(
    http: aiohttp.ClientSession, console_system: ConsoleSystem, board: dict[str, str]
):
    ids, town_a = console_system.households, console_system.town_a
    assert (await login(http, console_system, "operator")).status == 303
    status, overview = await page(http, console_system, "/overview")
    assert status == 200 and '<a href="/problems">问题整改看板</a>' in overview  # in the nav

    status, text = await page(http, console_system, "/problems")
    assert status == 200 and "<h1>问题整改看板</h1>" in text
    assert ids["elsewhere"] in text and ids["overdue"] in text  # every township
    rows = problem_rows(text)
    overdue_flags = [overdue for overdue, _, _ in rows]
    assert overdue_flags == sorted(overdue_flags, reverse=True)  # overdue first, county-wide

    status, text = await page(http, console_system, f"/problems?township={town_a}")
    assert status == 200
    rows = problem_rows(text)
    # overdue, then the soonest due, then (the seeded one without a due date) last
    assert [household for _, _, household in rows] == [
        f'<a href="/households/{ids["overdue"]}#problems">{ids["overdue"]}</a>',
        f'<a href="/households/{ids["soon"]}#problems">{ids["soon"]}</a>',
        f'<a href="/households/{ids["visit_overdue"]}#problems">{ids["visit_overdue"]}</a>',
    ]
    assert [overdue for overdue, _, _ in rows] == [True, False, False]
    assert "逾期" in rows[0][1] and "(5 天)" in rows[0][1]
    assert ids["elsewhere"] not in text
    # Township A: 5 found (3 open), 2 rectified: 40 %, 1 overdue.
    rates = text.split('<table class="rates">', 1)[1].split("</table>", 1)[0]
    assert (
        f'<tr class="overdue"><th scope="row">{town_a}</th><td>5</td><td>2</td><td>3</td>'
        "<td>1</td><td>40.0 %</td></tr>"
    ) in rates

    # The household page the board links to shows the problem with its due date.
    status, household = await page(http, console_system, f"/households/{ids['overdue']}")
    assert status == 200 and board["late_a"] in household
    late_due = (dt.datetime.now(dt.UTC).date() - dt.timedelta(5)).isoformat()
    assert late_due in household and 'id="problems"' in household


async def test_a_reviewer_sees_only_its_township_and_another_is_the_403_page(
    http: aiohttp.ClientSession, console_system: ConsoleSystem, board: dict[str, str]
):
    assert (await login(http, console_system, "reviewer")).status == 303
    status, text = await page(http, console_system, "/problems")
    assert status == 200
    households = [h for _, _, h in problem_rows(text)]
    assert any(console_system.households["overdue"] in h for h in households)
    assert not any(console_system.households["elsewhere"] in h for h in households)
    assert console_system.town_b not in text
    status, text = await page(http, console_system, f"/problems?township={console_system.town_b}")
    assert status == 403 and "<h1>" in text


async def test_a_cadre_sees_only_the_problems_it_must_fix_without_household_links(
    http: aiohttp.ClientSession, console_system: ConsoleSystem, board: dict[str, str]
):
    ids = console_system.households
    assert (await login(http, console_system, "cadre")).status == 303
    # asking for another person's problems still shows one's own
    status, text = await page(http, console_system, "/problems?responsible=somebody-else")
    assert status == 200
    assert [h for _, _, h in problem_rows(text)] == [ids["soon"], ids["visit_overdue"]]
    assert "/households/" not in text.split("<main", 1)[1]  # a cadre cannot open them
    assert 'id="responsible"' not in text  # no person filter for a cadre


async def test_the_board_in_english(
    http: aiohttp.ClientSession, console_system: ConsoleSystem, board: dict[str, str]
):
    assert (await login(http, console_system, "operator")).status == 303
    async with http.get(console_system.url("/language/en?next=/problems")) as response:
        text = await response.text()
    assert response.status == 200 and "<h1>Problems board</h1>" in text
    assert "Rectification rate" in text and "Open problems by responsible person" in text
