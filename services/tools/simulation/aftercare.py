"""Monitoring after the campaign, when the simulation runs past it (`CampaignCalendar.until`):
the review groups' answer to the 2021 policy switch, and risk elimination.

The monthly visits to monitored households and the income accounts they take go on by
themselves (visits.follow_ups runs to the calendar's end). What only people do is re-review: on
2021-01-01 the national policy has no general key farm households, and monitoring carries each
one over (to SUDDEN_HARDSHIP after an expenditure shock, otherwise to MARGINAL with a re-review
due within 15 days, services/monitoring/policies/national-2021.toml). The county then decides
the household's 2021 category itself, most within those 15 days, some late.

Households that meet the conditions of risk elimination (DOMAIN.md: income stably above the
line, expenditure shocks resolved, guarantees secured, monitored six months, a measure received,
working-age labour) go through the exit procedure: a home check with the income accounts
proposes it, then village deliberation, public notice, township review and the county's
approval. Those proposed near the last day are still in it when the run ends.
"""

from __future__ import annotations

import datetime as dt
import functools

from services.monitoring.adapters.avro_translation import event_from
from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.domain.fold import fold
from services.monitoring.domain.policy import PolicyBook
from services.monitoring.domain.state import HouseholdState
from services.monitoring.domain.workflow import elimination_check, stage_at
from services.tools.simulation import records as rec
from services.tools.simulation.campaign_plan import CampaignPlan
from services.tools.simulation.decisions import procedure_steps
from services.tools.simulation.parameters import CST
from services.tools.simulation.story import ONE_DAY, Story, at_hour

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
# What monitoring folds (the cadre registry is not a household's).
FOLDED = (rec.REGISTRY, rec.VISIT, rec.INCOME, rec.HARDSHIP, rec.REVIEW, rec.MEASURE, rec.PROBLEM)


@functools.cache
def shipped_policies() -> PolicyBook:
    """The shipped policies, as the monitoring worker loads them by default: read on first use,
    so importing the simulation reads no file."""
    return load_policies()


def rereview_after_switch(campaign: CampaignPlan, story: Story, first_record: int) -> None:
    """The county's decision on a household monitored as GENERAL_KEY when 2021 begins.

    `first_record` is where the household's records start in `campaign.planned`: its category is
    the last INCLUDE among them (the campaign's, or monitoring taken over from before it).
    """
    if campaign.calendar.end < SWITCH or story.monitored_from is None:
        return
    if _categories(campaign, story, first_record)[-1:] != ["GENERAL_KEY"]:
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


def _categories(campaign: CampaignPlan, story: Story, first_record: int) -> list[str | None]:
    """The categories the household was included with, in the order planned."""
    household_id = story.household.household_id
    return [
        record["category"]
        for _, _, event_type, record in campaign.planned[first_record:]
        if event_type == rec.REVIEW
        and record["household_id"] == household_id
        and record["decision"] == "INCLUDE"
    ]


def _open_on(started: dt.date, resolved: dt.date | None) -> bool:
    return _open_on_day(started, resolved, SWITCH)


def eliminate(campaign: CampaignPlan, story: Story, first_record: int) -> None:
    """The exit procedure for a monitored household that qualifies, drawn after its visits: the
    review group proposes it on a visit that took the income accounts, when monitoring's own
    elimination check (the policy in force that day) finds every condition met — as a group
    reading the system before its home check would — and the county approves it if they still
    hold on its day (otherwise it keeps monitoring the household)."""
    cal = campaign.calendar
    if story.monitored_from is None or cal.until is None:
        return
    h, r = story.household, story.rng
    earliest = max(story.monitored_from + MONITORED_MONTHS_DAYS * ONE_DAY, cal.spot_check_end)
    if "GENERAL_KEY" in _categories(campaign, story, first_record):
        earliest = max(earliest, SWITCH + 31 * ONE_DAY)  # after the county's re-review
    checks = sorted(
        v.occurred_at for v in story.visits if v.accounts and earliest < v.occurred_at.date()
    )
    if not checks or r.random() >= PROPOSED:
        return
    state = _folded(campaign, story, first_record)
    proposed = next((at for at in checks if _allowed(state, at)), None)
    if proposed is None:
        return
    line = campaign.parameters.income_line_yuan
    reason = f"入户核实：人均纯收入稳定高于{line}元，有劳动力，已享受帮扶措施，两不愁三保障无问题"
    day = proposed.astimezone(CST).date()
    campaign.review_step(
        story, "PROPOSE_ELIMINATION", day, "REVIEW_GROUP", "TOWNSHIP", None, reason,
        f"review-group:{h.township}",
    )  # fmt: skip
    notice_days = r.randint(5, 7)
    decided = day + r.randint(notice_days + 1, notice_days + 12) * ONE_DAY
    for decision, on, hour, body, outcome, notice, why in procedure_steps(
        day, decided, notice_days
    ):
        by = f"township-office:{h.township}" if body == "TOWNSHIP" else (
            f"village-committee:{h.township}/{h.village}"
        )  # fmt: skip
        campaign.review_step(story, decision, on, body, body, None, why, by, notice, hour, outcome)
    if _allowed(state, at_hour(decided, 21, 30)):
        campaign.review_step(
            story, "ELIMINATE", decided, "COUNTY", "COUNTY", None,
            reason + "；经评议、公示无异议，乡镇审核、县级审定，标注风险消除", COUNTY_OFFICE,
        )  # fmt: skip
    else:
        campaign.review_step(
            story, "KEEP_MONITORING", decided, "COUNTY", "COUNTY", None,
            "县级审定：风险消除条件不再全部满足，继续监测", COUNTY_OFFICE,
        )  # fmt: skip


def _folded(campaign: CampaignPlan, story: Story, first_record: int) -> HouseholdState:
    """The household's state from its records planned so far, by monitoring's own fold."""
    household_id = story.household.household_id
    events = [
        event_from(event_type, record)
        for _, _, event_type, record in campaign.planned[first_record:]
        if event_type in FOLDED and record.get("household_id") == household_id
    ]
    return fold(household_id, events)


def _allowed(state: HouseholdState, at: dt.datetime) -> bool:
    policy = shipped_policies().for_date(at.date())
    stage = stage_at(state, policy, at)
    if stage.status != "MONITORED":
        return False
    return elimination_check(state, policy, at, stage.included_at).allowed


def _open_on_day(started: dt.date, resolved: dt.date | None, day: dt.date) -> bool:
    return started <= day and (resolved is None or resolved > day)
