"""Support's service steps, without faust: what a household record leads to, in order."""

from __future__ import annotations

import datetime as dt

import pytest

from services.contract.catalogue import DEFAULT_CATALOGUE, load_catalogue
from services.contract.rejection import Rejected
from services.support.domain.matcher import Need
from services.support.domain.pool_commands import AllocateNeed, ReleaseMeasure
from services.support.domain.profile import MeasureStepRecorded
from services.support.service import ToPool, household_fact, household_step
from tests.unit.support.households import household

CATALOGUE = load_catalogue(DEFAULT_CATALOGUE)
AT = dt.datetime(2020, 6, 1, tzinfo=dt.UTC)


def step(measure_id: str, catalogue_id: str, pool: str | None, name: str) -> MeasureStepRecorded:
    return MeasureStepRecorded(
        event_id=f"e-{measure_id}-{name}", household_id="h-1", measure_id=measure_id,
        catalogue_id=catalogue_id, pool=pool, step=name, occurred_at=AT,
        measure_type="PUBLIC_WELFARE_JOB", cadre_id=None)  # fmt: skip


def test_planned_needs_go_to_their_pools_or_are_recommended_at_once_and_are_asked_once():
    profile = household("h-1")
    first = household_step(profile, "h-1", profile.assessment, CATALOGUE)
    assert first.effects and first.problem is None
    for effect in first.effects:
        assert (
            isinstance(effect, ToPool) and isinstance(effect.command, AllocateNeed)
            and effect.pool == effect.command.need.pool
        ) or (isinstance(effect, Need) and effect.pool is None)  # fmt: skip
    again = household_step(first.profile, "h-1", profile.assessment, CATALOGUE)
    assert again.effects == ()  # the profile records what it asked for


def test_a_closed_measure_releases_its_slot_before_anything_is_planned():
    profile = household("h-1")
    planned = household_step(profile, "h-1", profile.assessment, CATALOGUE)
    held = next(e.command.need for e in planned.effects if isinstance(e, ToPool))
    closed = step(held.measure_id, held.catalogue_id, held.pool, "CANCELLED")
    outcome = household_step(planned.profile, "h-1", closed, CATALOGUE)
    assert outcome.effects[0] == ToPool(held.pool, ReleaseMeasure(held.measure_id, "CANCELLED"))


def test_a_release_the_catalogue_cannot_place_is_a_problem_and_the_rest_applies():
    profile = household("h-1")
    outcome = household_step(profile, "h-1", step("m-x", "no.such", "county:x", "COMPLETED"),
                             CATALOGUE)  # fmt: skip
    assert "no.such" in outcome.problem
    assert "m-x" in outcome.profile.measures


def test_a_record_that_does_not_translate_is_rejected_as_invalid():
    with pytest.raises(Rejected) as rejected:
        household_fact("shouwang.events.RiskAssessed", {"household_id": "h-1"})
    assert rejected.value.kind == "INVALID"
    with pytest.raises(Rejected) as rejected:
        household_fact("shouwang.events.VisitRecorded", {})
    assert rejected.value.kind == "INVALID" and "VisitRecorded" in rejected.value.reason
