"""The households the seed describes by name, scripted with the dates and figures it gives: the
uremia case and her marginal neighbour (15-16 May 2020) and the chicken farmer (March-April)."""

from __future__ import annotations

import datetime as dt

from services.tools.simulation import records as rec
from services.tools.simulation.campaign_plan import CampaignPlan
from services.tools.simulation.circumstances import report_hardship
from services.tools.simulation.county import (
    CASE_CHICKEN_FARMER,
    CASE_MARGINAL_NEIGHBOUR,
    CASE_UREMIA,
    NEVER_REGISTERED,
)
from services.tools.simulation.decisions import measures
from services.tools.simulation.parameters import CST
from services.tools.simulation.story import Hardship, Story, VisitPlan, at_hour

NAMED_CASES = (CASE_UREMIA, CASE_MARGINAL_NEIGHBOUR, CASE_CHICKEN_FARMER)


def scripted_story(campaign: CampaignPlan, story: Story) -> None:
    """The named household's story as the seed tells it (one of `NAMED_CASES`)."""
    h = story.household
    story.income_growth = 1.0
    if h.case == CASE_UREMIA:
        campaign.measure(
            story,
            "DELIVERED",
            "INDUSTRY",
            "industry.fruit-seedlings",
            at_hour(dt.date(2019, 11, 12), 10),
            source="IMPORT",
            recorded_at=campaign.import_at,
            quantities=[("垫江晚柚苗", 80, "株")],
            note="产业扶贫：80根垫江晚柚苗，2021年挂果",
        )
        illness = Hardship(
            dt.date(2020, 4, 20),
            "ILLNESS",
            9_600,
            "DEPARTMENT_FEED",
            "health-insurance",
            "尿毒症长期透析，每月自付10%医疗费用",
        )
        story.hardships = [illness]
        report_hardship(campaign, story, illness)
        story.triggers.clear()
        campaign.measure(
            story,
            "DELIVERED",
            "INDUSTRY",
            "industry.poultry",
            at_hour(dt.date(2020, 5, 8), 10),
            cadre_id=h.cadre_id,
            quantities=[("鸭苗", 50, "只")],
            note="村上送去50只鸭苗",
        )
        story.income_growth = 0.8  # the illness costs; ducks bring a few thousand yuan later
        _visit(
            campaign,
            story,
            dt.datetime(2020, 5, 15, 10, 20, tzinfo=CST),
            5_100,
            ["ILLNESS"],
            "身患尿毒症干不了重活，靠低保为生，每月自付10%医疗费；"
            "80根晚柚苗2021年才挂果，50只鸭苗有几千元收入，返贫风险极高",
        )
        _review(
            campaign,
            story,
            "UNSTABLE_LIFTED",
            "脱贫户因病（尿毒症）存在返贫风险，当即列入脱贫监测户实时跟踪管理，上报镇扶贫办",
        )
    elif h.case == CASE_MARGINAL_NEIGHBOUR:
        _visit(
            campaign,
            story,
            dt.datetime(2020, 5, 16, 9, 40, tzinfo=CST),
            5_800,
            ["INCOME_FALL"],
            "收入略高于建档立卡标准，存在致贫风险",
        )
        _review(
            campaign,
            story,
            "MARGINAL",
            "非建档立卡户收入偏低，存在致贫风险，当即列入边缘户实时跟踪管理，上报镇扶贫办",
        )
    elif h.case == CASE_CHICKEN_FARMER:
        _chicken_farmer(campaign, story)


def _visit(
    campaign: CampaignPlan,
    story: Story,
    occurred: dt.datetime,
    income: int,
    causes: list[str],
    note: str,
) -> None:
    h = story.household
    cadre = h.cadre_id or campaign.visiting_cadre(story)
    campaign.emit(
        rec.VISIT,
        rec.visit_record(
            campaign.next_id(story),
            h.household_id,
            occurred,
            occurred + dt.timedelta(hours=11),  # synced that night at the village office
            cadre_id=cadre,
            visit_id=rec.derived_id(campaign.seed, h.household_id, "visit", occurred.isoformat()),
            problems={},
            findings=[],
            living_environment="CLEAN",
            policy_card="NOT_CHECKED" if h.registration == NEVER_REGISTERED else "POSTED",
            income=(income, "DETAILED_ACCOUNTS", "算细账：" + note),
            hardship_causes=causes,
            five_visits=None,
            note=note,
            geo=(30.4121, 107.4517),
        ),
    )
    plan = VisitPlan(occurred, "scripted", cadre, True)
    story.visits.append(plan)
    campaign.income_update(story, plan, occurred + dt.timedelta(hours=11), income)


