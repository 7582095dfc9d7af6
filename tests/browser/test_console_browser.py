"""The console in a real browser: log in as each role, walk the review queue to a household,
record a decision and see it reach the log, then the measures and pools to a pool's queue and
back to a household; the 403 page for another township's household; the problems board from
the nav to a household, and a cadre's own; an auditor reading the queue and a household with no
form to change anything; a village committee walking its village's queue to a household,
recording an objection (offered only the village's steps) and refused another village's
household; a form without its CSRF token refused; an operator opening a
household's personal data, stating why. A screenshot of every page is saved under the
test's temporary directory, and each page passes basic accessibility checks (a language, one
h1, every field labelled, text contrast at least WCAG AA's 4.5:1)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.console_system import TOWNSHIP_POOL, ConsoleSystem

pytestmark = pytest.mark.integration

# Run in the page: text elements whose contrast against their background is under 4.5:1.
LOW_CONTRAST = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!text || el.offsetParent === null) continue;
    const a = lum(rgb(getComputedStyle(el).color).slice(0, 3)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const what = el.textContent.trim().slice(0, 30);
    if (ratio < 4.5) bad.push(`${el.tagName}: ${ratio.toFixed(2)} "${what}"`);
  }
  return bad;
}"""
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(f => f.type !== 'hidden' && f.type !== 'submit')
  .filter(f => !(f.id && document.querySelector(`label[for="${f.id}"]`)))
  .filter(f => !f.getAttribute('aria-label'))
  .map(f => f.name)"""


async def checked(page, name: str, shots: Path) -> None:
    """Save the page's screenshot (also under $SHOUWANG_SCREENSHOTS if set: the README's are
    made so) and check its basic accessibility."""
    await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    if os.environ.get("SHOUWANG_SCREENSHOTS"):
        shutil.copyfile(
            shots / f"{name}.png", Path(os.environ["SHOUWANG_SCREENSHOTS"]) / f"{name}.png"
        )
    assert await page.get_attribute("html", "lang") in ("zh-Hans", "en"), name
    assert await page.locator("h1").count() == 1, name
    assert await page.evaluate(UNLABELLED) == [], name
    assert await page.evaluate(LOW_CONTRAST) == [], name


async def log_in(page, system: ConsoleSystem, role: str) -> None:
    await page.goto(system.url("/login"))
    await page.get_by_label("令牌").fill(system.secrets[role])
    await page.get_by_role("button", name="登录").click()


async def test_a_reviewer_walks_the_queue_to_a_household_and_records_a_decision(
    browser, console_system: ConsoleSystem, tmp_path: Path
):
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(console_system.url("/login"))
    await checked(page, "login", tmp_path)
    await log_in(page, console_system, "reviewer")
    await page.wait_for_url("**/overview")
    await checked(page, "overview", tmp_path)
    await page.get_by_role("link", name="审核队列").click()
    await page.wait_for_url("**/queue")
    await checked(page, "queue", tmp_path)
    cookie = next(c for c in await context.cookies() if c["name"] == "shouwang_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""  # no script can read the session

    household = console_system.households["soon"]
    rows = page.locator("table.queue tbody tr")
    assert await rows.nth(0).locator("a").first.inner_text() == console_system.households["overdue"]
    # a household in its entry procedure: the step it awaits, with the notice's countdown
    in_notice = rows.filter(has_text=console_system.households["later"]).locator("td.step")
    assert "公示中" in await in_notice.inner_text()
    assert "公示还剩 4 天" in await in_notice.inner_text()
    await page.get_by_role("link", name=console_system.households["later"], exact=True).click()
    await page.wait_for_url(f"**/households/{console_system.households['later']}")
    await checked(page, "household-procedure", tmp_path)
    assert await page.locator("#procedure").inner_text() == "识别和退出程序"
    await page.go_back()
    await page.wait_for_url("**/queue")
    await page.get_by_role("link", name=household, exact=True).click()
    await page.wait_for_url(f"**/households/{household}")
    await checked(page, "household", tmp_path)

    # A township reviewer opens a verification; INCLUDE is the county's (the visits door's
    # level rule, services/visits/domain/levels.py).
    await page.get_by_label("决定", exact=True).select_option("START_VERIFICATION")
    await page.get_by_label("依据").fill("大病住院，医疗支出高")
    event_id = await page.locator('input[name="event_id"]').get_attribute("value")
    await page.get_by_role("button", name="记录决定").click()
    await page.wait_for_url(f"**/households/{household}?recorded={event_id}")
    await checked(page, "household-recorded", tmp_path)
    assert await page.get_by_role("status").count() == 1
    record = await console_system.review_record(event_id)
    assert record["actor"] == console_system.holders["reviewer"]
    assert (record["decision"], record["category"]) == ("START_VERIFICATION", None)

    await page.get_by_role("link", name="历史记录及农户在过去某日的情况").click()
    await page.wait_for_url(f"**/households/{household}/history")
    await checked(page, "household-history", tmp_path)
    await page.get_by_label("评估日期").fill("2020-06-30")
    await page.get_by_role("button", name="查看").click()
    await page.wait_for_url("**/history?as_of=2020-06-30")
    assert "2020-06-30" in await page.locator("h2").first.inner_text()

    await page.get_by_role("link", name="帮扶措施与资源池").click()
    await page.wait_for_url("**/pools")
    await checked(page, "pools", tmp_path)
    instance = f"township:{console_system.town_a}:{TOWNSHIP_POOL}"
    await page.locator(f'tr[data-pool="{instance}"] a').click()
    await page.wait_for_url("**/pools/township*")
    await checked(page, "pool-queue", tmp_path)
    first = page.locator("table.pool-queue tbody tr").nth(0).get_by_role("link")
    assert await first.inner_text() == console_system.households["overdue"]
    await first.click()
    await page.wait_for_url(f"**/households/{console_system.households['overdue']}")

    await page.goto(console_system.url("/language/en?next=/queue"))
    await checked(page, "queue-en", tmp_path)
    assert await page.locator("h1").inner_text() == "Review queue"
    await context.close()


async def test_another_townships_household_gets_the_403_page(
    browser, console_system: ConsoleSystem, tmp_path: Path
):
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, console_system, "reviewer_b")
    await page.wait_for_url("**/overview")
    household = console_system.households["overdue"]
    response = await page.goto(console_system.url(f"/households/{household}"))
    assert response.status == 403
    await checked(page, "forbidden", tmp_path)
    assert "该农户不在您负责的乡镇" in await page.inner_text("main")
    await context.close()


async def test_a_form_posted_without_its_csrf_token_is_refused(
    browser, console_system: ConsoleSystem, tmp_path: Path
):
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, console_system, "operator")
    await page.wait_for_url("**/overview")
    household = console_system.households["later"]
    await page.goto(console_system.url(f"/households/{household}"))
    await page.get_by_label("决定", exact=True).select_option("START_VERIFICATION")
    await page.evaluate("document.querySelector('form.decision [name=csrf_token]').remove()")
    async with page.expect_response(lambda r: r.request.method == "POST") as answered:
        await page.get_by_role("button", name="记录决定").click()
    assert (await answered.value).status == 403
    await checked(page, "csrf-refused", tmp_path)
    assert "表单安全令牌缺失或已过期" in await page.inner_text("main")
    await context.close()


async def test_a_cadre_sees_its_work_list_and_no_queue(
    browser, console_system: ConsoleSystem, tmp_path: Path
):
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, console_system, "cadre")
    await page.wait_for_url("**/work")
    await checked(page, "cadre-work", tmp_path)
    assert console_system.households["visit_overdue"] in await page.inner_text("table.visits")
    assert await page.get_by_role("link", name="审核队列").count() == 0
    response = await page.goto(console_system.url("/queue"))
    assert response.status == 403
    await context.close()


async def test_an_auditor_reads_the_queue_and_a_household_and_changes_nothing(
    browser, console_system: ConsoleSystem, tmp_path: Path
):
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, console_system, "auditor")
    await page.wait_for_url("**/overview")
    await page.get_by_role("link", name="审核队列").click()
    await page.wait_for_url("**/queue")
    await checked(page, "auditor-queue", tmp_path)
    household = console_system.households["soon"]
    await page.get_by_role("link", name=household, exact=True).click()
    await page.wait_for_url(f"**/households/{household}")
    await checked(page, "auditor-household", tmp_path)
    assert await page.get_by_label("决定", exact=True).count() == 0  # no decision form
    assert await page.get_by_label("查看理由（将被记录）").count() == 0  # no personal data
    await context.close()


async def test_the_problems_board_from_the_nav_to_a_household_and_a_cadres_own(
    browser, console_system: ConsoleSystem, tmp_path: Path
):
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, console_system, "operator")
    await page.wait_for_url("**/overview")
    await page.get_by_role("link", name="问题整改看板").click()
    await page.wait_for_url("**/problems")
    await checked(page, "problems", tmp_path)
    await page.get_by_label("乡镇").select_option(console_system.town_a)
    await page.get_by_role("button", name="筛选").click()
    await page.wait_for_url("**/problems?township=*")
    await checked(page, "problems-township", tmp_path)
    assert console_system.town_a in await page.inner_text("table.rates")
    household = console_system.households["visit_overdue"]  # the cadre's open problem
    await page.locator("table.problems").get_by_role("link", name=household, exact=True).click()
    await page.wait_for_url(f"**/households/{household}#problems")
    assert "饮水安全" in await page.inner_text("main")  # its problem, with the kind's label
    await context.close()

    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, console_system, "cadre")
    await page.wait_for_url("**/work")
    await page.get_by_role("link", name="问题整改看板").click()
    await page.wait_for_url("**/problems")
    await checked(page, "problems-cadre", tmp_path)
    assert household in await page.inner_text("table.problems")
    assert await page.locator("table.problems a").count() == 0  # a cadre cannot open households
    await context.close()


async def test_an_operator_opens_a_households_personal_data_stating_why(
    browser, console_system: ConsoleSystem, tmp_path: Path
):
    body = await console_system.registered_household("H-pdb")
    household = body["household_id"]
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, console_system, "operator")
    await page.wait_for_url("**/overview")
    await page.goto(console_system.url(f"/households/{household}"))
    assert body["personal"]["head_name"] not in await page.inner_text("main")
    await page.get_by_label("查看理由（将被记录）").fill("核实户主身份")
    await page.get_by_role("button", name="查看个人信息").click()
    await page.wait_for_url(f"**/households/{household}/personal")
    await checked(page, "personal", tmp_path)
    assert body["personal"]["head_name"] in await page.inner_text("table.personal")
    assert await page.get_by_role("status").count() == 1  # the opening's record, named
    await context.close()


async def test_a_village_committee_records_its_villages_step_and_sees_no_other_village(
    browser, console_system: ConsoleSystem, tmp_path: Path
):
    context = await browser.new_context()
    page = await context.new_page()
    await log_in(page, console_system, "village")
    await page.wait_for_url("**/queue")  # its home: the overview counts whole townships
    await checked(page, "village-queue", tmp_path)
    assert "村委会" in await page.inner_text("header")
    assert await page.get_by_role("link", name="全县概况").count() == 0
    assert await page.get_by_role("link", name="问题整改看板").count() == 0
    h = console_system.households
    queue = await page.inner_text("table.queue")
    assert h["later"] in queue and h["soon"] not in queue and h["overdue"] not in queue
    await page.get_by_role("link", name=h["later"], exact=True).click()
    await page.wait_for_url(f"**/households/{h['later']}")
    await checked(page, "village-household", tmp_path)
    assert "公示中" in await page.locator("dl.procedure").inner_text()
    decision = page.get_by_label("决定", exact=True)
    offered = await decision.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert offered == ["", "VILLAGE_DELIBERATION", "NOTICE", "OBJECTION"]
    assert await page.get_by_label("查看理由（将被记录）").count() == 0  # no personal data
    await decision.select_option("OBJECTION")
    await page.get_by_label("依据").fill("有村民反映该户在县城有门面出租")
    event_id = await page.locator('input[name="event_id"]').get_attribute("value")
    await page.get_by_role("button", name="记录决定").click()
    await page.wait_for_url(f"**/households/{h['later']}?recorded={event_id}")
    await checked(page, "village-recorded", tmp_path)
    record = await console_system.review_record(event_id)
    assert record["actor"] == console_system.holders["village"]
    assert (record["decision"], record["approving_level"], record["body"]) == (
        "OBJECTION",
        "VILLAGE",
        "VILLAGE",
    )

    response = await page.goto(console_system.url(f"/households/{h['soon']}"))
    assert response.status == 403  # village V1 of the same township
    await checked(page, "village-forbidden", tmp_path)
    assert "该农户不在您负责的村" in await page.inner_text("main")
    await context.close()
