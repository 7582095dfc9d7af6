"""The hundred-day campaign, household by household: who is visited when, what is found, what
the departments report, what the review groups decide and which measures reach whom.

Each household's story is drawn from its own random generator (see `rng_for`), so stories are
independent of one another and of the order they are drawn in. The planner only decides; the
record shapes live in `records`.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from typing import Any

from services.tools.simulation import records as rec
from services.tools.simulation.county import (
    CASE_CHICKEN_FARMER,
    CASE_MARGINAL_NEIGHBOUR,
    CASE_NOT_LIFTED,
    CASE_UREMIA,
    LIFTED,
    NEVER_REGISTERED,
    NOT_LIFTED,
    Cadre,
    County,
    Household,
    rng_for,
)
from services.tools.simulation.parameters import CST, SimulationParameters

ONE_DAY = dt.timedelta(days=1)
# Registry and cadre records first when several are received at the same instant (the import):
# a consumer then knows a household before anything happens to it.
PRIORITY = {rec.CADRE: 0, rec.REGISTRY: 0}

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
UNSOLD = (
    ("土鸡", "只", 90),
    ("生猪", "头", 2_400),
    ("鸭", "只", 60),
    ("青菜头", "公斤", 2),
    ("柚子", "公斤", 4),
)
INDUSTRY = (
    ("industry.pomelo-seedlings", "垫江晚柚苗", 80, "株"),
    ("industry.ducklings", "鸭苗", 50, "只"),
    ("industry.chicks", "鸡苗", 100, "只"),
    ("industry.piglets", "仔猪", 2, "头"),
)


@dataclass(slots=True)
class VisitPlan:
    occurred_at: dt.datetime
    kind: str  # five_visits, campaign, screening, spot_check, follow_up, scripted
    cadre_id: str
    accounts: bool


@dataclass(slots=True)
class Hardship:
    day: dt.date
    cause: str
    rigid: int
    origin: str
    department: str | None
    description: str
    resolved_day: dt.date | None = None
    income_factor: float = 1.0


@dataclass
class Story:
    """Working state of one household's story while it is being drawn."""

    household: Household
    rng: random.Random
    events: int = 0
    income_growth: float = 1.0
    hardships: list[Hardship] = field(default_factory=list)
    latent: dict[str, tuple[str, str]] = field(default_factory=dict)
    latent_found: dict[str, dt.date] = field(default_factory=dict)
    latent_rectified: dict[str, dt.date | None] = field(default_factory=dict)
    triggers: list[tuple[dt.datetime, str]] = field(default_factory=list)
    monitored_from: dt.date | None = None
    visits: list[VisitPlan] = field(default_factory=list)

    def income_on(self, day: dt.date) -> int:
        income = self.household.income_2019 * self.income_growth
        for hardship in self.hardships:
            if hardship.day <= day:
                income *= hardship.income_factor
        return int(round(income, -1))


