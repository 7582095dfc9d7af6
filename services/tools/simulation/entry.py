"""The entry procedure after the campaign, when the simulation runs past it
(`CampaignCalendar.until`): the county's answer to the households monitoring flags.

Risks do not stop with the campaign: the departments' feeds go on reporting large medical
bills, accidents and new disabilities, and households apply themselves (`later_hardships`).
Whatever monitoring shows as FLAGGED after the campaign — found by monitoring's own fold and
assessment with the policy in force that day, walked as the worker walks a household (at each
event and each deadline), so the simulation's people react to what the system would show them
— the county takes up (`take_up_flags`): the review group starts verification within days of
the flag being visible (the household's own APPLY when it self-reported), the backlog the
campaign left flagged in the weeks after it. The entry procedure then runs as the policy
defines it (DOMAIN.md; services/monitoring/policies/*.toml `[procedure]`): a home check, village
deliberation (a few RETURNED, deliberated again), a public notice of 5–7 days (an occasional
objection: the township returns it to a new notice, or the county rejects), the township's
home check and review, the county's INCLUDE — most within the 15 days from the flag, some late.
A household whose risk no longer holds when verified (the bill reimbursed, the income found
above the line) the county REJECTs. Included households are visited monthly and receive
measures, as during the campaign. Procedures started near the last day are still under way
when the run ends: in notice, awaiting the township's review or the county's approval.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math

from services.monitoring.adapters.avro_translation import event_from
from services.monitoring.domain.assess import Assessment, assess, next_deadline
from services.monitoring.domain.fold import fold
from services.monitoring.domain.reasons import RISK_CODES
from services.monitoring.domain.state import HouseholdState
from services.tools.simulation import records as rec
from services.tools.simulation.aftercare import (
    COUNTY_OFFICE,
    FOLDED,
    SWITCH,
    rereview_after_switch,
    shipped_policies,
)
from services.tools.simulation.campaign_plan import CampaignPlan
from services.tools.simulation.circumstances import report_hardship
from services.tools.simulation.county import NEVER_REGISTERED, rng_for
from services.tools.simulation.decisions import measures
from services.tools.simulation.parameters import CST
from services.tools.simulation.story import ONE_DAY, Hardship, Story, VisitPlan, at_hour
from services.tools.simulation.visits import follow_ups, visit

# Hardships after the campaign, per household and per campaign-length of days (the campaign's
# own rates, services/tools/simulation/parameters.py; the epidemic and the disaster were the
# campaign's): (cause, feed, description, median rigid expenditure).
LATER = (
    ("ILLNESS", "health-insurance", "住院医疗费用个人自付部分较大", 15_000),
    ("ACCIDENT", "civil-affairs", "家庭成员意外受伤，医疗及护理支出较大", 8_000),
    ("DISABILITY", "disabled-persons-federation", "家庭成员新增残疾，需长期护理", 10_000),
)
# At most this many review cycles after the campaign per household (a household rejected is
# flagged again only by a new risk; months of simulation rarely see more than two).
CYCLES = 3
# Shares of the entry procedure's turns (not in the sources; plausible for a county office).
DELIBERATION_RETURNED = 0.08  # the village deliberation sends it back to the home check
OBJECTION = 0.06  # a villager objects during the notice
OBJECTION_HOLDS = 0.5  # of objections: the county rejects; otherwise a new notice
# Where the household is out of the workflow, so the rules' signal alone may flag it.
CLOSED = ("NOT_FLAGGED", "REJECTED", "ELIMINATED")
# The backlog the campaign left flagged is taken up within these days after it ends.
BACKLOG_DAYS = 21


def later_hardships(campaign: CampaignPlan, story: Story) -> None:
    """Department feeds and self-reports after the campaign, at the campaign's rates."""
    cal, h, rates = campaign.calendar, story.household, campaign.rates
    if cal.until is None:
        return
    r = rng_for(campaign.seed, "later-hardships", h.household_id)
    days = cal.days(cal.spot_check_end + ONE_DAY, cal.end)
    spans = len(days) / len(campaign.campaign_days)  # campaign-lengths of days after it
    registered = h.registration != NEVER_REGISTERED
    chances = {
        "ILLNESS": rates.illness_lifted if registered else rates.illness_other,
        "ACCIDENT": rates.accident,
        "DISABILITY": rates.disability,
    }
    found: list[Hardship] = []
    for cause, department, description, median in LATER:
        if r.random() < 1 - (1 - chances[cause]) ** spans:
            rigid = max(100, int(round(r.lognormvariate(math.log(median), 0.8), -2)))
            found.append(Hardship(r.choice(days), cause, rigid, "DEPARTMENT_FEED", department,
                                  description))  # fmt: skip
    if r.random() < 1 - (1 - rates.self_report) ** spans:
        rigid = max(100, int(round(r.lognormvariate(math.log(6_000), 0.6), -2)))
        cause = r.choice(["ILLNESS", "SCHOOLING", "ACCIDENT", "OTHER"])
        found.append(Hardship(r.choice(days), cause, rigid, "SELF_REPORT", None,
                              "农户自主申报：家庭刚性支出增加"))  # fmt: skip
    for n, hardship in enumerate(sorted(found, key=lambda x: x.day)):
        if r.random() < rates.hardship_resolved:
            hardship.resolved_day = hardship.day + r.randint(10, 40) * ONE_DAY
        report_hardship(campaign, story, hardship, key=f"later-{n}")
        story.hardships.append(hardship)


