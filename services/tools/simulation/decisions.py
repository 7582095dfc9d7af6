"""Review decisions and measures, drawn at random: monitoring taken over from before the campaign,
what the review groups decide on a trigger, and which measures reach the households included."""

from __future__ import annotations

import datetime as dt
import functools

from services.contract.catalogue import Catalogue, load_catalogue
from services.tools.simulation import records as rec
from services.tools.simulation.campaign_plan import CampaignPlan
from services.tools.simulation.county import LIFTED, NEVER_REGISTERED, NOT_LIFTED
from services.tools.simulation.story import ONE_DAY, Story, at_hour


@functools.cache
def shipped_catalogue() -> Catalogue:
    """The shipped measure catalogue, as the services load it by default, read on first use:
    every measure step the simulation writes names one of its measures and, when it names a
    pool, that measure's pool (the visits API refuses anything else, as the support worker
    would)."""
    return load_catalogue()


# The seed's industry aid, by the catalogue measure that delivers it: (id, item, amount, unit).
INDUSTRY = (
    ("industry.fruit-seedlings", "垫江晚柚苗", 80, "株"),
    ("industry.poultry", "鸭苗", 50, "只"),
    ("industry.poultry", "鸡苗", 100, "只"),
    ("industry.livestock", "仔猪", 2, "头"),
)


def pool_of(catalogue_id: str, township: str) -> str | None:
    """The pool instance a household of `township` draws on for the measure; None if none."""
    catalogue = shipped_catalogue()
    measure = catalogue.measure(catalogue_id)
    return None if measure.pool is None else catalogue.pools[measure.pool].instance(township)


# A measure to deliver: type, catalogue id, quantities, amount (yuan), term (months), pool, note.
Chosen = tuple[str, str, list[tuple[str, int, str]], int | None, int | None, str | None, str]


# One step of the procedure: decision, day, hour, body and level, outcome, notice, reason.
Step = tuple[str, dt.date, int, str, str | None, tuple[dt.date, int] | None, str]


def procedure_steps(opened: dt.date, decided: dt.date, notice_days: int) -> list[Step]:
    """The steps between opening a procedure on `opened` and the county's approval on
    `decided` (DOMAIN.md): village deliberation, a public notice of `notice_days` ending the day
    before the township review, township review the day of the approval. Placed as late as the
    rules allow, after the opening decision (21:30) and before the approval (21:30): every
    caller keeps `decided - opened >= notice_days`, so no random draw is needed."""
    notice_start = decided - notice_days * ONE_DAY
    assert notice_start >= opened, "the procedure needs notice_days between opening and approval"
    return [
        ("VILLAGE_DELIBERATION", notice_start, 22, "VILLAGE", "PASSED", None, "村民代表评议通过"),
        ("NOTICE", notice_start, 23, "VILLAGE", None, (notice_start, notice_days), "村内公示"),
        ("TOWNSHIP_REVIEW", decided, 10, "TOWNSHIP", "PASSED", None, "公示无异议，乡镇审核通过"),
    ]


