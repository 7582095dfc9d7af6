"""One household's story while it is drawn: its visit plans, hardships and the problems found."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from services.tools.simulation.county import Household
from services.tools.simulation.parameters import CST

ONE_DAY = dt.timedelta(days=1)


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
    # hardship contract v2: the member a department diagnosed (member id, condition, grade)
    diagnosis: tuple[str, str, int | None] | None = None


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


def at_hour(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """`day` at `hour:minute`, county time (UTC+8)."""
    return dt.datetime.combine(day, dt.time(hour, minute), CST)
