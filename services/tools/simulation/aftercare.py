"""Monitoring after the campaign, when the simulation runs past it (`CampaignCalendar.until`):
the review groups' answer to the 2021 policy switch.

The monthly visits to monitored households and the income accounts they take go on by
themselves (visits.follow_ups runs to the calendar's end). What only people do is re-review: on
2021-01-01 the national policy has no general key farm households, and monitoring carries each
one over (to SUDDEN_HARDSHIP after an expenditure shock, otherwise to MARGINAL with a re-review
due within 15 days, services/monitoring/policies/national-2021.toml). The county then decides
the household's 2021 category itself, most within those 15 days, some late.
"""

from __future__ import annotations

import datetime as dt

from services.tools.simulation import records as rec
from services.tools.simulation.campaign_plan import CampaignPlan
from services.tools.simulation.story import ONE_DAY, Story

# national-2021's effective date (its policy file's `effective_from`).
SWITCH = dt.date(2021, 1, 1)
# The 2021 guidance's sudden severe hardship: from illness, disaster or accident.
SHOCKS = ("ILLNESS", "DISASTER", "ACCIDENT")
COUNTY_OFFICE = "county:poverty-office"


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
    return started <= SWITCH and (resolved is None or resolved > SWITCH)