def prior_monitoring(campaign: CampaignPlan, story: Story) -> None:
    """Households already monitored since November 2019 (the seed: 300+ like the uremia case).

    Lifted households below the income line were taken in as unstable lifted households;
    most never-registered ones below it as marginal households.
    """
    h, r = story.household, story.rng
    line = campaign.parameters.income_line_yuan
    # Like the seed's uremia case: a lifted household without working-age labour and with a
    # seriously ill or severely disabled member (2021's special attention) was taken in too.
    attention = (
        h.registration == LIFTED
        and h.members.labour == 0
        and any(p.health == "SERIOUS_ILLNESS" or (p.disability_grade or 9) <= 2 for p in h.people)
    )
    if (h.income_2019 >= line and not attention) or h.registration == NOT_LIFTED:
        return
    if h.registration == NEVER_REGISTERED and r.random() >= 0.7:
        return
    if attention and h.income_2019 >= line and r.random() >= 0.8:
        return
    category = "UNSTABLE_LIFTED" if h.registration == LIFTED else "MARGINAL"
    start = dt.date(2019, 11, 1) + r.randrange(75) * ONE_DAY
    decided = start + r.randint(8, 14) * ONE_DAY
    reason = (
        f"2019年人均纯收入{h.income_2019}元，低于监测线{line}元"
        if h.income_2019 < line
        else "无劳动力，家庭成员患大病或重度残疾（特别关注）"
    )
    steps: list[Step] = [
        ("START_VERIFICATION", start, 21, "REVIEW_GROUP", None, None, reason),
        *procedure_steps(start, decided, 5),
        ("INCLUDE", decided, 21, "COUNTY", None, None, reason),
    ]
    for decision, day, hour, body, outcome, notice, why in steps:
        campaign.emit(
            rec.REVIEW,
            rec.review_record(
                campaign.next_id(story),
                h.household_id,
                at_hour(day, hour, 30),
                campaign.import_at,
                source="IMPORT",
                actor="import:county-table",
                decision=decision,
                category=category if decision == "INCLUDE" else None,
                body=body,
                # Review groups (会审组) are the township's (visits/domain/levels.py).
                approving_level="TOWNSHIP" if body == "REVIEW_GROUP" else body,
                notice_start=notice[0] if notice else None,
                notice_days=notice[1] if notice else 0,
                reason=why,
                outcome=outcome,
            ),
        )
    story.monitored_from = campaign.calendar.start
    if h.members.labour and r.random() < 0.6:
        catalogue, item, amount, unit = r.choice(INDUSTRY)
        delivered = decided + r.randint(5, 40) * ONE_DAY
        campaign.measure(
            story,
            "DELIVERED",
            "INDUSTRY",
            catalogue,
            at_hour(min(delivered, campaign.calendar.start - ONE_DAY), 10),
            source="IMPORT",
            recorded_at=campaign.import_at,
            quantities=[(item, amount, unit)],
            note="产业帮扶（监测户全覆盖）",
        )


def review(campaign: CampaignPlan, story: Story) -> None:
    """Rules flag, people decide: review groups take up the households with a real trigger."""
    h, r, rates = story.household, story.rng, campaign.rates
    if h.members.labour == 0 and any(p.health != "HEALTHY" for p in h.people):
        # the county table shows a 2021 special-attention household: the rules flag it from
        # the import, and the review group takes it up like any other trigger
        story.triggers.append(
            (campaign.import_at, "户表：无劳动力，家庭成员患病或残疾（特别关注）")
        )
    if story.monitored_from is not None or h.registration == NOT_LIFTED or not story.triggers:
        return
    if r.random() >= rates.verification_started:
        return  # left for the monitoring service to flag (and, past the deadline, alert)
    triggered_at, reason = min(story.triggers)
    started = triggered_at.date() + r.choice([0, 0, 1, 2]) * ONE_DAY
    deadline = rates.decision_deadline_days
    if r.random() < rates.decided_within_deadline:
        decided = started + r.randint(7, deadline) * ONE_DAY
    else:
        decided = started + r.randint(deadline + 1, deadline + 15) * ONE_DAY
    actor = f"review-group:{h.township}"
    campaign.review_step(
        story, "START_VERIFICATION", started, "REVIEW_GROUP", "TOWNSHIP", None, reason, actor
    )
    if decided > campaign.calendar.end:
        return  # still undecided when the campaign ends
    if r.random() < rates.included:
        if h.registration == LIFTED:
            category = "UNSTABLE_LIFTED"
        elif story.income_on(decided) < campaign.parameters.income_line_yuan:
            category = "MARGINAL"
        else:
            category = "GENERAL_KEY"
        notice_days = r.randint(5, 7)
        for decision, day, hour, body, outcome, notice, why in procedure_steps(
            started, decided, notice_days
        ):
            actor = (
                f"township-office:{h.township}"
                if body == "TOWNSHIP"
                else f"village-committee:{h.township}/{h.village}"
            )
            campaign.review_step(
                story, decision, day, body, body, None, why, actor, notice, hour, outcome
            )
        campaign.review_step(
            story,
            "INCLUDE",
            decided,
            "COUNTY",
            "COUNTY",
            category,
            reason + "；经村民代表评议、公示无异议，乡镇审核、县级审定",
            "county:poverty-office",
        )
        story.monitored_from = decided
        measures(campaign, story, decided)
    else:
        # Not including is the county's decision, as including is (visits/domain/levels.py).
        campaign.review_step(
            story,
            "REJECT",
            decided,
            "COUNTY",
            "COUNTY",
            None,
            "核实后收入稳定、刚性支出已解决，乡镇审核、县级审定暂不纳入监测",
            "county:poverty-office",
        )


