"""A village committee on the console as it runs (`shouwang console` with the visits API, on the
session's broker and PostgreSQL): its token (a cadre token of town A narrowed to one village,
allowed ReviewDecided) logs in as the village role, reads the review queue and household pages
of its village only (a household of another village of the same township gets the 403 page),
is offered only the village's steps, and a step it records reaches household.reviews through
the real visits API with the committee as actor; a step of another level, posted anyway, is
refused by the visits API (the authority), and nothing is written."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.console_system import ConsoleSystem
from tests.integration.console.test_console import (
    decide,
    decisions_posted,
    form_fields,
    http,
    login,
    page,
)

__all__ = ["http"]  # the fixture, used by name
pytestmark = pytest.mark.integration
OPTION = re.compile(r'<option value="([A-Z_]+)"')


def select_options(text: str, name: str) -> list[str]:
    """The values a <select name=...> of the page offers (without the empty choice)."""
    start = text.index(f'<select id="{name}" name="{name}"')
    return OPTION.findall(text[start : text.index("</select>", start)])


async def test_a_village_committee_sees_its_villages_queue_and_households_only(
    http, console_system: ConsoleSystem
):
    response = await login(http, console_system, "village")
    assert response.status == 303 and response.headers["Location"] == "/"
    h = console_system.households
    async with http.get(console_system.url("/"), allow_redirects=False) as home:
        assert home.status == 303 and home.headers["Location"] == "/queue"
    status, text = await page(http, console_system, "/queue")
    assert status == 200, text[:300]
    assert "村委会" in text  # the role shown beside the holder
    assert h["later"] in text and "公示中" in text  # its household, with its procedure step
    # the households of village V1 of the same township, and of town B, are not listed
    assert all(h[name] not in text for name in ("overdue", "soon", "elsewhere")), text
    nav = text.split("<main", 1)[0]
    assert 'href="/queue"' in nav
    assert all(f'href="{p}"' not in nav for p in ("/overview", "/pools", "/problems", "/work"))
    for path in ("/overview", "/pools", "/problems", f"/queue?township={console_system.town_b}"):
        status, _ = await page(http, console_system, path)
        assert status == 403, path  # they count whole townships, or another township

    status, text = await page(http, console_system, f"/households/{h['later']}")
    assert status == 200
    assert "公示中" in text and "公示还剩 4 天" in text  # the step it awaits
    assert select_options(text, "decision") == ["VILLAGE_DELIBERATION", "NOTICE", "OBJECTION"]
    assert select_options(text, "approving_level") == ["VILLAGE"]
    assert sorted(select_options(text, "body")) == ["SELF_CHECK_GROUP", "VILLAGE"]
    assert 'name="category"' not in text and 'name="exception"' not in text
    assert "/personal" not in text and "您的角色不能查看个人信息" in text  # no personal data
    status, _ = await page(http, console_system, f"/households/{h['later']}/history")
    assert status == 200

    for name in ("soon", "overdue"):  # another village of the same township
        status, text = await page(http, console_system, f"/households/{h[name]}")
        assert status == 403 and "该农户不在您负责的村" in text, name
        assert h[name] not in text.split("<main", 1)[1].replace(f"/{h[name]}", "")
        status, _ = await page(http, console_system, f"/households/{h[name]}/history")
        assert status == 403, name
    status, text = await page(http, console_system, f"/households/{h['elsewhere']}")
    assert status == 403  # another township


async def test_a_village_step_reaches_the_log_through_the_visits_api_as_the_village(
    http, console_system: ConsoleSystem
):
    await login(http, console_system, "village")
    household = console_system.households["later"]
    fields = await form_fields(http, console_system, f"/households/{household}")
    status, text, location = await decide(
        http,
        console_system,
        household,
        {
            **fields,
            "decision": "OBJECTION",
            "body": "VILLAGE",
            "approving_level": "VILLAGE",
            "reason": "村民反映其子女在城里有商品房",
        },
    )
    assert status == 303, text
    assert location == f"/households/{household}?recorded={fields['event_id']}"
    record = await console_system.review_record(fields["event_id"])
    assert record["household_id"] == household
    assert record["actor"] == console_system.holders["village"]
    assert record["source"] == "APP"
    assert (record["decision"], record["body"], record["approving_level"]) == (
        "OBJECTION",
        "VILLAGE",
        "VILLAGE",
    )
    assert record["reason"] == "村民反映其子女在城里有商品房"


async def test_a_step_of_another_level_is_refused_by_the_visits_api_and_nothing_written(
    http, console_system: ConsoleSystem
):
    await login(http, console_system, "village")
    h = console_system.households
    fields = await form_fields(http, console_system, f"/households/{h['later']}")
    village = {"body": "VILLAGE", "approving_level": "VILLAGE"}
    before = await decisions_posted(http, console_system)
    # Not offered by the form, posted anyway: the visits door's level rule says no.
    status, text, _ = await decide(
        http,
        console_system,
        h["later"],
        {**fields, "decision": "TOWNSHIP_REVIEW", "outcome": "PASSED", **village},
    )
    assert status == 403, text
    assert "<code>decision</code>" in text and "TOWNSHIP_REVIEW" in text
    assert await decisions_posted(http, console_system) == before + 1  # the API was asked
    # An objection without its grounds is named in the form; the API is not asked.
    status, text, _ = await decide(
        http, console_system, h["later"], {**fields, "decision": "OBJECTION", **village}
    )
    assert status == 422 and "<code>reason</code>: 异议必须写明理由" in text
    # A household of another village: refused before the visits API is asked.
    status, _, _ = await decide(
        http,
        console_system,
        h["soon"],
        {
            "csrf_token": fields["csrf_token"],
            "event_id": str(uuid.uuid4()),
            "decision": "VILLAGE_DELIBERATION",
            "outcome": "PASSED",
            **village,
        },
    )
    assert status == 403
    assert await decisions_posted(http, console_system) == before + 1
