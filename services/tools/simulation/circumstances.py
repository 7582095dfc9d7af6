"""What is true of a household during the campaign, drawn at random: latent guarantee problems a
visit can uncover, hardships (department feeds, self-reports), changes to the household table."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from typing import Any

from services.tools.simulation import records as rec
from services.tools.simulation.campaign_plan import CampaignPlan
from services.tools.simulation.county import CASE_NOT_LIFTED, LIFTED, NEVER_REGISTERED, NOT_LIFTED
from services.tools.simulation.people import DISABILITY_GRADES, with_baby, without
from services.tools.simulation.story import ONE_DAY, Hardship, Story, at_hour

# Latent guarantee problems a first visit can uncover: check -> (problem kind, description).
LATENT = {
    "housing": ("HOUSING", "住房安全隐患：墙体开裂，需鉴定改造"),
    "water": ("WATER", "饮水不安全：水源季节性断供，水质未检测"),
    "education": ("EDUCATION", "义务教育阶段子女辍学在家"),
    "medical": ("MEDICAL", "家庭成员未参加城乡居民医保"),
}
FEEDS = {
    "ILLNESS": ("health-insurance", "住院医疗费用个人自付部分较大"),
    "EPIDEMIC": ("human-resources", "受新冠肺炎疫情影响务工人员未能返岗，收入大幅减少"),
    "ACCIDENT": ("civil-affairs", "家庭成员意外受伤，医疗及护理支出较大"),
    "DISABILITY": ("disabled-persons-federation", "家庭成员新增残疾，需长期护理"),
    "DISASTER": ("emergency-management", "暴雨洪灾导致房屋和农作物受损"),
}


def draw_latent(campaign: CampaignPlan, story: Story) -> None:
    """Which guarantee problems the household has, waiting for a visit to find them."""
    h, r, rates = story.household, story.rng, campaign.rates
    draws = {
        "housing": rates.unsafe_housing,
        "water": rates.unsafe_water,
        "education": rates.dropout if h.members.students else 0.0,
        "medical": rates.uninsured,
    }
    for check, p in draws.items():
        if r.random() < p:
            story.latent[check] = LATENT[check]


def draw_hardships(campaign: CampaignPlan, story: Story) -> None:
    """The hardships that befall the household, each reported (and some resolved) as it would be."""
    h, r, rates = story.household, story.rng, campaign.rates
    registered = h.registration != NEVER_REGISTERED
    campaign_days = campaign.campaign_days
    found: list[Hardship] = []
    if r.random() < (rates.illness_lifted if registered else rates.illness_other):
        rigid = _round100(r.lognormvariate(math.log(15_000), 0.8))
        illness = _feed(r.choice(campaign_days), "ILLNESS", rigid)
        illness.diagnosis = _diagnosed_illness(story)
        found.append(illness)
    if h.livelihood in ("MIGRANT_WORK", "MIXED") and r.random() < rates.epidemic_job_loss:
        hardship = _feed(r.choice(campaign.deployment_days), "EPIDEMIC", 0)
        hardship.income_factor = r.uniform(0.5, 0.85)  # below 0.7 is a sharp fall
        found.append(hardship)
    if r.random() < rates.accident:
        rigid = _round100(r.lognormvariate(math.log(8_000), 0.7))
        found.append(_feed(r.choice(campaign_days), "ACCIDENT", rigid))
    if r.random() < rates.disability:
        disability = _feed(r.choice(campaign_days), "DISABILITY", r.randint(50, 200) * 100)
        disability.diagnosis = _diagnosed_disability(story)
        found.append(disability)
    if h.township in campaign.disaster_day and r.random() < rates.disaster_household:
        rigid = r.randint(30, 400) * 100
        found.append(_feed(campaign.disaster_day[h.township], "DISASTER", rigid))
    if r.random() < rates.self_report:
        cause = r.choice(["ILLNESS", "SCHOOLING", "ACCIDENT", "OTHER"])
        found.append(
            Hardship(
                r.choice(campaign_days),
                cause,
                _round100(r.lognormvariate(math.log(6_000), 0.6)),
                "SELF_REPORT",
                None,
                "农户自主申报：家庭刚性支出增加",
            )
        )
    for hardship in found:
        if r.random() < rates.hardship_resolved:
            hardship.resolved_day = hardship.day + r.randint(10, 40) * ONE_DAY
        report_hardship(campaign, story, hardship)
    story.hardships = found


def _diagnosed_illness(story: Story) -> tuple[str, str, int | None] | None:
    """The member the health-insurance feed names: one already ill, else an adult (older ones
    more often), seriously ill about two times in five."""
    people, r = story.household.people, story.rng
    if not people:
        return None
    ill = [p for p in people if p.health in ("SERIOUS_ILLNESS", "CHRONIC_ILLNESS")]
    if ill:
        return (ill[0].member_id, ill[0].health, None)
    day = dt.date(2020, 6, 1)
    adults = [p for p in people if p.age_on(day) >= 16] or list(people)
    member = r.choices(adults, [1 + p.age_on(day) / 20 for p in adults])[0]
    condition = "SERIOUS_ILLNESS" if r.random() < 0.4 else "CHRONIC_ILLNESS"
    return (member.member_id, condition, None)


def _diagnosed_disability(story: Story) -> tuple[str, str, int | None] | None:
    """The member the disabled persons' federation newly certifies, with a grade."""
    people, r = story.household.people, story.rng
    if not people:
        return None
    member = r.choice(people)
    return (member.member_id, "DISABILITY", r.choices(*DISABILITY_GRADES)[0])


EXPENSE_KINDS = {
    "ILLNESS": "MEDICAL",
    "DISABILITY": "MEDICAL",  # care and rehabilitation
    "ACCIDENT": "ACCIDENT",
    "DISASTER": "DISASTER_LOSS",
    "SCHOOLING": "EDUCATION",
}


