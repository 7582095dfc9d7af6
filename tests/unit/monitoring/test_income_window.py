"""Income reckoned over the policy's window: the 12 months ending with the month before the
assessment's (DOMAIN.md), each day taking the newest figure that covers it."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.domain.assess import assess, income_crosses_next_month, next_deadline
from services.monitoring.domain.facts import IncomeObservation, income_over, income_window
from services.monitoring.domain.fold import fold
from tests.records import at, income, registry, visit
from tests.unit.monitoring.events import domain

DIANJIANG = load_policies().get("dianjiang-2020")
D = dt.date


def observation(start: dt.date, end: dt.date, yuan: int, name: str) -> IncomeObservation:
    moment = dt.datetime.combine(end, dt.time(12), dt.UTC)
    return IncomeObservation(end, start, yuan, 3, name, moment, "income_update")


def test_the_window_is_the_twelve_months_ending_with_the_month_before():
    assert income_window(D(2020, 5, 16), 12) == (D(2019, 5, 1), D(2020, 4, 30))
    assert income_window(D(2020, 1, 1), 12) == (D(2019, 1, 1), D(2019, 12, 31))
    assert income_window(D(2021, 3, 31), 3) == (D(2020, 12, 1), D(2021, 2, 28))


def test_each_day_takes_the_newest_figure_covering_it():
    old = observation(D(2019, 1, 1), D(2019, 12, 31), 7000, "baseline-2019")
    new = observation(D(2019, 11, 1), D(2020, 4, 30), 4000, "update-2020")
    window = income_over((old, new), D(2019, 5, 1), D(2020, 4, 30))
    assert window is not None
    # 184 days of 2019's figure (May..Oct), 182 of the newer one (Nov..Apr)
    assert [(o.event_id, days) for o, days in window.parts] == [
        ("baseline-2019", 184),
        ("update-2020", 182),
    ]
    assert window.per_capita_yuan == round((7000 * 184 + 4000 * 182) / 366)
    assert "over 2019-05-01..2020-04-30" in window.describe()


def test_a_figure_outside_the_window_counts_for_nothing():
    this_month = observation(D(2020, 5, 1), D(2020, 5, 31), 100, "may")
    assert income_over((this_month,), D(2019, 5, 1), D(2020, 4, 30)) is None


@st.composite
def observations(draw):
    items = []
    for n in range(draw(st.integers(1, 6))):
        start = D(2018, 6, 1) + dt.timedelta(days=draw(st.integers(0, 900)))
        end = start + dt.timedelta(days=draw(st.integers(0, 400)))
        items.append(observation(start, end, draw(st.integers(0, 50_000)), f"o{n}"))
    return tuple(sorted(items, key=lambda o: (o.on, o.occurred_at, o.event_id)))


@given(observations())
def test_the_figure_is_a_mean_of_the_figures_it_uses_over_the_days_they_cover(items):
    start, end = D(2019, 5, 1), D(2020, 4, 30)
    window = income_over(items, start, end)
    covered = {
        start + dt.timedelta(days=n)
        for n in range((end - start).days + 1)
        for o in items
        if o.period_start <= start + dt.timedelta(days=n) <= o.on
    }
    if window is None:
        assert not covered
        return
    assert window.covered_days == len(covered)
    used = [o.per_capita_yuan for o, _ in window.parts]
    assert min(used) <= window.per_capita_yuan <= max(used)


def test_a_household_below_the_line_only_last_year_is_not_below_it_now():
    # 2019's baseline below the 2020 line, then a full year above it: the reason goes when
    # the low months leave the window, not while they are in it
    records = [
        registry("h-win", at("2018-12-31"), baseline=(2018, 3000)),
        income("h-win", at("2019-06-30"), 9000, start="2019-01-01", end="2019-06-30"),
    ]
    state = fold("h-win", domain(records))
    early = assess(state, DIANJIANG, at("2019-04-10"))
    assert "income_below_line" in {r.code for r in early.reasons}
    (reason,) = [r for r in early.reasons if r.code == "income_below_line"]
    assert "over 2018-04-01..2019-03-31" in reason.message
    later = assess(state, DIANJIANG, at("2020-01-10"))
    assert "income_below_line" not in {r.code for r in later.reasons}


def test_the_worker_comes_back_when_the_window_moving_crosses_the_line():
    records = [
        registry("h-win", at("2018-12-31"), baseline=(2018, 3000)),
        income("h-win", at("2019-06-30"), 9000, start="2019-01-01", end="2019-06-30"),
    ]
    state = fold("h-win", domain(records))
    crossing = [
        d
        for d in (D(2019, m, 15) for m in range(7, 13))
        if income_crosses_next_month(state, DIANJIANG, dt.datetime.combine(d, dt.time(), dt.UTC))
    ]
    assert len(crossing) == 1  # once, the month the mean rises above the line
    when = dt.datetime.combine(crossing[0], dt.time(), dt.UTC)
    assessment = assess(state, DIANJIANG, when)
    assert next_deadline(assessment, DIANJIANG, state) <= D(
        crossing[0].year, crossing[0].month + 1, 1
    )


def test_a_visit_estimate_on_the_day_covers_the_window_before_it():
    records = [visit("h-est", at("2020-05-16"), income=3000)]
    assessment = assess(fold("h-est", domain(records)), DIANJIANG, at("2020-05-16", 20))
    (reason,) = [r for r in assessment.reasons if r.code == "income_below_line"]
    assert "3000 yuan per person over 2019-05-01..2020-04-30" in reason.message