def measures(campaign: CampaignPlan, story: Story, included: dt.date) -> None:
    """The measures a household included on `included` receives, accepted then delivered."""
    h, r, rates = story.household, story.rng, campaign.rates
    m = h.members
    age = 2020 - h.head_birth_year
    chosen: list[Chosen] = []
    if m.labour and r.random() < rates.industry_aid:
        catalogue, item, amount, unit = r.choice(INDUSTRY)
        chosen.append(
            (
                "INDUSTRY",
                catalogue,
                [(item, amount, unit)],
                None,
                None,
                pool_of(catalogue, h.township),
                "产业帮扶",
            )
        )
    if m.weak_labour and r.random() < rates.public_welfare_job:
        months = r.choice([6, 9, 12])
        chosen.append(
            (
                "PUBLIC_WELFARE_JOB",
                "employment.public-welfare-job",
                [],
                600 * months,
                months,
                pool_of("employment.public-welfare-job", h.township),
                "临时性公益性岗位",
            )
        )
    if m.labour and 18 <= age <= 65 and r.random() < rates.microcredit:
        amount = r.choice([20_000, 30_000, 50_000])
        chosen.append(
            (
                "MICROCREDIT",
                "credit.microcredit",
                [],
                amount,
                36,
                pool_of("credit.microcredit", h.township),
                "扶贫小额信贷，免担保免抵押，财政贴息",
            )
        )
    if (
        m.labour + m.weak_labour == 0
        and not h.minimum_living_allowance
        and r.random() < rates.minimum_living
    ):
        chosen.append(
            ("MINIMUM_LIVING", "protection.minimum-living", [], None, None, None, "纳入低保")
        )
    illness = [hd for hd in story.hardships if hd.cause == "ILLNESS"]
    if illness and r.random() < rates.medical_aid:
        chosen.append(
            (
                "MEDICAL",
                "medical.serious-illness",
                [],
                illness[0].rigid // 2,
                None,
                pool_of("medical.serious-illness", h.township),
                "医疗救助",
            )
        )
    cadre = h.cadre_id or campaign.visiting_cadre(story)
    for n, (mtype, catalogue, quantities, amount, term, pool, note) in enumerate(chosen):
        accepted = at_hour(included + r.randint(1, 3) * ONE_DAY, 10)
        delivered = at_hour(accepted.date() + r.randint(2, 20) * ONE_DAY, 14)
        measure_id = rec.derived_id(
            campaign.seed, h.household_id, "measure", included.isoformat(), n
        )
        last = "CANCELLED" if r.random() < rates.measure_cancelled else "DELIVERED"
        for step, at in (("ACCEPTED", accepted), (last, delivered)):
            campaign.measure(
                story,
                step,
                mtype,
                catalogue,
                at,
                cadre_id=cadre,
                quantities=quantities if step == "DELIVERED" else [],
                amount_yuan=amount,
                term_months=term,
                pool=pool,
                note=note,
                measure_id=measure_id,
            )