def _feed(day: dt.date, cause: str, rigid: int) -> Hardship:
    department, description = FEEDS[cause]
    return Hardship(day, cause, rigid, "DEPARTMENT_FEED", department, description)


def report_hardship(
    campaign: CampaignPlan, story: Story, hardship: Hardship, key: str = ""
) -> None:
    """The hardship's report (and its resolution, if it comes in the campaign); a cost above the
    year's family income, or a sharp fall in income, is a trigger a review group may take up.
    `key` tells apart hardships of one cause (those after the campaign, `entry`)."""
    h, r = story.household, story.rng
    parts = (h.household_id, "hardship", hardship.cause, *((key,) if key else ()))
    hardship_id = rec.derived_id(campaign.seed, *parts)
    if hardship.origin == "DEPARTMENT_FEED":
        source, actor = "FEED", f"feed:{hardship.department}"
        occurred = at_hour(hardship.day, r.randint(8, 17), r.randrange(60))
        # Departments push daily batches: the next evenings, not the same instant.
        recorded = at_hour(hardship.day + r.randint(1, 5) * ONE_DAY, 22)
    else:
        source, actor = "OPERATOR", f"township-office:{h.township}"
        occurred = at_hour(hardship.day, r.randint(8, 17), r.randrange(60))
        recorded = occurred + dt.timedelta(minutes=r.randint(5, 240))
    annual = story.income_on(hardship.day) * h.members.count
    if hardship.rigid > annual or hardship.income_factor < 0.7:
        story.triggers.append((recorded, _trigger_reason(hardship, annual)))
    campaign.emit(
        rec.HARDSHIP,
        rec.hardship_record(
            campaign.next_id(story),
            h.household_id,
            occurred,
            recorded,
            source=source,
            actor=actor,
            hardship_id=hardship_id,
            cause=hardship.cause,
            rigid_expenditure_yuan=hardship.rigid,
            origin=hardship.origin,
            department=hardship.department,
            resolved=False,
            description=hardship.description,
            expense_kind=EXPENSE_KINDS.get(hardship.cause, "OTHER"),
            diagnosis=hardship.diagnosis,
        ),
    )
    if hardship.resolved_day and hardship.resolved_day <= campaign.calendar.end:
        occurred = at_hour(hardship.resolved_day, 10)
        campaign.emit(
            rec.HARDSHIP,
            rec.hardship_record(
                campaign.next_id(story),
                h.household_id,
                occurred,
                max(occurred, recorded) + dt.timedelta(hours=r.randint(1, 30)),
                source=source,
                actor=actor,
                hardship_id=hardship_id,
                cause=hardship.cause,
                rigid_expenditure_yuan=hardship.rigid,
                origin=hardship.origin,
                department=hardship.department,
                resolved=True,
                description=hardship.description + "；已通过医保报销、救助或保险解决",
                expense_kind=EXPENSE_KINDS.get(hardship.cause, "OTHER"),
                diagnosis=hardship.diagnosis,
            ),
        )


def _trigger_reason(hardship: Hardship, annual: int) -> str:
    if hardship.income_factor < 1:
        return f"部门预警：{hardship.description}"
    return f"部门预警：{hardship.description}，刚性支出{hardship.rigid}元超过上年家庭收入{annual}元"


def _round100(x: float) -> int:
    return max(100, int(round(x, -2)))


# ---- the household table ---------------------------------------------------------------------


def registry_changes(campaign: CampaignPlan, story: Story) -> None:
    """Changes to the household table: lifting, corrections, members born, married, gone."""
    h, r, rates = story.household, story.rng, campaign.rates
    days = campaign.implementation_days
    office = f"township-office:{h.township}"
    if h.case == CASE_NOT_LIFTED or (h.registration == NOT_LIFTED and r.random() < 0.5):
        day = dt.date(2020, 6, 20) if h.case == CASE_NOT_LIFTED else r.choice(days)
        _registry(
            campaign,
            story,
            day,
            "STATUS_CHANGE",
            "county:poverty-office",
            {"registration": LIFTED, "lifted_year": 2020},
        )
    if r.random() < rates.registry_correction:
        head_year = h.head_birth_year + r.choice([-1, 1])
        overrides: dict[str, Any] = r.choice(
            [
                {"housing": "SAFE", "water": "SAFE"},
                {"head_birth_year": head_year, "people": _head_born(h.people, head_year)},
                {"main_livelihood": r.choice(["MIGRANT_WORK", "LOCAL_WAGES", "MIXED"])},
            ]
        )
        _registry(campaign, story, r.choice(days), "CORRECTION", office, overrides)
    if r.random() < rates.membership_change:
        day = r.choice(days)
        if len(h.people) > 1 and r.random() < 0.5:  # a death or a member moving out
            people = without(h.people, r)
        else:  # a birth
            people = with_baby(h.people, day, r)
        _registry(campaign, story, day, "MEMBERSHIP_CHANGE", office, {"people": people})


def _head_born(people: tuple, year: int) -> tuple:
    return tuple(replace(p, birth_year=year) if p.relation == "HEAD" else p for p in people)


def _registry(
    campaign: CampaignPlan, story: Story, day: dt.date, change: str, actor: str, overrides: dict
) -> None:
    occurred = at_hour(day, story.rng.randint(9, 17))
    campaign.emit(
        rec.REGISTRY,
        rec.registry_record(
            campaign.next_id(story),
            story.household,
            occurred,
            occurred + dt.timedelta(minutes=story.rng.randint(1, 120)),
            change=change,
            source="OPERATOR",
            actor=actor,
            overrides=overrides,
        ),
    )
