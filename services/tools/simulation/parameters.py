"""What a simulated county is made of: sizes, the campaign calendar and the rates it claims.

Every number here is either a fact from the seed (sizes, dates, the named cases) or a documented
plausible default (rates the sources do not give). The rates are the generator's claims: the
summary measures them back and the tests hold the generator to them within tolerance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# China Standard Time: field apps and department feeds stamp local time.
CST = dt.timezone(dt.timedelta(hours=8), "CST")

# The seed: 9,803 lifted households with 31,585 people, 1 household of 3 not yet lifted,
# 5,052 pairing cadres from 109 departments, 26 townships and streets.
SEED_LIFTED_HOUSEHOLDS = 9_803
SEED_LIFTED_PEOPLE = 31_585
SEED_NOT_LIFTED_HOUSEHOLDS = 1
SEED_NOT_LIFTED_PEOPLE = 3
SEED_CADRES = 5_052
SEED_DEPARTMENTS = 109
SEED_TOWNSHIPS = 26


@dataclass(frozen=True)
class CampaignCalendar:
    """The hundred-day campaign (百日大会战) and its phases; defaults are Dianjiang 2020.

    `start` is the day the county table is imported and deployment begins; visiting is
    concentrated on `concentrated_weekdays` (Monday and Friday, the 集中会战日) and intensifies
    after `kickoff` (the county's 13 May progress meeting).
    """

    start: dt.date = dt.date(2020, 3, 20)
    deployment_end: dt.date = dt.date(2020, 4, 30)
    kickoff: dt.date = dt.date(2020, 5, 13)
    implementation_end: dt.date = dt.date(2020, 6, 25)
    spot_check_end: dt.date = dt.date(2020, 7, 3)
    concentrated_weekdays: tuple[int, ...] = (0, 4)  # Monday, Friday
    # Schools reopened in May 2020; before that students learned at home (five visits).
    schools_reopen: dt.date = dt.date(2020, 5, 6)
    # Monitoring goes on after the campaign: monthly visits to monitored households (with their
    # income accounts) and the review groups' decisions, up to this day (None: the campaign's
    # end). A day in 2021 takes the county across the national policy switch (aftercare.py).
    until: dt.date | None = None

    def __post_init__(self) -> None:
        order = [
            self.start,
            self.deployment_end,
            self.implementation_end,
            self.spot_check_end,
        ]
        if order != sorted(order) or len(set(order)) != len(order):
            raise ValueError("campaign dates must be strictly increasing: start < ... < end")
        if self.until is not None and self.until < self.spot_check_end:
            raise ValueError(
                f"until ({self.until}) is before the campaign ends ({self.spot_check_end})"
            )

    @property
    def end(self) -> dt.date:
        """The last day anything happens: the campaign's end, or `until` when monitoring goes on."""
        return self.spot_check_end if self.until is None else self.until

    def days(self, first: dt.date, last: dt.date) -> list[dt.date]:
        """Calendar days from `first` to `last` inclusive, clipped to the campaign."""
        first, last = max(first, self.start), min(last, self.end)
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]

    def phase(self, day: dt.date) -> str:
        if day <= self.deployment_end:
            return "deployment"
        if day <= self.implementation_end:
            return "implementation"
        return "spot_check"

    def visiting_weight(self, day: dt.date) -> float:
        """Relative number of visits made on `day`: Mondays and Fridays carry most."""
        weekday = day.weekday()
        if weekday in self.concentrated_weekdays:
            weight = 4.0
        elif weekday >= 5:
            weight = 0.25
        else:
            weight = 1.0
        if self.deployment_end < day < self.kickoff:
            weight *= 0.6  # between phases, before the progress meeting
        return weight

    @property
    def phases(self) -> dict[str, tuple[dt.date, dt.date]]:
        one = dt.timedelta(days=1)
        return {
            "deployment": (self.start, self.deployment_end),
            "implementation": (self.deployment_end + one, self.implementation_end),
            "spot_check": (self.implementation_end + one, self.spot_check_end),
        }