class _Household:
    """The story's records planned so far, folded as monitoring folds them."""

    def __init__(self, campaign: CampaignPlan, story: Story, first_record: int):
        self.campaign, self.story, self.first = campaign, story, first_record

    def refresh(self) -> None:
        household_id = self.story.household.household_id
        mine = [
            (event_type, record)
            for _, _, event_type, record in self.campaign.planned[self.first :]
            if event_type in FOLDED and record.get("household_id") == household_id
        ]
        self.state: HouseholdState = fold(household_id, [event_from(t, r) for t, r in mine])
        self.recorded = {r["event_id"]: r["recorded_at"] for _, r in mine}
        self.origins = {r["event_id"]: r.get("origin") for t, r in mine if t == rec.HARDSHIP}
        self.moments = sorted({r["occurred_at"] for _, r in mine})
        self.decided = sorted({r["occurred_at"] for t, r in mine if t == rec.REVIEW})

    def assess(self, at: dt.datetime) -> Assessment:
        return assess(self.state, shipped_policies().for_date(at.astimezone(CST).date()), at)

    def first_flag(
        self, start: dt.datetime, end: dt.datetime
    ) -> tuple[dt.datetime, Assessment] | None:
        """The first moment from `start` monitoring shows the household FLAGGED and its evidence
        is recorded (a review group sees it then), walked as the worker re-assesses: at each
        event and each deadline; None past `end`. A household under review or monitoring is
        flagged only after a decision closes its cycle: walked from decision to decision."""
        at = start
        while at <= end:
            a = self.assess(at)
            if a.workflow == "FLAGGED":
                evidence = [self.recorded[e] for x in a.reasons for e in x.event_ids
                            if e in self.recorded]  # fmt: skip
                return max([at, *evidence]), a
            if a.workflow in CLOSED:
                moments = self.moments
                policy = shipped_policies().for_date(at.astimezone(CST).date())
                deadline = next_deadline(a, policy, self.state)
            else:
                moments, deadline = self.decided, None
            ahead = moments[bisect.bisect_right(moments, at) :][:1]
            if deadline is not None:
                ahead.append(dt.datetime.combine(deadline, dt.time(), CST))
            if not ahead:
                return None
            at = min(ahead)
        return None

    def applied(self, a: Assessment) -> bool:
        """Whether the flag comes from the household's own report (it applies itself)."""
        return any(self.origins.get(e) == "SELF_REPORT" for x in a.reasons for e in x.event_ids)


