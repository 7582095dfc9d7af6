"""The one rule for a visit problem's id (services/contract/problem_ids.py): the read model's
projector and the monitoring fold must name a visit's problems alike, or a rectification on the
problem list would close the problem in one and not the other."""

from __future__ import annotations

import datetime as dt

import pytest

from services.contract.codec import Codec
from services.contract.problem_ids import record_findings, visit_problem_id
from services.monitoring.domain.fold import fold
from services.monitoring.domain.problems import problems_at
from tests import records
from tests.unit.monitoring.events import domain

CODEC = Codec.default()
T0 = dt.datetime(2020, 5, 16, 10, 0, tzinfo=dt.UTC)

VISITS = {
    "listed and implied": dict(
        checks={"housing": "PROBLEM", "education": "PROBLEM"},
        card="OUTDATED",
        living="DIRTY",
        problems=(
            ("HOUSING", "roof leaks", False),
            ("HOUSING", "damp", True),
            ("POLICY_CARD", "明白卡掉了", True),
        ),
    ),
    "nothing wrong": dict(),
    "only checks": dict(checks={"water": "PROBLEM", "food": "NOT_CHECKED"}, card="MISSING"),
}


@pytest.mark.parametrize("fields", VISITS.values(), ids=VISITS.keys())
def test_the_read_model_and_monitoring_name_a_visits_problems_alike(fields):
    event = records.visit("h-1", T0, visit_id="v-7", **fields)
    decoded = CODEC.decode(CODEC.encode(*event)).record
    ids = [f.problem_id for f in record_findings(decoded)]
    assert len(set(ids)) == len(ids)
    monitored = problems_at(fold("h-1", domain([event])), T0 + dt.timedelta(hours=1))
    assert sorted(ids) == sorted(monitored)
    fixed = {f.problem_id for f in record_findings(decoded) if f.fixed_on_spot}
    assert fixed == {pid for pid, p in monitored.items() if not p.open}


def test_a_second_problem_of_a_kind_is_numbered():
    assert visit_problem_id("v-7", "HOUSING", 1) == "v-7/HOUSING"
    assert visit_problem_id("v-7", "HOUSING", 2) == "v-7/HOUSING/2"


@pytest.mark.parametrize("fields", VISITS.values(), ids=VISITS.keys())
def test_the_read_model_and_monitoring_agree_on_what_a_visit_found_secured(fields):
    from services.contract.problem_ids import record_secured
    from services.monitoring.domain.problems import _secured_kinds

    event = records.visit("h-1", T0, visit_id="v-7", **fields)
    decoded = CODEC.decode(CODEC.encode(*event)).record
    [visit] = domain([event])
    assert set(record_secured(decoded)) == _secured_kinds(visit)
