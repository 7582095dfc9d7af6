"""Visits, drawn at random: who is visited when and by whom, what each visit finds, and the
problem list's steps for what it found."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from services.tools.simulation import records as rec
from services.tools.simulation.campaign_plan import CampaignPlan
from services.tools.simulation.circumstances import LATENT
from services.tools.simulation.county import LIFTED, NEVER_REGISTERED, Household, rng_for
from services.tools.simulation.story import ONE_DAY, Story, VisitPlan, at_hour

UNSOLD = (
    ("土鸡", "只", 90),
    ("生猪", "头", 2_400),
    ("鸭", "只", 60),
    ("青菜头", "公斤", 2),
    ("柚子", "公斤", 4),
)
NOTES = {
    "five_visits": "五访五帮：了解疫情影响、务工、春耕、农产品销售和学生居家学习情况",
    "campaign": "百日大会战入户走访：算细账、拉家常",
    "screening": "基层干部排查：了解收入和两不愁三保障情况",
    "spot_check": "县级抽查：核实户表信息和问题整改情况",
    "follow_up": "监测责任人定期走访",
    "verification": "会审组入户核实：核查收入、刚性支出和两不愁三保障情况",
    "township_check": "公示期满，乡镇审核入户核查",
}


def draw_visits(campaign: CampaignPlan, story: Story) -> None:
    """The campaign's visits to the household, and the triggers the first of them can raise."""
    h, r, rates = story.household, story.rng, campaign.rates
    if h.registration == NEVER_REGISTERED:
        if r.random() < rates.screening_visit:
            story.visits.append(_visit_plan(campaign, story, "implementation", "screening"))
    else:
        if r.random() < rates.deployment_visit:
            story.visits.append(_visit_plan(campaign, story, "deployment", "five_visits"))
        for _ in range(1 + (r.random() < rates.second_campaign_visit)):
            story.visits.append(_visit_plan(campaign, story, "implementation", "campaign"))
        if h.registration == LIFTED and r.random() < rates.spot_check:
            story.visits.append(_visit_plan(campaign, story, "spot_check", "spot_check"))
    story.visits.sort(key=lambda v: v.occurred_at)
    line = campaign.parameters.income_line_yuan
    for n, visit in enumerate(story.visits):
        if n == 0 and story.latent:
            kinds = "、".join(LATENT[c][1].split("：")[0] for c in story.latent)
            story.triggers.append((visit.occurred_at, f"入户发现{kinds}问题"))
        income = story.income_on(visit.occurred_at.date())
        if visit.accounts and income < line:
            story.triggers.append(
                (visit.occurred_at, f"算细账人均纯收入约{income}元，低于监测线{line}元")
            )


def _visit_plan(campaign: CampaignPlan, story: Story, phase: str, kind: str) -> VisitPlan:
    r = story.rng
    days, weights = campaign.phase_days[phase]
    day = r.choices(days, weights)[0]
    cadre = campaign.visiting_cadre(story, audit=kind == "spot_check")
    return VisitPlan(
        at_hour(day, r.randint(8, 17), r.randrange(60)),
        kind,
        cadre,
        r.random() < campaign.rates.detailed_accounts,
    )


def follow_ups(campaign: CampaignPlan, story: Story) -> list[VisitPlan]:
    """Monitored households are visited every interval; a few visits come late (overdue).
    Plans the visits from `story.monitored_from` to the calendar's end and returns them."""
    planned: list[VisitPlan] = []
    if story.monitored_from is None:
        return planned
    r, rates = story.rng, campaign.rates
    interval = rates.follow_up_interval_days
    visited = sorted(v.occurred_at.date() for v in story.visits)
    last = story.monitored_from
    while True:
        if r.random() < rates.follow_up_on_time:
            gap = r.randint(max(1, interval - 10), interval)
        else:
            gap = r.randint(interval + 1, interval + 15)
        due = last + gap * ONE_DAY
        if due > campaign.calendar.end:
            return planned
        recent = [d for d in visited if last < d <= due]
        if recent:
            last = recent[-1]
            continue
        visit = VisitPlan(
            at_hour(due, r.randint(8, 17), r.randrange(60)),
            "follow_up",
            campaign.visiting_cadre(story),
            r.random() < campaign.rates.detailed_accounts,
        )
        story.visits.append(visit)
        planned.append(visit)
        visited.append(due)
        last = due


def walk_visits(campaign: CampaignPlan, story: Story) -> None:
    """Every planned visit in time order, except the scripted ones (already written)."""
    story.visits.sort(key=lambda v: v.occurred_at)
    for visit in story.visits:
        if visit.kind != "scripted":
            _visit(campaign, story, visit)