def _review(campaign: CampaignPlan, story: Story, category: str, reason: str) -> None:
    day = dt.date(2020, 5, 16)
    actor = "village:水井村"
    campaign.review_step(
        story, "START_VERIFICATION", day, "VILLAGE", "VILLAGE", None, reason, actor, hour=17
    )
    # seed: put under monitoring the same day. The procedure's deliberation, 5-day notice and
    # township review cannot fit in a day, so the county approves it as an exception with its
    # reason (DOMAIN.md: county approval; the fold keeps it on record as procedure_exception).
    campaign.review_step(
        story,
        "INCLUDE",
        day,
        "COUNTY",
        "COUNTY",
        category,
        reason + "；县级特批当天纳入，事后补评议公示",
        "county:poverty-office",
        hour=21,
        exception=True,
    )
    story.monitored_from = day
    measures(campaign, story, day)


def _chicken_farmer(campaign: CampaignPlan, story: Story) -> None:
    h = story.household
    occurred = dt.datetime(2020, 3, 27, 15, 10, tzinfo=CST)
    recorded = occurred + dt.timedelta(days=2, hours=4)  # the phone was offline
    hardship = Hardship(
        dt.date(2020, 3, 27), "EPIDEMIC", 0, "CADRE", None, "疫情影响，100多只土鸡出栏后滞销"
    )
    hardship.resolved_day = dt.date(2020, 4, 9)
    story.hardships = [hardship]
    hardship_id = rec.derived_id(campaign.seed, h.household_id, "hardship", "EPIDEMIC")
    for resolved, at in ((False, occurred), (True, at_hour(hardship.resolved_day, 18))):
        campaign.emit(
            rec.HARDSHIP,
            rec.hardship_record(
                campaign.next_id(story),
                h.household_id,
                at,
                at + (dt.timedelta(days=2, hours=4) if not resolved else dt.timedelta(hours=2)),
                source="APP",
                actor=h.cadre_id,
                hardship_id=hardship_id,
                cause="EPIDEMIC",
                rigid_expenditure_yuan=0,
                origin="CADRE",
                department=None,
                resolved=resolved,
                description=hardship.description + ("；已帮助全部售出" if resolved else ""),
            ),
        )
    campaign.emit(
        rec.VISIT,
        rec.visit_record(
            campaign.next_id(story),
            h.household_id,
            occurred,
            recorded,
            cadre_id=h.cadre_id,
            visit_id=rec.derived_id(campaign.seed, h.household_id, "visit", occurred.isoformat()),
            problems={},
            findings=[],
            living_environment="CLEAN",
            policy_card="POSTED",
            income=None,
            hardship_causes=["EPIDEMIC"],
            five_visits={
                "family_impact": "收入主要靠畜禽养殖，土鸡卖不出去将面临返贫风险",
                "members_seeking_work": 0,
                "spring_farming_needs_help": False,
                "unsold_produce": {
                    "item": "土鸡",
                    "quantity": 120,
                    "unit": "只",
                    "value_yuan": 10_800,
                },
                "students_learning_at_home": 1,
                "students_without_access": 0,
                "note": "养了大半年的100多只土鸡到了出栏时候，受疫情影响一直找不到买家",
            },
            note="五访五帮：访农产品积压情况，帮助解决滞销难题",
            geo=(30.3862, 107.4401),
        ),
    )
    story.visits.append(VisitPlan(occurred, "scripted", h.cadre_id, False))
    campaign.measure(
        story,
        "DELIVERED",
        "SALES_AID",
        "sales.produce-buyers",
        at_hour(dt.date(2020, 4, 9), 16),
        cadre_id=h.cadre_id,
        quantities=[("土鸡", 120, "只")],
        amount_yuan=10_800,
        note="帮扶干部发动朋友圈、亲友，联系镇伙食团和农业企业，100多只鸡顺利售出",
    )
    campaign.measure(
        story,
        "DELIVERED",
        "INDUSTRY",
        "industry.poultry",
        at_hour(dt.date(2020, 4, 24), 10),
        cadre_id=h.cadre_id,
        quantities=[("鸡苗", 300, "只")],
        note="在帮扶干部支持下扩大养殖规模，开垦屋后竹林养殖300只鸡",
    )
