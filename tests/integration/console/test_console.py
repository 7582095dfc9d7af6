"""`shouwang console` as it runs, with the visits API, on the session's broker and PostgreSQL:
login and its cookie, CSRF and same-origin refusals, role and township scoping, the review queue
in deadline order, and a decision that reaches household.reviews through the visits API with
the logged-in person as its actor."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest
from yarl import URL

from services.console.i18n import translations
from services.console.labels import label
from tests.console_system import ConsoleSystem
from tests.visits_samples import sample

pytestmark = pytest.mark.integration
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
EVENT_ID = re.compile(r'name="event_id" value="([^"]+)"')


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe: keep cookies of an IP-address host (the console listens on 127.0.0.1)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(
        cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        yield session


async def login(
    http: aiohttp.ClientSession, system: ConsoleSystem, role: str
) -> aiohttp.ClientResponse:
    async with http.get(system.url("/login")) as page:
        csrf = CSRF.search(await page.text()).group(1)
    async with http.post(
        system.url("/login"),
        data={"token": system.secrets[role], "csrf_token": csrf, "next": "/"},
        allow_redirects=False,
    ) as response:
        await response.read()
        return response


async def page(http: aiohttp.ClientSession, system: ConsoleSystem, path: str) -> tuple[int, str]:
    async with http.get(system.url(path), allow_redirects=False) as response:
        return response.status, await response.text()


async def decide(
    http: aiohttp.ClientSession, system: ConsoleSystem, household: str, data: dict, **options
) -> tuple[int, str, str | None]:
    """Post the household page's decision form: status, page text and the redirect, if any."""
    async with http.post(
        system.url(f"/households/{household}/decisions"),
        data=data,
        allow_redirects=False,
        **options,
    ) as response:
        return response.status, await response.text(), response.headers.get("Location")


async def form_fields(http, system, path) -> dict[str, str]:
    status, text = await page(http, system, path)
    assert status == 200, text
    return {"csrf_token": CSRF.search(text).group(1), "event_id": EVENT_ID.search(text).group(1)}


async def test_login_sets_a_strict_http_only_session_cookie_without_the_token(http, console_system):
    response = await login(http, console_system, "reviewer")
    assert response.status == 303 and response.headers["Location"] == "/"
    cookies = SimpleCookie()
    for header in response.headers.getall("Set-Cookie"):
        cookies.load(header)
    session = cookies["shouwang_console"]
    assert session["httponly"] is True
    assert session["samesite"] == "Strict"
    assert session["path"] == "/"
    assert console_system.secrets["reviewer"] not in session.value
    assert len(session.value) >= 40
    status, _ = await page(http, console_system, "/")
    assert status == 303  # a reviewer starts at the queue


async def test_chinese_by_default_and_english_on_request(http, console_system):
    status, text = await page(http, console_system, "/login")
    assert status == 200 and 'lang="zh-Hans"' in text and "登录" in text
    async with http.get(console_system.url("/language/en?next=/login")) as response:
        text = await response.text()
    assert 'lang="en"' in text and "Log in" in text and "登录" not in text.replace("中文", "")


async def test_unknown_tokens_and_feeds_cannot_log_in(http, console_system):
    async with http.get(console_system.url("/login")) as response:
        csrf = CSRF.search(await response.text()).group(1)
    for secret, status, words in (
        ("sw_" + uuid.uuid4().hex, 401, "令牌无效或已被吊销"),
        (console_system.secrets["feed"], 403, "部门数据接口的令牌不能登录控制台"),
    ):
        async with http.post(
            console_system.url("/login"),
            data={"token": secret, "csrf_token": csrf},
            allow_redirects=False,
        ) as response:
            text = await response.text()
            assert response.status == status and words in text
            assert "shouwang_console" not in response.cookies
        csrf = CSRF.search(text).group(1)  # each answer is a fresh form


async def test_a_login_form_without_its_csrf_token_is_refused(http, console_system):
    async with http.post(
        console_system.url("/login"),
        data={"token": console_system.secrets["operator"]},
        allow_redirects=False,
    ) as response:
        assert response.status == 403
        assert "shouwang_console" not in response.cookies