def visit(campaign: CampaignPlan, story: Story, plan: VisitPlan) -> None:
    """One visit made now (after the story's walk): its record, findings and problems."""
    story.visits.append(plan)
    _visit(campaign, story, plan)


def _visit(campaign: CampaignPlan, story: Story, plan: VisitPlan) -> None:
    h, r, rates = story.household, story.rng, campaign.rates
    day = plan.occurred_at.date()
    recorded = campaign.synced(r, plan.occurred_at)
    event_id = campaign.next_id(story)
    visit_id = rec.derived_id(campaign.seed, event_id, "visit")
    problems: dict[str, str] = {}
    findings: list[dict[str, Any]] = []
    new_problems: list[tuple[str, str, bool, str]] = []  # kind, description, fixed, latent
    for check, (kind, description) in story.latent.items():
        if check not in story.latent_found:
            story.latent_found[check] = day
            story.latent_rectified[check] = None
            new_problems.append((kind, description, False, check))
        rectified = story.latent_rectified.get(check)
        if rectified is None or rectified > day:
            problems[check] = description
            findings.append({"kind": kind, "description": description, "fixed_on_spot": False})

    x = r.random()
    if x < rates.dirty_home:
        environment = "DIRTY"
        fixed = r.random() < rates.fixed_on_spot_dirty_home
        description = "人居环境脏乱差：房前屋后垃圾未清理，柴草农具乱放"
        findings.append(
            {"kind": "LIVING_ENVIRONMENT", "description": description, "fixed_on_spot": fixed}
        )
        new_problems.append(("LIVING_ENVIRONMENT", description, fixed, ""))
    elif x < rates.dirty_home + rates.untidy_home:
        environment = "UNTIDY"
    else:
        environment = "CLEAN"

    if h.registration == NEVER_REGISTERED:
        card = "NOT_CHECKED"  # only registered households have a policy card
    else:
        x = r.random()
        if x < rates.policy_card_missing:
            card, description = "MISSING", "脱贫攻坚明白卡掉落，未及时上墙"
        elif x < rates.policy_card_missing + rates.policy_card_outdated:
            card, description = "OUTDATED", "明白卡帮扶措施未更新"
        else:
            card, description = "POSTED", ""
        if description:
            fixed = r.random() < rates.fixed_on_spot_policy_card
            findings.append(
                {"kind": "POLICY_CARD", "description": description, "fixed_on_spot": fixed}
            )
            new_problems.append(("POLICY_CARD", description, fixed, ""))

    income = None
    actual = story.income_on(day)
    if plan.accounts:
        estimate = int(round(actual * r.uniform(0.95, 1.05), -1))
        income = (estimate, "DETAILED_ACCOUNTS", "算细账：务工、种养殖、转移性收入逐项核算")
        if r.random() < rates.income_update_from_accounts:
            campaign.income_update(story, plan, recorded, estimate)
    elif r.random() < 0.3:
        estimate = int(round(actual * r.uniform(0.85, 1.15), -1))
        income = (estimate, "HOUSEHOLD_STATEMENT", "户主口述")

    causes = sorted(
        {
            hd.cause
            for hd in story.hardships
            if hd.day <= day and (hd.resolved_day is None or hd.resolved_day > day)
        }
    )
    if h.members.labour + h.members.weak_labour == 0:
        causes.append("NO_LABOUR")

    five_visits = _five_visits(campaign, story, plan) if plan.kind == "five_visits" else None
    campaign.emit(
        rec.VISIT,
        rec.visit_record(
            event_id,
            h.household_id,
            plan.occurred_at,
            recorded,
            cadre_id=plan.cadre_id,
            visit_id=visit_id,
            problems=problems,
            findings=findings,
            living_environment=environment,
            policy_card=card,
            income=income,
            hardship_causes=causes,
            five_visits=five_visits,
            note=NOTES[plan.kind],
            geo=_geo(campaign.seed, h, r),
        ),
    )
    for n, (kind, description, fixed, latent) in enumerate(new_problems):
        rectified = _problem(
            campaign, story, plan, recorded, visit_id, n, kind, description, fixed, bool(latent)
        )
        if latent:
            story.latent_rectified[latent] = rectified