class CampaignPlanner:
    """Draws every household's story and collects the records, unsorted."""

    def __init__(self, parameters: SimulationParameters, county: County):
        self.parameters = parameters
        self.seed = parameters.seed
        self.calendar = parameters.calendar
        self.rates = parameters.rates
        self.county = county
        self.planned: list[tuple[dt.datetime, int, str, dict[str, Any]]] = []
        self.import_at = dt.datetime.combine(self.calendar.start, dt.time(7, 0), CST)
        self.cadres_by_township: dict[str, list[Cadre]] = {}
        for cadre in county.cadres:
            self.cadres_by_township.setdefault(cadre.township, []).append(cadre)
        self._phase_days = {
            phase: self._weighted_days(first, last)
            for phase, (first, last) in self.calendar.phases.items()
        }
        cal = self.calendar
        self.campaign_days = cal.days(cal.start, cal.implementation_end)
        self.deployment_days = cal.days(*cal.phases["deployment"])
        self.implementation_days = cal.days(*cal.phases["implementation"])
        self._auditors: dict[str, list[Cadre]] = {}
        disaster_rng = rng_for(self.seed, "disasters")
        impl_first, impl_last = self.calendar.phases["implementation"]
        self.disaster_day = {
            name: disaster_rng.choice(self.calendar.days(impl_first + 20 * ONE_DAY, impl_last))
            for name in county.disaster_townships
        }

    # ---- the plan ------------------------------------------------------------------------

    def plan(self) -> list[tuple[dt.datetime, int, str, dict[str, Any]]]:
        for cadre in self.county.cadres:
            event_id = rec.derived_id(self.seed, "cadre", cadre.cadre_id, 1)
            self._emit(rec.CADRE, rec.cadre_record(event_id, cadre, self.import_at, self.import_at))
        for household in self.county.households:
            self._household(household)
        return self.planned

    def _household(self, household: Household) -> None:
        story = Story(household, rng_for(self.seed, "story", household.household_id))
        r = story.rng
        self._emit(
            rec.REGISTRY,
            rec.registry_record(self._id(story), household, self.import_at, self.import_at),
        )
        story.income_growth = r.gauss(1.05, 0.07)
        if household.case in (CASE_UREMIA, CASE_MARGINAL_NEIGHBOUR, CASE_CHICKEN_FARMER):
            self._scripted(story)
        else:
            self._prior_monitoring(story)
            self._draw_latent(story)
            self._draw_hardships(story)
            self._draw_visits(story)
            self._review(story)
            self._registry_changes(story)
        self._follow_ups(story)
        self._walk_visits(story)

    # ---- before the campaign ---------------------------------------------------------------

    def _prior_monitoring(self, story: Story) -> None:
        """Households already monitored since November 2019 (the seed: 300+ like the uremia case).

        Lifted households below the income line were taken in as unstable lifted households;
        most never-registered ones below it as marginal households.
        """
        h, r = story.household, story.rng
        if h.income_2019 >= self.parameters.income_line_yuan or h.registration == NOT_LIFTED:
            return
        if h.registration == NEVER_REGISTERED and r.random() >= 0.7:
            return
        category = "UNSTABLE_LIFTED" if h.registration == LIFTED else "MARGINAL"
        start = dt.date(2019, 11, 1) + r.randrange(75) * ONE_DAY
        decided = start + r.randint(8, 14) * ONE_DAY
        reason = (
            f"2019年人均纯收入{h.income_2019}元，低于监测线{self.parameters.income_line_yuan}元"
        )
        for decision, day, body, level in (
            ("START_VERIFICATION", start, "REVIEW_GROUP", "VILLAGE"),
            ("INCLUDE", decided, "COUNTY", "COUNTY"),
        ):
            self._emit(
                rec.REVIEW,
                rec.review_record(
                    self._id(story),
                    h.household_id,
                    _at(day, 21, 30),
                    self.import_at,
                    source="IMPORT",
                    actor="import:county-table",
                    decision=decision,
                    category=category if decision == "INCLUDE" else None,
                    body=body,
                    approving_level=level,
                    notice_start=start + ONE_DAY if decision == "INCLUDE" else None,
                    notice_days=5 if decision == "INCLUDE" else 0,
                    reason=reason,
                ),
            )
        story.monitored_from = self.calendar.start
        if h.members.labour and r.random() < 0.6:
            catalogue, item, amount, unit = r.choice(INDUSTRY)
            delivered = decided + r.randint(5, 40) * ONE_DAY
            self._measure(
                story,
                "DELIVERED",
                "INDUSTRY",
                catalogue,
                _at(min(delivered, self.calendar.start - ONE_DAY), 10),
                source="IMPORT",
                recorded_at=self.import_at,
                quantities=[(item, amount, unit)],
                note="产业帮扶（监测户全覆盖）",
            )

    # ---- what is true of the household during the campaign ---------------------------------

    def _draw_latent(self, story: Story) -> None:
        h, r, rates = story.household, story.rng, self.rates
        draws = {
            "housing": rates.unsafe_housing,
            "water": rates.unsafe_water,
            "education": rates.dropout if h.members.students else 0.0,
            "medical": rates.uninsured,
        }
        for check, p in draws.items():
            if r.random() < p:
                story.latent[check] = LATENT[check]

    def _draw_hardships(self, story: Story) -> None:
        h, r, rates = story.household, story.rng, self.rates
        registered = h.registration != NEVER_REGISTERED
        campaign_days = self.campaign_days
        found: list[Hardship] = []
        if r.random() < (rates.illness_lifted if registered else rates.illness_other):
            rigid = _round100(r.lognormvariate(math.log(15_000), 0.8))
            found.append(self._feed(r.choice(campaign_days), "ILLNESS", rigid))
        if h.livelihood in ("MIGRANT_WORK", "MIXED") and r.random() < rates.epidemic_job_loss:
            hardship = self._feed(r.choice(self.deployment_days), "EPIDEMIC", 0)
            hardship.income_factor = r.uniform(0.5, 0.85)  # below 0.7 is a sharp fall
            found.append(hardship)
        if r.random() < rates.accident:
            rigid = _round100(r.lognormvariate(math.log(8_000), 0.7))
            found.append(self._feed(r.choice(campaign_days), "ACCIDENT", rigid))
        if r.random() < rates.disability:
            found.append(
                self._feed(r.choice(campaign_days), "DISABILITY", r.randint(50, 200) * 100)
            )
        if h.township in self.disaster_day and r.random() < rates.disaster_household:
            rigid = r.randint(30, 400) * 100
            found.append(self._feed(self.disaster_day[h.township], "DISASTER", rigid))
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
            self._report_hardship(story, hardship)
        story.hardships = found

    def _feed(self, day: dt.date, cause: str, rigid: int) -> Hardship:
        department, description = FEEDS[cause]
        return Hardship(day, cause, rigid, "DEPARTMENT_FEED", department, description)

    def _report_hardship(self, story: Story, hardship: Hardship) -> None:
        h, r = story.household, story.rng
        hardship_id = rec.derived_id(self.seed, h.household_id, "hardship", hardship.cause)
        if hardship.origin == "DEPARTMENT_FEED":
            source, actor = "FEED", f"feed:{hardship.department}"
            occurred = _at(hardship.day, r.randint(8, 17), r.randrange(60))
            # Departments push daily batches: the next evenings, not the same instant.
            recorded = _at(hardship.day + r.randint(1, 5) * ONE_DAY, 22)
        else:
            source, actor = "OPERATOR", f"township-office:{h.township}"
            occurred = _at(hardship.day, r.randint(8, 17), r.randrange(60))
            recorded = occurred + dt.timedelta(minutes=r.randint(5, 240))
        annual = story.income_on(hardship.day) * h.members.count
        if hardship.rigid > annual or hardship.income_factor < 0.7:
            story.triggers.append((recorded, _trigger_reason(hardship, annual)))
        self._emit(
            rec.HARDSHIP,
            rec.hardship_record(
                self._id(story),
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
            ),
        )
        if hardship.resolved_day and hardship.resolved_day <= self.calendar.end:
            occurred = _at(hardship.resolved_day, 10)
            self._emit(
                rec.HARDSHIP,
                rec.hardship_record(
                    self._id(story),
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
                ),
            )

    # ---- visits ----------------------------------------------------------------------------

    def _draw_visits(self, story: Story) -> None:
        h, r, rates = story.household, story.rng, self.rates
        if h.registration == NEVER_REGISTERED:
            if r.random() < rates.screening_visit:
                story.visits.append(self._visit_plan(story, "implementation", "screening"))
        else:
            if r.random() < rates.deployment_visit:
                story.visits.append(self._visit_plan(story, "deployment", "five_visits"))
            for _ in range(1 + (r.random() < rates.second_campaign_visit)):
                story.visits.append(self._visit_plan(story, "implementation", "campaign"))
            if h.registration == LIFTED and r.random() < rates.spot_check:
                story.visits.append(self._visit_plan(story, "spot_check", "spot_check"))
        story.visits.sort(key=lambda v: v.occurred_at)
        line = self.parameters.income_line_yuan
        for n, visit in enumerate(story.visits):
            if n == 0 and story.latent:
                kinds = "、".join(LATENT[c][1].split("：")[0] for c in story.latent)
                story.triggers.append((visit.occurred_at, f"入户发现{kinds}问题"))
            income = story.income_on(visit.occurred_at.date())
            if visit.accounts and income < line:
                story.triggers.append(
                    (visit.occurred_at, f"算细账人均纯收入约{income}元，低于监测线{line}元")
                )

    def _visit_plan(self, story: Story, phase: str, kind: str) -> VisitPlan:
        r = story.rng
        days, weights = self._phase_days[phase]
        day = r.choices(days, weights)[0]
        cadre = self._visiting_cadre(story, audit=kind == "spot_check")
        return VisitPlan(
            _at(day, r.randint(8, 17), r.randrange(60)),
            kind,
            cadre,
            r.random() < self.rates.detailed_accounts,
        )

    def _visiting_cadre(self, story: Story, audit: bool = False) -> str:
        h, r = story.household, story.rng
        if audit:
            # Spot-checks are made by county audit groups from other townships.
            if h.township not in self._auditors:
                self._auditors[h.township] = [
                    c for c in self.county.cadres if c.township != h.township
                ] or list(self.county.cadres)
            return r.choice(self._auditors[h.township]).cadre_id
        if h.cadre_id and r.random() < 0.8:
            return h.cadre_id
        local = self.cadres_by_township.get(h.township) or self.county.cadres
        return r.choice(local).cadre_id

    def _follow_ups(self, story: Story) -> None:
        """Monitored households are visited every interval; a few visits come late (overdue)."""
        if story.monitored_from is None:
            return
        r, rates = story.rng, self.rates
        interval = rates.follow_up_interval_days
        visited = sorted(v.occurred_at.date() for v in story.visits)
        last = story.monitored_from
        while True:
            if r.random() < rates.follow_up_on_time:
                gap = r.randint(max(1, interval - 10), interval)
            else:
                gap = r.randint(interval + 1, interval + 15)
            due = last + gap * ONE_DAY
            if due > self.calendar.end:
                return
            recent = [d for d in visited if last < d <= due]
            if recent:
                last = recent[-1]
                continue
            visit = VisitPlan(
                _at(due, r.randint(8, 17), r.randrange(60)),
                "follow_up",
                self._visiting_cadre(story),
                r.random() < self.rates.detailed_accounts,
            )
            story.visits.append(visit)
            visited.append(due)
            last = due

    def _walk_visits(self, story: Story) -> None:
        story.visits.sort(key=lambda v: v.occurred_at)
        for visit in story.visits:
            if visit.kind != "scripted":
                self._visit(story, visit)

    def _visit(self, story: Story, plan: VisitPlan) -> None:
        h, r, rates = story.household, story.rng, self.rates
        day = plan.occurred_at.date()
        recorded = self._synced(r, plan.occurred_at)
        event_id = self._id(story)
        visit_id = rec.derived_id(self.seed, event_id, "visit")
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
                self._income_update(story, plan, recorded, estimate)
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

        five_visits = self._five_visits(story, plan) if plan.kind == "five_visits" else None
        note = {
            "five_visits": "五访五帮：了解疫情影响、务工、春耕、农产品销售和学生居家学习情况",
            "campaign": "百日大会战入户走访：算细账、拉家常",
            "screening": "基层干部排查：了解收入和两不愁三保障情况",
            "spot_check": "县级抽查：核实户表信息和问题整改情况",
            "follow_up": "监测责任人定期走访",
        }[plan.kind]
        self._emit(
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
                note=note,
                geo=self._geo(h, r),
            ),
        )
        for n, (kind, description, fixed, latent) in enumerate(new_problems):
            rectified = self._problem(
                story, plan, recorded, visit_id, n, kind, description, fixed, bool(latent)
            )
            if latent:
                story.latent_rectified[latent] = rectified

    def _five_visits(self, story: Story, plan: VisitPlan) -> dict[str, Any]:
        h, r = story.household, story.rng
        day = plan.occurred_at.date()
        lost_job = any(hd.cause == "EPIDEMIC" and hd.day <= day for hd in story.hardships)
        seeking = 0
        if h.members.labour and (lost_job or r.random() < 0.15):
            seeking = r.randint(1, min(2, h.members.labour))
        unsold = None
        if (
            h.livelihood in ("FARMING", "LIVESTOCK", "MIXED")
            and r.random() < self.rates.unsold_produce
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
            if r.random() < self.rates.sales_aid:
                sold = _at(day + r.randint(3, 14) * ONE_DAY, 15)
                self._measure(
                    story,
                    "DELIVERED",
                    "SALES_AID",
                    "sales.consumption-aid",
                    sold,
                    cadre_id=plan.cadre_id,
                    quantities=[(item, quantity, unit)],
                    amount_yuan=quantity * price,
                    note="消费扶贫：联系机关食堂、农业企业帮助销售滞销农产品",
                )
        learning = h.members.students if day < self.calendar.schools_reopen else 0
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

    def _income_update(
        self, story: Story, plan: VisitPlan, recorded: dt.datetime, income: int
    ) -> None:
        day = plan.occurred_at.date()
        period_end = day.replace(day=1) - ONE_DAY
        period_start = (period_end.replace(day=1) - dt.timedelta(days=334)).replace(day=1)
        self._emit(
            rec.INCOME,
            rec.income_record(
                self._id(story),
                story.household,
                plan.occurred_at,
                recorded,
                source="APP",
                actor=plan.cadre_id,
                origin="CADRE_ACCOUNTS",
                period_start=period_start,
                period_end=period_end,
                per_capita=income,
            ),
        )

    def _problem(
        self,
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
        h, r, cal = story.household, story.rng, self.calendar
        problem_id = rec.derived_id(self.seed, visit_id, "problem", n)
        found_at = plan.occurred_at

        def step(name: str, occurred: dt.datetime, recorded_at: dt.datetime, **extra: Any) -> None:
            self._emit(
                rec.PROBLEM,
                rec.problem_record(
                    self._id(story),
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
        assigned = _at(found_at.date() + ONE_DAY, 10)
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
        if x < self.rates.guarantee_rectified_in_time:
            done = max(assigned.date(), due - r.randint(0, 7) * ONE_DAY)
        elif x < self.rates.guarantee_rectified_in_time + self.rates.guarantee_rectified_late:
            done = due + r.randint(3, 20) * ONE_DAY
        else:
            return None
        if done > cal.end:
            return None
        occurred = _at(done, r.randint(9, 17), r.randrange(60))
        step(
            "RECTIFIED",
            occurred,
            max(self._synced(r, occurred), recorded),
            description=description + "（已整改）",
        )
        return done

    # ---- reviews and measures --------------------------------------------------------------

    def _review(self, story: Story) -> None:
        """Rules flag, people decide: review groups take up the households with a real trigger."""
        h, r, rates = story.household, story.rng, self.rates
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
        self._review_step(
            story, "START_VERIFICATION", started, "REVIEW_GROUP", "VILLAGE", None, reason, actor
        )
        if decided > self.calendar.end:
            return  # still undecided when the campaign ends
        if r.random() < rates.included:
            if h.registration == LIFTED:
                category = "UNSTABLE_LIFTED"
            elif story.income_on(decided) < self.parameters.income_line_yuan:
                category = "MARGINAL"
            else:
                category = "GENERAL_KEY"
            self._review_step(
                story,
                "INCLUDE",
                decided,
                "COUNTY",
                "COUNTY",
                category,
                reason + "；经村民代表评议、公示无异议，乡镇审核、县级审定",
                "county:poverty-office",
                notice=(started + ONE_DAY, r.randint(5, 7)),
            )
            story.monitored_from = decided
            self._measures(story, decided)
        else:
            self._review_step(
                story,
                "REJECT",
                decided,
                "TOWNSHIP",
                "TOWNSHIP",
                None,
                "核实后收入稳定、刚性支出已解决，暂不纳入监测",
                f"township-office:{h.township}",
            )

    def _review_step(
        self,
        story: Story,
        decision: str,
        day: dt.date,
        body: str,
        level: str,
        category: str | None,
        reason: str,
        actor: str,
        notice: tuple[dt.date, int] | None = None,
        hour: int = 21,
    ) -> None:
        r = story.rng
        occurred = _at(day, hour, 30)
        self._emit(
            rec.REVIEW,
            rec.review_record(
                self._id(story),
                story.household.household_id,
                occurred,
                occurred + dt.timedelta(minutes=r.randint(5, 90)),
                source="OPERATOR",
                actor=actor,
                decision=decision,
                category=category,
                body=body,
                approving_level=level,
                notice_start=notice[0] if notice else None,
                notice_days=notice[1] if notice else 0,
                reason=reason,
            ),
        )

    def _measures(self, story: Story, included: dt.date) -> None:
        h, r, rates = story.household, story.rng, self.rates
        m = h.members
        age = 2020 - h.head_birth_year
        chosen: list[
            tuple[str, str, list[tuple[str, int, str]], int | None, int | None, str | None, str]
        ] = []
        if m.labour and r.random() < rates.industry_aid:
            catalogue, item, amount, unit = r.choice(INDUSTRY)
            chosen.append(
                (
                    "INDUSTRY",
                    catalogue,
                    [(item, amount, unit)],
                    None,
                    None,
                    f"township:{h.township}",
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
                    "county:public-welfare-jobs",
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
                    "county:microcredit",
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
                ("MEDICAL", "medical.assistance", [], illness[0].rigid // 2, None, None, "医疗救助")
            )
        cadre = h.cadre_id or self._visiting_cadre(story)
        for n, (mtype, catalogue, quantities, amount, term, pool, note) in enumerate(chosen):
            accepted = _at(included + r.randint(1, 3) * ONE_DAY, 10)
            delivered = _at(accepted.date() + r.randint(2, 20) * ONE_DAY, 14)
            measure_id = rec.derived_id(
                self.seed, h.household_id, "measure", included.isoformat(), n
            )
            last = "CANCELLED" if r.random() < rates.measure_cancelled else "DELIVERED"
            for step, at in (("ACCEPTED", accepted), (last, delivered)):
                self._measure(
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

    def _measure(
        self,
        story: Story,
        step: str,
        measure_type: str,
        catalogue_id: str,
        occurred: dt.datetime,
        *,
        source: str = "APP",
        recorded_at: dt.datetime | None = None,
        cadre_id: str | None = None,
        quantities: list[tuple[str, int, str]] = (),
        amount_yuan: int | None = None,
        term_months: int | None = None,
        pool: str | None = None,
        note: str = "",
        measure_id: str | None = None,
    ) -> None:
        h = story.household
        actor = cadre_id or h.cadre_id or "import:county-table"
        if source == "IMPORT":
            actor = "import:county-table"
        event_id = self._id(story)
        self._emit(
            rec.MEASURE,
            rec.measure_record(
                event_id,
                h.household_id,
                occurred,
                recorded_at or self._synced(story.rng, occurred),
                source=source,
                actor=actor,
                measure_id=measure_id or rec.derived_id(self.seed, event_id, "measure"),
                step=step,
                measure_type=measure_type,
                catalogue_id=catalogue_id,
                pool=pool,
                cadre_id=cadre_id or h.cadre_id,
                quantities=list(quantities),
                amount_yuan=amount_yuan,
                term_months=term_months,
                note=note,
            ),
        )

    # ---- the household table -----------------------------------------------------------------

    def _registry_changes(self, story: Story) -> None:
        h, r, rates = story.household, story.rng, self.rates
        days = self.implementation_days
        office = f"township-office:{h.township}"
        if h.case == CASE_NOT_LIFTED or (h.registration == NOT_LIFTED and r.random() < 0.5):
            day = dt.date(2020, 6, 20) if h.case == CASE_NOT_LIFTED else r.choice(days)
            self._registry(
                story,
                day,
                "STATUS_CHANGE",
                "county:poverty-office",
                {"registration": LIFTED, "lifted_year": 2020},
            )
        if r.random() < rates.registry_correction:
            overrides: dict[str, Any] = r.choice(
                [
                    {"housing": "SAFE", "water": "SAFE"},
                    {"head_birth_year": h.head_birth_year + r.choice([-1, 1])},
                    {"main_livelihood": r.choice(["MIGRANT_WORK", "LOCAL_WAGES", "MIXED"])},
                ]
            )
            self._registry(story, r.choice(days), "CORRECTION", office, overrides)
        if r.random() < rates.membership_change:
            m = h.members
            if m.count > 1 and r.random() < 0.5:  # a death or a member moving out
                change = {"count": m.count - 1}
                if m.elderly:
                    change["elderly"] = m.elderly - 1
                elif m.labour:
                    change["labour"] = m.labour - 1
                else:
                    change = {"count": m.count}
            else:  # a birth or a marriage
                change = {"count": m.count + 1}
            self._registry(story, r.choice(days), "MEMBERSHIP_CHANGE", office, {"members": change})

    def _registry(
        self, story: Story, day: dt.date, change: str, actor: str, overrides: dict
    ) -> None:
        occurred = _at(day, story.rng.randint(9, 17))
        self._emit(
            rec.REGISTRY,
            rec.registry_record(
                self._id(story),
                story.household,
                occurred,
                occurred + dt.timedelta(minutes=story.rng.randint(1, 120)),
                change=change,
                source="OPERATOR",
                actor=actor,
                overrides=overrides,
            ),
        )

    # ---- the seed's named households ---------------------------------------------------------

    def _scripted(self, story: Story) -> None:
        """The households the seed describes, with the dates and figures it gives."""
        h = story.household
        story.income_growth = 1.0
        if h.case == CASE_UREMIA:
            self._measure(
                story,
                "DELIVERED",
                "INDUSTRY",
                "industry.pomelo-seedlings",
                _at(dt.date(2019, 11, 12), 10),
                source="IMPORT",
                recorded_at=self.import_at,
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
            self._report_hardship(story, illness)
            story.triggers.clear()
            self._measure(
                story,
                "DELIVERED",
                "INDUSTRY",
                "industry.ducklings",
                _at(dt.date(2020, 5, 8), 10),
                cadre_id=h.cadre_id,
                quantities=[("鸭苗", 50, "只")],
                note="村上送去50只鸭苗",
            )
            story.income_growth = 0.8  # the illness costs; ducks bring a few thousand yuan later
            self._scripted_visit(
                story,
                dt.datetime(2020, 5, 15, 10, 20, tzinfo=CST),
                5_100,
                ["ILLNESS"],
                "身患尿毒症干不了重活，靠低保为生，每月自付10%医疗费；"
                "80根晚柚苗2021年才挂果，50只鸭苗有几千元收入，返贫风险极高",
            )
            self._scripted_review(
                story,
                "UNSTABLE_LIFTED",
                "脱贫户因病（尿毒症）存在返贫风险，当即列入脱贫监测户实时跟踪管理，上报镇扶贫办",
            )
        elif h.case == CASE_MARGINAL_NEIGHBOUR:
            self._scripted_visit(
                story,
                dt.datetime(2020, 5, 16, 9, 40, tzinfo=CST),
                5_800,
                ["INCOME_FALL"],
                "收入略高于建档立卡标准，存在致贫风险",
            )
            self._scripted_review(
                story,
                "MARGINAL",
                "非建档立卡户收入偏低，存在致贫风险，当即列入边缘户实时跟踪管理，上报镇扶贫办",
            )
        elif h.case == CASE_CHICKEN_FARMER:
            self._chicken_farmer(story)

    def _scripted_visit(
        self, story: Story, occurred: dt.datetime, income: int, causes: list[str], note: str
    ) -> None:
        h = story.household
        cadre = h.cadre_id or self._visiting_cadre(story)
        self._emit(
            rec.VISIT,
            rec.visit_record(
                self._id(story),
                h.household_id,
                occurred,
                occurred + dt.timedelta(hours=11),  # synced that night at the village office
                cadre_id=cadre,
                visit_id=rec.derived_id(self.seed, h.household_id, "visit", occurred.isoformat()),
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
        self._income_update(story, plan, occurred + dt.timedelta(hours=11), income)

    def _scripted_review(self, story: Story, category: str, reason: str) -> None:
        day = dt.date(2020, 5, 16)
        actor = "village:水井村"
        self._review_step(
            story, "START_VERIFICATION", day, "VILLAGE", "VILLAGE", None, reason, actor, hour=17
        )
        self._review_step(
            story, "INCLUDE", day, "VILLAGE", "TOWNSHIP", category, reason, actor, hour=21
        )
        story.monitored_from = day
        self._measures(story, day)

    def _chicken_farmer(self, story: Story) -> None:
        h = story.household
        occurred = dt.datetime(2020, 3, 27, 15, 10, tzinfo=CST)
        recorded = occurred + dt.timedelta(days=2, hours=4)  # the phone was offline
        hardship = Hardship(
            dt.date(2020, 3, 27), "EPIDEMIC", 0, "CADRE", None, "疫情影响，100多只土鸡出栏后滞销"
        )
        hardship.resolved_day = dt.date(2020, 4, 9)
        story.hardships = [hardship]
        hardship_id = rec.derived_id(self.seed, h.household_id, "hardship", "EPIDEMIC")
        for resolved, at in ((False, occurred), (True, _at(hardship.resolved_day, 18))):
            self._emit(
                rec.HARDSHIP,
                rec.hardship_record(
                    self._id(story),
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
        self._emit(
            rec.VISIT,
            rec.visit_record(
                self._id(story),
                h.household_id,
                occurred,
                recorded,
                cadre_id=h.cadre_id,
                visit_id=rec.derived_id(self.seed, h.household_id, "visit", occurred.isoformat()),
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
        self._measure(
            story,
            "DELIVERED",
            "SALES_AID",
            "sales.consumption-aid",
            _at(dt.date(2020, 4, 9), 16),
            cadre_id=h.cadre_id,
            quantities=[("土鸡", 120, "只")],
            amount_yuan=10_800,
            note="帮扶干部发动朋友圈、亲友，联系镇伙食团和农业企业，100多只鸡顺利售出",
        )
        self._measure(
            story,
            "DELIVERED",
            "INDUSTRY",
            "industry.poultry-expansion",
            _at(dt.date(2020, 4, 24), 10),
            cadre_id=h.cadre_id,
            quantities=[("鸡苗", 300, "只")],
            note="在帮扶干部支持下扩大养殖规模，开垦屋后竹林养殖300只鸡",
        )

    # ---- plumbing --------------------------------------------------------------------------

    def _emit(self, event_type: str, record: dict[str, Any]) -> None:
        if record["occurred_at"].date() > self.calendar.end:
            return
        self.planned.append(
            (record["recorded_at"], PRIORITY.get(event_type, 1), event_type, record)
        )

    def _id(self, story: Story) -> str:
        story.events += 1
        return rec.derived_id(self.seed, story.household.household_id, story.events)

    def _synced(self, r: random.Random, occurred: dt.datetime) -> dt.datetime:
        """When an offline phone delivers a record made at `occurred`."""
        x = r.random()
        if x < self.rates.synced_same_day:
            recorded = occurred + dt.timedelta(minutes=r.randint(2, 240))
            end_of_day = dt.datetime.combine(occurred.date(), dt.time(23, 59), CST)
            return min(recorded, end_of_day)
        if x < self.rates.synced_same_day + self.rates.synced_within_3_days:
            days = r.randint(1, 3)
        else:
            days = r.randint(4, self.parameters.max_sync_delay_days)
        return _at(occurred.date() + days * ONE_DAY, r.randint(7, 22), r.randrange(60))

    def _weighted_days(self, first: dt.date, last: dt.date) -> tuple[list[dt.date], list[float]]:
        days = self.calendar.days(first, last)
        return days, [self.calendar.visiting_weight(d) for d in days]

    def _geo(self, h: Household, r: random.Random) -> tuple[float, float] | None:
        if r.random() < 0.3:
            return None  # no fix indoors
        base = rng_for(self.seed, "geo", h.household_id)
        lat = 30.15 + base.random() * 0.45 + r.uniform(-0.0005, 0.0005)
        lon = 107.15 + base.random() * 0.5 + r.uniform(-0.0005, 0.0005)
        return round(lat, 5), round(lon, 5)


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), CST)


def _round100(x: float) -> int:
    return max(100, int(round(x, -2)))


def _trigger_reason(hardship: Hardship, annual: int) -> str:
    if hardship.income_factor < 1:
        return f"部门预警：{hardship.description}"
    return f"部门预警：{hardship.description}，刚性支出{hardship.rigid}元超过上年家庭收入{annual}元"
