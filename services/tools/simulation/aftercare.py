"""Monitoring after the campaign, when the simulation runs past it (`CampaignCalendar.until`):
the review groups' answer to the 2021 policy switch, and risk elimination.

The monthly visits to monitored households and the income accounts they take go on by
themselves (visits.follow_ups runs to the calendar's end). What only people do is re-review: on
2021-01-01 the national policy has no general key farm households, and monitoring carries each
one over (to SUDDEN_HARDSHIP after an expenditure shock, otherwise to MARGINAL with a re-review
due within 15 days, services/monitoring/policies/national-2021.toml). The county then decides
the household's 2021 category itself, most within those 15 days, some late.

Households whose income has stood above the line, with working-age labour and a measure
received, go through the exit procedure once monitored six months (DOMAIN.md, risk
elimination): a home check with the income accounts proposes it, then village deliberation,
public notice, township review and the county's approval. Those proposed near the last day are
still in it when the run ends (in notice, or awaiting the township's or the county's decision).
"""

from __future__ import annotations

import datetime as dt

from services.tools.simulation import records as rec
from services.tools.simulation.campaign_plan import CampaignPlan
from services.tools.simulation.decisions import procedure_steps
from services.tools.simulation.story import ONE_DAY, Story, VisitPlan, at_hour

# national-2021's effective date (its policy file's `effective_from`).
SWITCH = dt.date(2021, 1, 1)
# The 2021 guidance's sudden severe hardship: from illness, disaster or accident.
SHOCKS = ("ILLNESS", "DISASTER", "ACCIDENT")
COUNTY_OFFICE = "county:poverty-office"
# Risk elimination (DOMAIN.md): monitored at least six months, income stably above the line.
MONITORED_MONTHS_DAYS = 183
# Share of the households that qualify whom the county takes through the exit procedure in the
# months simulated (not in the sources: most qualifying households were eliminated in 2021).
PROPOSED = 0.6
DELIVERED = ("DELIVERED", "COMPLETED")


def rereview_after_switch(campaign: CampaignPlan, story: Story, first_record: int) -> None:
    """The county's decision on a household monitored as GENERAL_KEY when 2021 begins.

    `first_record` is where the household's records start in `campaign.planned`: its category is
    the last INCLUDE among them (the campaign's, or monitoring taken over from before it).
    """
    if campaign.calendar.end < SWITCH or story.monitored_from is None:
        return
    if _category(campaign, story, first_record) != "GENERAL_KEY":
        return
    r = story.rng
    if r.random() < campaign.rates.decided_within_deadline:
        day = SWITCH + r.randint(3, 14) * ONE_DAY
    else:
        day = SWITCH + r.randint(16, 30) * ONE_DAY  # past the re-review's due day: overdue
    shocks = [h for h in story.hardships if h.cause in SHOCKS and _open_on(h.day, h.resolved_day)]
    if shocks:
        category = "SUDDEN_HARDSHIP"
        reason = f"2021年政策过渡复核：{shocks[0].description}，认定为突发严重困难户"
    else:
        category = "MARGINAL"
        reason = "2021年政策过渡复核：无突发严重困难，认定为边缘易致贫户"
    campaign.review_step(story, "INCLUDE", day, "COUNTY", "COUNTY", category, reason, COUNTY_OFFICE)


def _category(campaign: CampaignPlan, story: Story, first_record: int) -> str | None:
    household_id = story.household.household_id
    category = None
    for _, _, event_type, record in campaign.planned[first_record:]:
        if (
            event_type == rec.REVIEW
            and record["household_id"] == household_id
            and record["decision"] == "INCLUDE"
        ):
            category = record["category"]
    return category


def _open_on(started: dt.date, resolved: dt.date | None) -> bool:
    return _open_on_day(started, resolved, SWITCH)


def eliminate(campaign: CampaignPlan, story: Story, first_record: int) -> None:
    """The exit procedure for a monitored household that qualifies (see the module's text)."""
    cal = campaign.calendar
    if story.monitored_from is None or cal.until is None:
        return
    h, r = story.household, story.rng
    earliest = max(story.monitored_from + MONITORED_MONTHS_DAYS * ONE_DAY, cal.spot_check_end)
    if _category(campaign, story, first_record) == "GENERAL_KEY":
        earliest = max(earliest, SWITCH + 31 * ONE_DAY)  # after the county's re-review
    if earliest >= cal.end or not (h.members.labour or h.members.weak_labour):
        return
    line = campaign.parameters.income_line_yuan
    proposed = earliest + r.randint(1, max(1, (cal.end - earliest).days)) * ONE_DAY
    half_year_before = proposed - MONITORED_MONTHS_DAYS * ONE_DAY
    if min(story.income_on(half_year_before), story.income_on(proposed)) < line:
        return
    if any(_open_on_day(x.day, x.resolved_day, proposed) for x in story.hardships):
        return
    if not _received_a_measure(campaign, story, first_record) or r.random() >= PROPOSED:
        return
    # The home check that proposes it takes the income accounts (visits.walk_visits writes it).
    story.visits.append(
        VisitPlan(at_hour(proposed, r.randint(8, 16), r.randrange(60)), "follow_up",
                  campaign.visiting_cadre(story), True)
    )  # fmt: skip
    reason = f"入户核实：人均纯收入稳定高于{line}元，有劳动力，已享受帮扶措施"
    actor = f"review-group:{h.township}"
    campaign.review_step(
        story, "PROPOSE_ELIMINATION", proposed, "REVIEW_GROUP", "VILLAGE", None, reason, actor
    )
    notice_days = r.randint(5, 7)
    decided = proposed + r.randint(notice_days + 1, notice_days + 12) * ONE_DAY
    for decision, day, hour, body, outcome, notice, why in procedure_steps(
        proposed, decided, notice_days
    ):
        by = f"township-office:{h.township}" if body == "TOWNSHIP" else (
            f"village-committee:{h.township}/{h.village}"
        )  # fmt: skip
        campaign.review_step(story, decision, day, body, body, None, why, by, notice, hour, outcome)
    campaign.review_step(
        story, "ELIMINATE", decided, "COUNTY", "COUNTY", None,
        reason + "；经村民代表评议、公示无异议，乡镇审核、县级审定，标注风险消除", COUNTY_OFFICE,
    )  # fmt: skip


def _received_a_measure(campaign: CampaignPlan, story: Story, first_record: int) -> bool:
    household_id = story.household.household_id
    return any(
        event_type == rec.MEASURE
        and record["household_id"] == household_id
        and record["step"] in DELIVERED
        for _, _, event_type, record in campaign.planned[first_record:]
    )


def _open_on_day(started: dt.date, resolved: dt.date | None, day: dt.date) -> bool:
    return started <= day and (resolved is None or resolved > day)