def _five_visits(campaign: CampaignPlan, story: Story, plan: VisitPlan) -> dict[str, Any]:
    h, r = story.household, story.rng
    day = plan.occurred_at.date()
    lost_job = any(hd.cause == "EPIDEMIC" and hd.day <= day for hd in story.hardships)
    seeking = 0
    if h.members.labour and (lost_job or r.random() < 0.15):
        seeking = r.randint(1, min(2, h.members.labour))
    unsold = None
    if (
        h.livelihood in ("FARMING", "LIVESTOCK", "MIXED")
        and r.random() < campaign.rates.unsold_produce
    ):
        item, unit, price = r.choice(UNSOLD)
        quantity = {"只": r.randint(30, 200), "头": r.randint(2, 12)}.get(
            unit, r.randint(200, 2_000)
        )
        unsold = {
            "item": item,
            "quantity": quantity,
            "unit": unit,
            "value_yuan": quantity * price,
        }
        if r.random() < campaign.rates.sales_aid:
            sold = at_hour(day + r.randint(3, 14) * ONE_DAY, 15)
            campaign.measure(
                story,
                "DELIVERED",
                "SALES_AID",
                "sales.produce-buyers",  # the catalogue's consumption aid
                sold,
                cadre_id=plan.cadre_id,
                quantities=[(item, quantity, unit)],
                amount_yuan=quantity * price,
                note="消费扶贫：联系机关食堂、农业企业帮助销售滞销农产品",
            )
    learning = h.members.students if day < campaign.calendar.schools_reopen else 0
    return {
        "family_impact": r.choice(
            ["家庭成员身体健康，防疫物资充足", "外出务工推迟，收入减少", "生活正常，无明显影响"]
        ),
        "members_seeking_work": seeking,
        "spring_farming_needs_help": h.livelihood in ("FARMING", "MIXED") and r.random() < 0.1,
        "unsold_produce": unsold,
        "students_learning_at_home": learning,
        "students_without_access": 1 if learning and r.random() < 0.08 else 0,
        "note": "",
    }


def _problem(
    campaign: CampaignPlan,
    story: Story,
    plan: VisitPlan,
    recorded: dt.datetime,
    visit_id: str,
    n: int,
    kind: str,
    description: str,
    fixed: bool,
    guarantee: bool,
) -> dt.date | None:
    """Problem-list steps for a problem found on a visit; returns the day it was rectified."""
    h, r, cal = story.household, story.rng, campaign.calendar
    problem_id = rec.derived_id(campaign.seed, visit_id, "problem", n)
    found_at = plan.occurred_at

    def step(name: str, occurred: dt.datetime, recorded_at: dt.datetime, **extra: Any) -> None:
        campaign.emit(
            rec.PROBLEM,
            rec.problem_record(
                campaign.next_id(story),
                h.household_id,
                occurred,
                recorded_at,
                source=extra.pop("source", "APP"),
                actor=extra.pop("actor", plan.cadre_id),
                problem_id=problem_id,
                step=name,
                kind=kind,
                description=extra.pop("description", description),
                responsible_cadre_id=extra.pop("responsible", None),
                due_date=extra.pop("due", None),
                visit_id=visit_id,
            ),
        )

    step("FOUND", found_at, recorded)
    if fixed:
        step("RECTIFIED", found_at, recorded, description=description + "（现场整改）")
        return found_at.date()
    assigned = at_hour(found_at.date() + ONE_DAY, 10)
    if guarantee:
        due = found_at.date() + r.randint(14, 30) * ONE_DAY
        if found_at.date() < cal.implementation_end:
            due = min(due, cal.implementation_end)
    else:
        due = found_at.date() + r.randint(1, 7) * ONE_DAY
    step(
        "TASK_ASSIGNED",
        assigned,
        max(assigned, recorded),
        source="OPERATOR",
        actor=f"township-office:{h.township}",
        description="整改任务：" + description,
        responsible=plan.cadre_id,
        due=due,
    )
    x = r.random()
    if x < campaign.rates.guarantee_rectified_in_time:
        done = max(assigned.date(), due - r.randint(0, 7) * ONE_DAY)
    elif x < campaign.rates.guarantee_rectified_in_time + campaign.rates.guarantee_rectified_late:
        done = due + r.randint(3, 20) * ONE_DAY
    else:
        return None
    if done > cal.end:
        return None
    occurred = at_hour(done, r.randint(9, 17), r.randrange(60))
    step(
        "RECTIFIED",
        occurred,
        max(campaign.synced(r, occurred), recorded),
        description=description + "（已整改）",
    )
    return done


def _geo(seed: int, h: Household, r: random.Random) -> tuple[float, float] | None:
    if r.random() < 0.3:
        return None  # no fix indoors
    base = rng_for(seed, "geo", h.household_id)
    lat = 30.15 + base.random() * 0.45 + r.uniform(-0.0005, 0.0005)
    lon = 107.15 + base.random() * 0.5 + r.uniform(-0.0005, 0.0005)
    return round(lat, 5), round(lon, 5)
