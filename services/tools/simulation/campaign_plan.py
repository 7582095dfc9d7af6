"""The campaign being planned: its setting (county, calendar days, cadres, disaster days) and the
records drawn so far.

Every part of the campaign, the random draws and the named households alike, writes through one
`CampaignPlan`: it numbers each household's events, decides when an offline phone syncs, picks the
visiting cadre, and writes the record kinds several parts share (measures, review steps, income
updates).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from services.tools.simulation import records as rec
from services.tools.simulation.county import Cadre, County, rng_for
from services.tools.simulation.parameters import CST, SimulationParameters
from services.tools.simulation.story import ONE_DAY, Story, VisitPlan, at_hour

# Registry and cadre records first when several are received at the same instant (the import):
# a consumer then knows a household before anything happens to it.
PRIORITY = {rec.CADRE: 0, rec.REGISTRY: 0}

# (recorded_at, priority, event type, record): sorted, the planned records are the stream.
Planned = tuple[dt.datetime, int, str, dict[str, Any]]


class CampaignPlan:
    """The setting every story is drawn in, and the records collected from them, unsorted."""

    def __init__(self, parameters: SimulationParameters, county: County):
        self.parameters = parameters
        self.seed = parameters.seed
        self.calendar = parameters.calendar
        self.rates = parameters.rates
        self.county = county
        self.planned: list[Planned] = []
        self.import_at = dt.datetime.combine(self.calendar.start, dt.time(7, 0), CST)
        self.cadres_by_township: dict[str, list[Cadre]] = {}
        for cadre in county.cadres:
            self.cadres_by_township.setdefault(cadre.township, []).append(cadre)
        self.phase_days = {
            phase: self._weighted_days(first, last)
            for phase, (first, last) in self.calendar.phases.items()
        }
        cal = self.calendar
        self.campaign_days = cal.days(cal.start, cal.implementation_end)
        self.deployment_days = cal.days(*cal.phases["deployment"])
        self.implementation_days = cal.days(*cal.phases["implementation"])
        self._auditors: dict[str, list[Cadre]] = {}
        # Per household, the latest review decision entered: (occurred_at, recorded_at).
        self._last_review: dict[str, tuple[dt.datetime, dt.datetime]] = {}
        disaster_rng = rng_for(self.seed, "disasters")
        impl_first, impl_last = self.calendar.phases["implementation"]
        self.disaster_day = {
            name: disaster_rng.choice(self.calendar.days(impl_first + 20 * ONE_DAY, impl_last))
            for name in county.disaster_townships
        }

    # ---- plumbing --------------------------------------------------------------------------

    def emit(self, event_type: str, record: dict[str, Any]) -> None:
        """Plan `record`, unless it happens after the campaign's last day."""
        if record["occurred_at"].date() > self.calendar.end:
            return
        self.planned.append(
            (record["recorded_at"], PRIORITY.get(event_type, 1), event_type, record)
        )

    def next_id(self, story: Story) -> str:
        """The event id of the story's next record."""
        story.events += 1
        return rec.derived_id(self.seed, story.household.household_id, story.events)

    def synced(self, r: random.Random, occurred: dt.datetime) -> dt.datetime:
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
        return at_hour(occurred.date() + days * ONE_DAY, r.randint(7, 22), r.randrange(60))

    def _weighted_days(self, first: dt.date, last: dt.date) -> tuple[list[dt.date], list[float]]:
        days = self.calendar.days(first, last)
        return days, [self.calendar.visiting_weight(d) for d in days]

    # ---- who visits --------------------------------------------------------------------------

    def visiting_cadre(self, story: Story, audit: bool = False) -> str:
        """The cadre who visits: mostly the household's own, else one of its township's."""
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

    # ---- the record kinds several parts write --------------------------------------------------

    def measure(
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
        """One step of a measure for the story's household."""
        h = story.household
        actor = cadre_id or h.cadre_id or "import:county-table"
        if source == "IMPORT":
            actor = "import:county-table"
        event_id = self.next_id(story)
        self.emit(
            rec.MEASURE,
            rec.measure_record(
                event_id,
                h.household_id,
                occurred,
                recorded_at or self.synced(story.rng, occurred),
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

    def review_step(
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
        outcome: str | None = None,
        exception: bool = False,
    ) -> None:
        """One review decision on the story's household, entered by an operator."""
        r = story.rng
        occurred = at_hour(day, hour, 30)
        recorded = occurred + dt.timedelta(minutes=r.randint(5, 90))
        # A step taken after another is entered after it: the visits door refuses a step
        # whose predecessor is not recorded yet (422 missing_step), as a county office would.
        household_id = story.household.household_id
        last = self._last_review.get(household_id)
        if last is not None and occurred >= last[0]:
            recorded = max(recorded, last[1] + dt.timedelta(minutes=1))
        self._last_review[household_id] = (occurred, recorded)
        self.emit(
            rec.REVIEW,
            rec.review_record(
                self.next_id(story),
                household_id,
                occurred,
                recorded,
                source="OPERATOR",
                actor=actor,
                decision=decision,
                category=category,
                body=body,
                approving_level=level,
                notice_start=notice[0] if notice else None,
                notice_days=notice[1] if notice else 0,
                reason=reason,
                outcome=outcome,
                exception=exception,
            ),
        )

    def income_update(
        self, story: Story, plan: VisitPlan, recorded: dt.datetime, income: int
    ) -> None:
        """The income a visit's detailed accounts found, for the twelve months before it."""
        day = plan.occurred_at.date()
        period_end = day.replace(day=1) - ONE_DAY
        period_start = (period_end.replace(day=1) - dt.timedelta(days=334)).replace(day=1)
        self.emit(
            rec.INCOME,
            rec.income_record(
                self.next_id(story),
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
