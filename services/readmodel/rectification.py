"""How long a problem may stay open: the policies' rectification periods, effective-dated.

The period is the policy parameter `deadlines.problem_rectification_days` (services/monitoring/
README.md, "Policy parameters": 30 days in both shipped policies, a documented default — the seed
asks for problems to be fixed as they are found, 即知即改, and every problem of the hundred-day
campaign fixed by 25 June, but names no period). A problem's due date is the date it was found
plus the period of the policy in force that day, unless a rectification task gives its own due
date (the task's wins), as the monitoring worker reckons `problem_overdue`.

The read model does not import the monitoring service (pyproject's import contracts): it reads
the same policy files (SHOUWANG_POLICY_DIR, else the shipped ones) for these three keys only,
and refuses a file that lacks them, so a policy without a period stops the projector at start.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# Where the monitoring worker's shipped policy files are (a path, not an import).
SHIPPED_POLICY_DIR = Path(__file__).resolve().parents[1] / "monitoring" / "policies"


class PeriodError(ValueError):
    """A policy file the read model cannot take its rectification period from."""


@dataclass(frozen=True, slots=True)
class Period:
    policy: str
    effective_from: date
    effective_until: date | None  # exclusive
    days: int


@dataclass(frozen=True)
class RectificationPeriods:
    """The policies' periods, in effective order; `due_date` is pure."""

    periods: tuple[Period, ...]

    def days_on(self, day: date) -> int:
        """The period of the policy in force on `day`; before the first policy, the first's
        (a problem the cadre found early still gets a deadline, never none)."""
        for period in reversed(self.periods):
            if period.effective_from <= day:
                return period.days
        return self.periods[0].days

    def due_date(self, found_at: datetime) -> date:
        """The default due date of a problem found at `found_at` (dated in UTC, as monitoring
        dates it)."""
        found = found_at.astimezone(UTC)
        return (found + timedelta(days=self.days_on(found.date()))).date()


def _key(path: Path, data: Mapping, table: str, key: str, required: bool = True):
    section = data.get(table)
    value = section.get(key) if isinstance(section, Mapping) else None
    if value is None and required:
        raise PeriodError(f"{path}: {table}.{key} is missing")
    return value


def _period(path: Path, data: Mapping) -> Period:
    name = _key(path, data, "policy", "id")
    start = _key(path, data, "policy", "effective_from")
    until = _key(path, data, "policy", "effective_until", required=False)
    days = _key(path, data, "deadlines", "problem_rectification_days")
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise PeriodError(f"{path}: deadlines.problem_rectification_days must be a whole >= 0")
    if not isinstance(start, date) or (until is not None and not isinstance(until, date)):
        raise PeriodError(f"{path}: policy.effective_from and effective_until must be dates")
    return Period(str(name), start, until, days)


def load_periods(paths: Iterable[Path]) -> RectificationPeriods:
    """The periods of the policy files `paths`; at least one."""
    periods = []
    for path in paths:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PeriodError(f"{path}: {exc}") from exc
        periods.append(_period(path, data))
    if not periods:
        raise PeriodError("no policy file: the read model needs a rectification period")
    return RectificationPeriods(tuple(sorted(periods, key=lambda p: p.effective_from)))


def periods_in(directory: Path | None = None) -> RectificationPeriods:
    """The periods of every policy in `directory`, else the shipped policies."""
    return load_periods(sorted((directory or SHIPPED_POLICY_DIR).glob("*.toml")))


def periods_from_env(env: Mapping[str, str] | None = None) -> RectificationPeriods:
    """The periods of SHOUWANG_POLICY_DIR's policies (the monitoring worker's), else shipped."""
    env = os.environ if env is None else env
    directory = env.get("SHOUWANG_POLICY_DIR")
    return periods_in(Path(directory) if directory else None)
