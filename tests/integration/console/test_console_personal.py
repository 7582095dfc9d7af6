"""Personal data on the console's household page, as it runs: only roles allowed to open it
see the button; opening needs a stated reason and the form's CSRF token; each opening is
recorded on operator.actions (read back from Kafka, and listed by `shouwang actions --subject`)
before anything is shown; a forbidden role gets 403 and records nothing."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

from services.contract.codec import Codec
from services.contract.personal import HOUSEHOLD, Subject
from services.platform.actions.events import personal_subject
from services.platform.actions.log import read_actions
from tests.console_system import ConsoleSystem
from tests.integration.console.test_console import CSRF, login, page

pytestmark = pytest.mark.integration
ACCESS = re.compile(r'data-access="([^"]+)"')


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=60)
    ) as session:
        yield session


@pytest.fixture(scope="module")
async def registered(console_system: ConsoleSystem) -> dict:
    """A household of town A registered through the visits API with its personal data (the API
    seals it), and its read-model row as the projector would leave it."""
    body = await console_system.registered_household("H-pd")
    household = body["household_id"]
    return {"household": household, "personal": body["personal"], "event_id": body["event_id"]}


async def openings(system: ConsoleSystem, household: str) -> list[dict]:
    subject = personal_subject(Subject(HOUSEHOLD, household))
    actions = await read_actions(system.bootstrap, Codec.default(), subject)
    return [a for a in actions if a["action"] == "PERSONAL_DATA_OPENED"]


async def open_personal(http, system, household: str, reason: str | None, csrf: bool = True):
    status, text = await page(http, system, f"/households/{household}")
    assert status == 200, text
    form = {"csrf_token": CSRF.search(text).group(1)} if csrf else {}
    if reason is not None:
        form["reason"] = reason
    async with http.post(
        system.url(f"/households/{household}/personal"), data=form, allow_redirects=False
    ) as response:
        return response.status, await response.text()


async def test_a_reviewer_opens_personal_data_with_a_reason_and_the_opening_is_recorded(
    http, console_system: ConsoleSystem, registered
):
    household = registered["household"]
    await login(http, console_system, "reviewer")
    status, text = await page(http, console_system, f"/households/{household}")
    assert status == 200
    assert f'action="/households/{household}/personal"' in text and "查看个人信息" in text
    assert registered["personal"]["head_name"] not in text  # sealed until opened

    # No reason, or no CSRF token: nothing opened, nothing recorded.
    status, text = await open_personal(http, console_system, household, "  ")
    assert status == 422 and "请说明查看理由" in text
    status, _ = await open_personal(http, console_system, household, "核实", csrf=False)
    assert status == 403
    assert await openings(console_system, household) == []

    reason = "核实户主身份（案件 2026-18）"
    status, text = await open_personal(http, console_system, household, reason)
    assert status == 200, text
    assert registered["personal"]["head_name"] in text
    assert registered["personal"]["citizen_id"] in text
    access_id = ACCESS.search(text).group(1)

    recorded = await openings(console_system, household)
    assert [str(a["event_id"]) for a in recorded] == [access_id]
    access = recorded[0]
    assert access["actor"] == f"reviewer:{console_system.holders['reviewer']}"
    assert access["reason"] == reason
    assert access["personal"]["subject_id"] == household
    assert [str(e) for e in access["personal"]["event_ids"]] == [registered["event_id"]]

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "actions", "--subject", household,
        env=console_system.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    (listed,) = out.decode().splitlines()  # the one opening, and who, whose and why
    assert "PERSONAL_DATA_OPENED" in listed and f"household:{household}" in listed
    assert f"by {access['actor']}" in listed and f"reason: {reason}" in listed


async def test_roles_not_allowed_see_no_button_and_get_403_recording_nothing(
    console_system: ConsoleSystem, registered
):
    household = registered["household"]
    before = len(await openings(console_system, household))
    for role in ("reviewer_b", "cadre"):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await login(http, console_system, role)
            status, text = await page(http, console_system, f"/households/{household}")
            assert status == 403 and "/personal" not in text
            _, text = await page(http, console_system, "/queue" if role != "cadre" else "/work")
            csrf = CSRF.search(text).group(1)
            async with http.post(
                console_system.url(f"/households/{household}/personal"),
                data={"csrf_token": csrf, "reason": "curious"},
                allow_redirects=False,
            ) as response:
                assert response.status == 403, role
    assert len(await openings(console_system, household)) == before