async def test_the_queue_shows_the_reviewers_townships_overdue_first(http, console_system):
    await login(http, console_system, "reviewer")
    status, text = await page(http, console_system, "/queue")
    assert status == 200
    h = console_system.households
    positions = [text.find(h[name]) for name in ("overdue", "soon", "later")]
    assert all(p > 0 for p in positions) and positions == sorted(positions), positions
    assert h["elsewhere"] not in text
    assert "已逾期" in text and "边缘易致贫户" in text and "大病" in text
    # 15 days from flag to decision in dianjiang-2020: 10 days in, 5 left; "later" is in its
    # entry procedure: in public notice, 4 days of it left, the township's review due in 9 days
    rows = {name: text[text.find(h[name]) :].split("</tr>", 1)[0] for name in ("soon", "later")}
    assert '<td class="due">5<br>' in rows["soon"], rows["soon"]
    assert '<td class="step">—</td>' in rows["soon"], rows["soon"]
    assert '<td class="due">9<br>' in rows["later"], rows["later"]
    assert "公示中" in rows["later"] and "公示还剩 4 天" in rows["later"], rows["later"]
    assert "识别程序" in rows["later"], rows["later"]

    status, text = await page(http, console_system, f"/households/{h['later']}")
    assert status == 200
    assert "识别和退出程序" in text and "公示中" in text and "公示还剩 4 天" in text
    assert f"{h['later']}-deliberation" in text and f"{h['later']}-notice" in text  # steps
    assert "村民代表评议 · 通过" in text and "village-shuijing" in text  # the step, named
    assert "程序例外" in text and "APPLY skipped" in text  # the exception with its message
    status, text = await page(http, console_system, f"/households/{h['soon']}")
    assert "当前无进行中的程序。" in text


async def test_an_operator_sees_every_township_and_filters_by_one(http, console_system):
    await login(http, console_system, "operator")
    h = console_system.households
    status, text = await page(http, console_system, "/queue")
    assert status == 200 and h["elsewhere"] in text and h["overdue"] in text
    status, text = await page(http, console_system, f"/queue?township={console_system.town_b}")
    assert status == 200 and h["elsewhere"] in text and h["overdue"] not in text
    # a monitored household whose exit awaits the county: in the queue, not overdue (a
    # monitored household has no flag-to-decision deadline, and the policy set no last day)
    status, text = await page(http, console_system, f"/queue?township={console_system.town_a}-exit")
    row = text[text.find(h["exit"]) :].split("</tr>", 1)[0]
    assert status == 200 and "县级审定" in row and "退出程序" in row, row
    assert "已逾期" not in row and '<td class="due">—' in row, row


async def test_a_reviewer_of_another_township_gets_the_403_page(http, console_system):
    await login(http, console_system, "reviewer_b")
    household = console_system.households["overdue"]
    status, text = await page(http, console_system, f"/households/{household}")
    assert status == 403 and "该农户不在您负责的乡镇" in text
    assert household not in text.split("<main", 1)[1].replace(f"/{household}", "")
    status, text = await page(http, console_system, f"/queue?township={console_system.town_a}")
    assert status == 403
    async with http.get(console_system.url("/queue")) as response:
        csrf = CSRF.search(await response.text()).group(1)
    status, _, _ = await decide(
        http,
        console_system,
        household,
        {
            "csrf_token": csrf,
            "decision": "REJECT",
            "body": "REVIEW_GROUP",
            "approving_level": "TOWNSHIP",
            "event_id": str(uuid.uuid4()),
        },
    )
    assert status == 403


async def test_a_cadre_has_no_queue_and_no_household_pages(http, console_system):
    await login(http, console_system, "cadre")
    status, _ = await page(http, console_system, "/queue")
    assert status == 403
    status, _ = await page(http, console_system, f"/households/{console_system.households['soon']}")
    assert status == 403