@dataclass(frozen=True)
class Rates:
    """Probabilities the generator draws with: its documented, testable claims.

    Per-visit rates apply to each visit independently; household rates are drawn once per
    household for the whole campaign. None of these come from the sources except where noted;
    they are plausible defaults, chosen so that most visits find nothing (the seed: "income
    growth is fine; the problems are mainly dirty homes, and one card had fallen off").
    """

    # --- per visit: transient findings (fixed on the spot most of the time) ---
    dirty_home: float = 0.06
    untidy_home: float = 0.14  # noted, not a problem
    policy_card_missing: float = 0.03  # fallen off the wall
    policy_card_outdated: float = 0.015
    fixed_on_spot_dirty_home: float = 0.85
    fixed_on_spot_policy_card: float = 0.90
    detailed_accounts: float = 0.55  # the cadre reckons income item by item (算细账)
    income_update_from_accounts: float = 0.5  # of those, the accounts are filed as an update
    # --- per household: conditions found on the first campaign visit ---
    unsafe_housing: float = 0.008
    unsafe_water: float = 0.006
    dropout: float = 0.015  # of households with students
    uninsured: float = 0.004
    guarantee_rectified_in_time: float = 0.85  # rectified by the task's due date
    guarantee_rectified_late: float = 0.10  # rectified after it; the rest stay open
    # --- per household: hardships reported during the campaign ---
    illness_lifted: float = 0.03  # large medical bills, health-insurance feed
    illness_other: float = 0.012
    epidemic_job_loss: float = 0.06  # of migrant-work households, human-resources feed
    accident: float = 0.003
    disability: float = 0.002
    self_report: float = 0.004
    disaster_townships: int = 2  # townships hit by a flood or hailstorm
    disaster_household: float = 0.08  # of households in a hit township
    hardship_resolved: float = 0.35  # a later report marks it over (bill reimbursed, repaired)
    # --- visits ---
    deployment_visit: float = 0.85  # lifted households visited in the five-visits round
    second_campaign_visit: float = 0.5  # lifted households visited twice in implementation
    screening_visit: float = 0.10  # never-registered households visited (基层干部排查)
    spot_check: float = 0.08  # lifted households drawn for the county spot-check
    follow_up_on_time: float = 0.85  # monitored households visited within the interval
    follow_up_interval_days: int = 30
    unsold_produce: float = 0.12  # farming/livestock households in the five-visits round
    sales_aid: float = 0.8  # of unsold produce, the cadre finds buyers
    # --- offline phones ---
    synced_same_day: float = 0.72
    synced_within_3_days: float = 0.22  # the rest sync 4-14 days late
    # --- review ---
    verification_started: float = 0.9  # of households with a verified trigger
    included: float = 0.8  # of verifications; the rest are rejected
    decided_within_deadline: float = 0.88
    decision_deadline_days: int = 15
    # --- registry ---
    registry_correction: float = 0.04  # data cleaning of the household table
    membership_change: float = 0.01
    # --- measures for included households ---
    industry_aid: float = 0.7  # of households with labour
    public_welfare_job: float = 0.5  # of households with weak labour
    microcredit: float = 0.12  # of households with labour and a head aged 18-65
    minimum_living: float = 0.6  # of households without labour not yet on the allowance
    medical_aid: float = 0.8  # of households with an illness hardship
    measure_cancelled: float = 0.03


@dataclass(frozen=True)
class SimulationParameters:
    """Everything a run depends on; equal parameters give a byte-identical event stream."""

    seed: int = 2020
    scale: float = 1.0
    days: int | None = None  # stop after this many campaign days (None = the whole campaign)
    calendar: CampaignCalendar = field(default_factory=CampaignCalendar)
    rates: Rates = field(default_factory=Rates)
    # Never-registered rural households per lifted household. Not in the seed ("a larger
    # population"); two per lifted household puts ~20,000 of the county's rural households on
    # the screening table at scale 1.
    never_registered_per_lifted: float = 2.0
    # Monitoring income line (policy): per-capita net yuan per year, about 1.5x the poverty line.
    income_line_yuan: int = 6_000
    # Upper bound on how many days an offline phone holds a record.
    max_sync_delay_days: int = 14

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError("scale must be positive")
        if self.days is not None and self.days < 0:
            raise ValueError("days must be zero or more")
        if self.never_registered_per_lifted < 0:
            raise ValueError("never_registered_per_lifted must be zero or more")

    @property
    def lifted_households(self) -> int:
        return max(3, round(SEED_LIFTED_HOUSEHOLDS * self.scale))

    @property
    def lifted_people(self) -> int:
        return max(self.lifted_households, round(SEED_LIFTED_PEOPLE * self.scale))

    @property
    def not_lifted_households(self) -> int:
        return max(SEED_NOT_LIFTED_HOUSEHOLDS, round(SEED_NOT_LIFTED_HOUSEHOLDS * self.scale))

    @property
    def never_registered_households(self) -> int:
        return round(self.lifted_households * self.never_registered_per_lifted)

    @property
    def cadres(self) -> int:
        return max(3, round(SEED_CADRES * self.scale))

    @property
    def stop_at(self) -> dt.datetime | None:
        """Events recorded at or after this instant are not emitted (the --days limit)."""
        if self.days is None:
            return None
        day = self.calendar.start + dt.timedelta(days=self.days)
        return dt.datetime.combine(day, dt.time(), CST)
