"""An auditor on the console as it runs (`shouwang console` with the visits API, on the
session's broker and PostgreSQL): it reads every page an operator reads within its townships,
sees no decision or personal-data form, and a decision or an opening posted anyway is refused
(403) without the visits API or the personal-data log being asked; the visits API refuses its
token directly too."""

from __future__ import annotations

import uuid

import pytest

from tests.console_system import ConsoleSystem
from tests.integration.console.test_console import (
    CSRF,
    decide,
    decisions_posted,
    http,
    login,
    page,
)
from tests.visits_samples import sample

__all__ = ["http"]  # the fixture, used by name
pytestmark = pytest.mark.integration


async def test_an_auditor_reads_every_page_and_sees_no_form(http, console_system: ConsoleSystem):
    response = await login(http, console_system, "auditor")
    assert response.status == 303 and response.headers["Location"] == "/"
    h = console_system.households
    status, text = await page(http, console_system, "/")
    assert status == 303  # home sends a queue-reading role to the overview
    for path in ("/overview", "/pools", "/problems"):
        status, text = await page(http, console_system, path)
        assert status == 200, (path, text[:300])
        assert "审计人员" in text, path  # the role shown beside the holder
    status, text = await page(http, console_system, "/queue")
    assert status == 200
    assert all(h[name] in text for name in ("overdue", "soon", "later", "elsewhere"))
    for name in ("overdue", "elsewhere"):
        status, text = await page(http, console_system, f"/households/{h[name]}")
        assert status == 200 and h[name] in text
        assert "/decisions" not in text and "/personal" not in text, name
        status, text = await page(http, console_system, f"/households/{h[name]}/history")
        assert status == 200, name
    status, _ = await page(http, console_system, "/work")
    assert status == 403  # a cadre's list: an auditor has no households of its own


async def test_an_auditor_narrowed_to_a_township_reads_only_that_township(
    http, console_system: ConsoleSystem
):
    await login(http, console_system, "auditor_b")
    h = console_system.households
    status, text = await page(http, console_system, "/queue")
    assert status == 200 and h["elsewhere"] in text and h["overdue"] not in text
    status, _ = await page(http, console_system, f"/households/{h['elsewhere']}")
    assert status == 200
    status, _ = await page(http, console_system, f"/households/{h['overdue']}")
    assert status == 403
    status, _ = await page(http, console_system, f"/queue?township={console_system.town_a}")
    assert status == 403


async def test_an_auditors_decision_and_opening_are_refused_and_nothing_is_asked(
    http, console_system: ConsoleSystem
):
    await login(http, console_system, "auditor")
    household = console_system.households["soon"]
    _status, text = await page(http, console_system, "/queue")
    csrf = CSRF.search(text).group(1)  # the logout form's: a valid token of this session
    before = await decisions_posted(http, console_system)
    status, text, _ = await decide(
        http,
        console_system,
        household,
        {
            "csrf_token": csrf,
            "decision": "START_VERIFICATION",
            "body": "REVIEW_GROUP",
            "approving_level": "TOWNSHIP",
            "event_id": str(uuid.uuid4()),
        },
    )
    assert status == 403, text
    async with http.post(
        console_system.url(f"/households/{household}/personal"),
        data={"csrf_token": csrf, "reason": "inspection sample"},
        allow_redirects=False,
    ) as response:
        assert response.status == 403 and "您的角色不能查看个人信息" in await response.text()
    assert await decisions_posted(http, console_system) == before  # the visits API never asked
    # The token itself writes nothing, whoever posts with it: the visits API says why.
    decision = sample("review-decisions", household_id=household)
    async with http.post(
        console_system.visits_url("/v1/review-decisions"),
        json=decision,
        headers={"Authorization": f"Bearer {console_system.secrets['auditor']}"},
    ) as response:
        answer = await response.json(content_type=None)
        assert response.status == 403 and "read-only" in answer["detail"], answer