async def test_pages_need_a_session(http, console_system):
    status, _ = await page(http, console_system, "/queue")
    assert status == 303
    async with http.get(console_system.url("/queue"), allow_redirects=False) as response:
        assert response.headers["Location"].startswith("/login?next=")


async def decisions_posted(http, system) -> float:
    async with http.get(system.url("/metrics")) as response:
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("shouwang_console_decisions_total{")
    )


async def test_a_decision_without_its_csrf_token_or_from_another_site_is_refused(
    http, console_system
):
    await login(http, console_system, "reviewer")
    household = console_system.households["soon"]
    fields = await form_fields(http, console_system, f"/households/{household}")
    before = await decisions_posted(http, console_system)
    decision = {
        "decision": "START_VERIFICATION",
        "body": "REVIEW_GROUP",
        "approving_level": "TOWNSHIP",
        "event_id": fields["event_id"],
    }
    status, text, _ = await decide(http, console_system, household, decision)
    assert status == 403 and "表单安全令牌缺失或已过期" in text
    forged = {**decision, "csrf_token": "x" * 43}
    status, _, _ = await decide(http, console_system, household, forged)
    assert status == 403
    status, text, _ = await decide(
        http,
        console_system,
        household,
        {**decision, "csrf_token": fields["csrf_token"]},
        headers={"Origin": "http://evil.example"},
    )
    assert status == 403 and "来自其他网站" in text
    assert await decisions_posted(http, console_system) == before  # the visits API never asked


async def test_a_form_with_wrong_fields_names_them_and_posts_nothing(http, console_system):
    await login(http, console_system, "reviewer")
    household = console_system.households["soon"]
    fields = await form_fields(http, console_system, f"/households/{household}")
    before = await decisions_posted(http, console_system)
    status, text, _ = await decide(
        http,
        console_system,
        household,
        {
            **fields,
            "decision": "INCLUDE",
            "body": "REVIEW_GROUP",
            "approving_level": "TOWNSHIP",
            "notice_days": "many",
        },
    )
    assert status == 422
    assert "<code>category</code>: 纳入监测时必填" in text
    assert "<code>notice_days</code>: 须为整数天数" in text
    assert await decisions_posted(http, console_system) == before


async def test_a_decision_reaches_the_log_through_the_visits_api_as_the_reviewer(
    http, console_system
):
    await login(http, console_system, "reviewer")
    household = console_system.households["overdue"]
    fields = await form_fields(http, console_system, f"/households/{household}")
    status, text, location = await decide(
        http,
        console_system,
        household,
        {
            **fields,
            # A township reviewer opens a verification; INCLUDE is the county's (the visits
            # door's level rule, services/visits/domain/levels.py).
            "decision": "START_VERIFICATION",
            "body": "REVIEW_GROUP",
            "approving_level": "TOWNSHIP",
            "notice_days": "5",
            "notice_start": "2026-01-05",
            "reason": "住院费用高",
        },
    )
    assert status == 303, text
    assert location == f"/households/{household}?recorded={fields['event_id']}"
    record = await console_system.review_record(fields["event_id"])
    assert record["household_id"] == household
    assert record["actor"] == console_system.holders["reviewer"]
    assert record["source"] == "APP"
    assert (record["decision"], record["category"]) == ("START_VERIFICATION", None)
    assert record["reason"] == "住院费用高" and record["notice_days"] == 5
    status, text = await page(http, console_system, location)
    assert status == 200 and "决定已记录" in text


async def test_logout_ends_the_session(http, console_system):
    await login(http, console_system, "operator")
    async with http.get(console_system.url("/queue")) as response:
        csrf = CSRF.search(await response.text()).group(1)
        session = http.cookie_jar.filter_cookies(URL(console_system.base))["shouwang_console"]
    async with http.post(
        console_system.url("/logout"), data={"csrf_token": csrf}, allow_redirects=False
    ) as response:
        assert response.status == 303
    # the old session id, replayed, opens nothing
    async with aiohttp.ClientSession() as other:
        async with other.get(
            console_system.url("/queue"),
            headers={"Cookie": f"shouwang_console={session.value}"},
            allow_redirects=False,
        ) as response:
            assert response.status == 303