def take_up_flags(campaign: CampaignPlan, story: Story, first_record: int) -> None:
    """The entry procedure for each flag monitoring raises (or still shows) after the campaign."""
    cal = campaign.calendar
    if cal.until is None:
        return
    household = _Household(campaign, story, first_record)
    end = at_hour(cal.end, 23, 59)
    cursor = at_hour(cal.spot_check_end + ONE_DAY, 0)
    for _ in range(CYCLES):
        household.refresh()
        found = household.first_flag(cursor, end)
        if found is None:
            return
        seen, flag = found
        cursor = _procedure(campaign, story, household, seen, flag, backlog=seen == cursor)
        if cursor > end:
            return


def _procedure(
    campaign: CampaignPlan,
    story: Story,
    household: _Household,
    seen: dt.datetime,
    flag: Assessment,
    backlog: bool,
) -> dt.datetime:
    """One flag's procedure from the moment the county sees it; returns when it was decided."""
    h, r, rates = story.household, story.rng, campaign.rates
    township_group = f"review-group:{h.township}"
    village = f"village-committee:{h.township}/{h.village}"
    reason = _reason(flag)
    day = seen.astimezone(CST).date()
    opened = day + r.randint(1, BACKLOG_DAYS) * ONE_DAY if backlog else day + r.choice(
        [0, 1, 1, 2]
    ) * ONE_DAY  # fmt: skip
    late = r.random() >= rates.decided_within_deadline
    if household.applied(flag):
        point = f"village-service-point:{h.township}/{h.village}"
        campaign.review_step(story, "APPLY", opened, "VILLAGE", "VILLAGE", None,
                             "农户自主申请纳入监测：" + reason, point, hour=11)  # fmt: skip
    else:
        campaign.review_step(story, "START_VERIFICATION", opened, "REVIEW_GROUP", "TOWNSHIP",
                             None, reason, township_group)  # fmt: skip
    checked = opened + r.randint(1, 2) * ONE_DAY
    visit(campaign, story, _plan(campaign, story, checked, "verification"))
    household.refresh()
    verified = household.assess(at_hour(checked, 20))
    policy = shipped_policies().for_date(checked)
    if not policy.flags(verified.level) or r.random() >= rates.included:
        decided = checked + r.randint(1, 3) * ONE_DAY
        campaign.review_step(story, "REJECT", decided, "COUNTY", "COUNTY", None,
                             "入户核实后风险已消除或不符合纳入条件，乡镇审核、县级审定不纳入监测",
                             COUNTY_OFFICE)  # fmt: skip
        return at_hour(decided, 22)
    deliberated = checked + r.randint(0, 1) * ONE_DAY
    if r.random() < DELIBERATION_RETURNED:
        campaign.review_step(story, "VILLAGE_DELIBERATION", deliberated, "VILLAGE", "VILLAGE",
                             None, "村民代表评议：收入和支出情况需补充核实", village, hour=20,
                             outcome="RETURNED")  # fmt: skip
        deliberated += r.randint(2, 4) * ONE_DAY
    campaign.review_step(story, "VILLAGE_DELIBERATION", deliberated, "VILLAGE", "VILLAGE", None,
                         "村民代表评议通过", village, hour=20, outcome="PASSED")  # fmt: skip
    ends = _notice(campaign, story, deliberated, village)
    if r.random() < OBJECTION:
        objected = ends - r.randint(0, 3) * ONE_DAY
        campaign.review_step(story, "OBJECTION", objected, "VILLAGE", "VILLAGE", None,
                             "公示期间群众反映该户有家庭成员在城镇购房，需核实", village,
                             hour=16)  # fmt: skip
        reviewed = ends + r.randint(1, 2) * ONE_DAY
        if r.random() < OBJECTION_HOLDS:
            campaign.review_step(story, "REJECT", reviewed, "COUNTY", "COUNTY", None,
                                 "公示异议经核实属实，乡镇审核、县级审定不纳入监测",
                                 COUNTY_OFFICE)  # fmt: skip
            return at_hour(reviewed, 22)
        campaign.review_step(story, "TOWNSHIP_REVIEW", reviewed, "TOWNSHIP", "TOWNSHIP", None,
                             "公示异议经核实不属实，退回重新公示", f"township-office:{h.township}",
                             hour=17, outcome="RETURNED")  # fmt: skip
        ends = _notice(campaign, story, reviewed + ONE_DAY, village)
    # A late procedure waits on the township's review meeting or on the county's approval,
    # after the township's home check made on time.
    late_at = r.choice(["TOWNSHIP", "COUNTY"]) if late else None
    inspected = ends + ONE_DAY
    visit(campaign, story, _plan(campaign, story, inspected, "township_check"))
    reviewed = inspected + r.randint(0, 1) * ONE_DAY
    if late_at == "TOWNSHIP":
        reviewed += r.randint(3, 8) * ONE_DAY
    campaign.review_step(story, "TOWNSHIP_REVIEW", reviewed, "TOWNSHIP", "TOWNSHIP", None,
                         "公示无异议，乡镇审核通过", f"township-office:{h.township}", hour=17,
                         outcome="PASSED")  # fmt: skip
    # the county approves at its next sitting, within the two days the policy gives it
    approved = reviewed + r.randint(1, 2) * ONE_DAY
    if late_at == "COUNTY":
        approved += r.randint(3, 8) * ONE_DAY
    household.refresh()
    at = at_hour(approved, 21)
    category = household.assess(at).category
    if category is None:  # the risk went before the county met: nothing left to include
        campaign.review_step(story, "REJECT", approved, "COUNTY", "COUNTY", None,
                             "县级审定：风险已消除，不纳入监测", COUNTY_OFFICE)  # fmt: skip
        return at_hour(approved, 22)
    campaign.review_step(story, "INCLUDE", approved, "COUNTY", "COUNTY", category,
                         reason + "；经村民代表评议、公示无异议，乡镇审核、县级审定",
                         COUNTY_OFFICE)  # fmt: skip
    story.monitored_from = approved
    if category == "GENERAL_KEY" and approved < SWITCH:  # monitored when 2021 begins
        rereview_after_switch(campaign, story, household.first)
    measures(campaign, story, approved)
    for plan in sorted(follow_ups(campaign, story), key=lambda v: v.occurred_at):
        story.visits.remove(plan)  # `visit` puts it back as it is made
        visit(campaign, story, plan)
    return at_hour(approved, 22)


def _notice(campaign: CampaignPlan, story: Story, posted: dt.date, village: str) -> dt.date:
    """A public notice posted on `posted` for 5–7 days; its last day."""
    days = story.rng.randint(5, 7)
    campaign.review_step(story, "NOTICE", posted, "VILLAGE", "VILLAGE", None, "村内公示", village,
                         notice=(posted, days), hour=22)  # fmt: skip
    return posted + (days - 1) * ONE_DAY


def _plan(campaign: CampaignPlan, story: Story, day: dt.date, kind: str) -> VisitPlan:
    r = story.rng
    at = at_hour(day, r.randint(8, 11), r.randrange(60))
    return VisitPlan(at, kind, campaign.visiting_cadre(story), True)


def _reason(flag: Assessment) -> str:
    """The flag's risk reasons as monitoring words them, for the decision's reason."""
    risks = [x for x in flag.reasons if x.code in RISK_CODES]
    codes = "、".join(dict.fromkeys(x.code for x in risks))
    return f"监测预警（{codes}）：{risks[0].message}" if risks else "监测预警"