FIELD = re.compile(r'<dd data-field="(\w+)">([^<]*)</dd>')


async def test_the_history_page_gives_the_answer_of_shouwang_explain_as_of_a_day(
    http, console_system
):
    household = f"H-hist-{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(console_system.database_url)
    try:  # the read model's row, as the registry projection would leave it
        await connection.execute(
            "INSERT INTO households (household_id, township) VALUES ($1, $2)",
            household,
            console_system.town_a,
        )
    finally:
        await connection.close()
    registry = sample("households", household_id=household, township=console_system.town_a)
    del registry["personal"]
    operator = {"Authorization": f"Bearer {console_system.secrets['operator']}"}
    for slug, body in (
        ("households", registry),
        ("income-updates", sample("income-updates", household_id=household,
                                  per_capita_net_yuan=2500)),
        ("visits", sample("visits", household_id=household)),
    ):  # fmt: skip
        async with http.post(
            console_system.visits_url(f"/v1/{slug}"), json=body, headers=operator
        ) as response:
            assert response.status == 202, await response.text()
    await login(http, console_system, "operator")
    day = "2020-06-30"
    status, text = await page(http, console_system, f"/households/{household}/history?as_of={day}")
    assert status == 200, text
    shown = dict(FIELD.findall(text))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "explain", household, "--as-of", day, "--json",
        env=console_system.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    explained = json.loads(out)
    zh = translations("zh").gettext
    assessment, workflow = explained["assessment"], explained["workflow"]
    assert shown["workflow"] == zh(label("workflow", workflow["status"].lower()))
    assert shown["level"] == zh(label("risk", assessment["level"]))
    expected_category = (
        zh(label("category", assessment["category"])) if assessment["category"] else "—"
    )
    assert shown["category"] == expected_category
    assert shown["decision_due"] == (workflow["decision_due"] or "—")
    assert assessment["level"] != "NONE"  # the low income is a risk: the check compares something
    assert text.count("<strong>迟到</strong>") == 3  # 2020's events, recorded today
    status, _ = await page(http, console_system, f"/households/{household}/history?as_of=June")
    assert status == 400


async def test_a_cadres_work_list_shows_overdue_visits_first_and_open_problems(
    http, console_system
):
    await login(http, console_system, "cadre")
    status, text = await page(http, console_system, "/")
    assert status == 303
    status, text = await page(http, console_system, "/work")
    assert status == 200, text
    h = console_system.households
    visits = text.split('class="visits"', 1)[1].split("</table>", 1)[0]
    assert visits.find(h["visit_overdue"]) < visits.find(h["visit_later"])
    assert "已逾期" in visits.split(h["visit_later"])[0]
    problems = text.split('class="problems"', 1)[1].split("</table>", 1)[0]
    assert f"P-{h['visit_overdue']}-open" in problems and "-done" not in problems


async def test_the_sync_api_sends_the_cadres_list_then_only_what_changed(http, console_system):
    url = console_system.url("/api/v1/worklist")
    h = console_system.households

    def bearer(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {console_system.secrets[role]}"}

    async with http.get(url) as response:
        assert response.status == 401 and response.content_type == "application/problem+json"
    async with http.get(url, headers=bearer("operator")) as response:
        assert response.status == 403
    async with http.get(url, headers=bearer("cadre")) as response:
        assert response.status == 200
        first = await response.json()
        etag = response.headers["ETag"]
    assert first["full"] is True
    assert first["household_ids"] == sorted([h["visit_overdue"], h["visit_later"]])
    due = {x["household_id"]: x["visit_due"] for x in first["households"]}
    today = dt.datetime.now(dt.UTC).date()
    assert due[h["visit_overdue"]] == (today - dt.timedelta(days=10)).isoformat()  # 40 - 30
    assert due[h["visit_later"]] == (today + dt.timedelta(days=20)).isoformat()
    assert [p["problem_id"] for p in first["problems"]] == [f"P-{h['visit_overdue']}-open"]
    async with http.get(url, headers={**bearer("cadre"), "If-None-Match": etag}) as response:
        assert response.status == 304
    async with http.get(url, params={"since": "yesterday"}, headers=bearer("cadre")) as response:
        body = await response.json()
        assert response.status == 400 and body["errors"][0]["field"] == "since"

    # The projector rectifies the open problem: the next sync carries that, and nothing else.
    connection = await asyncpg.connect(console_system.database_url)
    try:
        await connection.execute(
            "UPDATE problems SET status = 'rectified', updated_at = now() WHERE problem_id = $1",
            f"P-{h['visit_overdue']}-open",
        )
    finally:
        await connection.close()
    async with http.get(
        url, params={"since": first["cursor"]}, headers=bearer("cadre")
    ) as response:
        assert response.status == 200
        second = await response.json()
    assert second["full"] is False and second["households"] == []
    assert second["household_ids"] == first["household_ids"]
    assert [(p["problem_id"], p["status"]) for p in second["problems"]] == [
        (f"P-{h['visit_overdue']}-open", "rectified")
    ]


async def test_the_openapi_document_and_its_page_are_served(http, console_system):
    async with http.get(console_system.url("/openapi.json")) as response:
        document = await response.json()
    assert "/api/v1/worklist" in document["paths"]
    async with http.get(console_system.url("/docs")) as response:
        assert response.status == 200 and "swagger-ui" in await response.text()
    async with http.post(console_system.url("/api/v1/worklist")) as response:
        assert response.status == 405  # the API answers problems, not the console's pages
        assert response.content_type == "application/problem+json"


FIGURE = re.compile(r'<td data-figure="([^"]+)">(?:<a [^>]*>)?([^<(]*)')


async def test_the_overview_counts_a_townships_households_measures_and_problems(
    http, console_system
):
    # Runs after the tests above: town A holds the three queue households, the cadre's two
    # monitored ones (both visited, their problems both rectified by now) and the history
    # test's registered one; one of them is decision-overdue.
    await login(http, console_system, "operator")
    status, text = await page(http, console_system, f"/overview?township={console_system.town_a}")
    assert status == 200, text
    shown = {k: v.strip() for k, v in FIGURE.findall(text)}
    assert shown["households"] == "6" and shown["flagged"] == "3" and shown["monitored"] == "2"
    assert shown["monitored:MARGINAL"] == "2" and shown["monitored_visited"] == "2"
    assert shown["decision_overdue"] == "1" and shown["measures:accepted"] == "1"
    assert (shown["problems_found"], shown["problems_rectified"], shown["problems_open"]) == (
        "2",
        "2",
        "0",
    )
    assert shown["rectification_rate"] == "100%"
    assert f'href="/queue?township={quote(console_system.town_a)}"' in text
    status, text = await page(http, console_system, f"/overview?township={console_system.town_b}")
    shown = {k: v.strip() for k, v in FIGURE.findall(text)}
    assert (shown["households"], shown["flagged"], shown["problems_found"]) == ("1", "1", "0")

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        assert (await login(other, console_system, "reviewer_b")).status == 303
        path = f"/overview?township={console_system.town_a}"
        status, _ = await page(other, console_system, path)
        assert status == 403
        status, text = await page(other, console_system, "/overview")
        assert status == 200 and console_system.town_a not in text


async def test_a_revoked_token_ends_its_sessions(http, console_system):
    assert (await login(http, console_system, "revoked")).status == 303
    status, _ = await page(http, console_system, "/queue")
    assert status == 200
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "tokens", "revoke",
        console_system.token_ids["revoked"], "--reason", "phone lost",
        env=console_system.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    deadline = asyncio.get_running_loop().time() + 30
    while (status := (await page(http, console_system, "/queue"))[0]) == 200:
        assert asyncio.get_running_loop().time() < deadline, "the session outlived its token"
        await asyncio.sleep(0.2)
    assert status == 303  # back to the login page: the session ended with its token
