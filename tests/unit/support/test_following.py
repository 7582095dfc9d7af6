"""Measures follow the household: releases when it leaves the served states, the cooling of a
cancelled measure, and closing steps without a pool resolved from the booking."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest

from services.contract.catalogue import DEFAULT_CATALOGUE, CatalogueError, load_catalogue
from services.contract.catalogue_changes import changes, digest
from services.support.adapters import avro_translation as avro
from services.support.adapters.pool_codec import dump_command, load_command
from services.support.adapters.table_codec import dump_profile, load_profile
from services.support.domain.pool_commands import AllocateNeed, ReleaseMeasure
from services.support.domain.profile import MeasureStepRecorded, Profile
from services.support.service import ToPool, household_step
from tests import records
from tests.unit.support.households import AS_OF, household

CATALOGUE = load_catalogue(DEFAULT_CATALOGUE)
JOBS = "county:public-welfare-jobs"
# Weak labour only: eligible for a public-welfare job (a slot pool) and a pairing cadre.
MAKEUP = {"labour": 0, "weak_labour": 1, "students": 1, "chronically_ill": 1}


def assessed(
    profile: Profile, days: int, workflow: str = "MONITORED", reasons: tuple[str, ...] = ()
) -> object:
    """The household's assessment `days` after AS_OF, as support's translation reads it."""
    _, record = records.risk(
        profile.household_id, AS_OF + dt.timedelta(days=days), workflow=workflow,
        reasons=[{"code": c, "message": "", "event_ids": []} for c in reasons],
    )  # fmt: skip
    return avro.assessment_from(record)


def closing(measure_id: str, catalogue_id: str, pool: str | None, step: str, days: int):
    return MeasureStepRecorded(
        event_id=f"e-{measure_id}-{step}", household_id="h-1", measure_id=measure_id,
        catalogue_id=catalogue_id, pool=pool, step=step, cadre_id=None,
        occurred_at=AS_OF + dt.timedelta(days=days), measure_type="PUBLIC_WELFARE_JOB",
    )  # fmt: skip


def served(reasons: tuple[str, ...] = ("rigid_expenditure",)):
    """A monitored household after its first planning: the profile and the needs it booked."""
    profile = household("h-1", reasons=reasons, **MAKEUP)
    outcome = household_step(profile, "h-1", profile.assessment, CATALOGUE)
    booked = [e.command.need for e in outcome.effects if isinstance(e, ToPool)]
    assert any(n.pool == JOBS for n in booked)
    return outcome.profile, booked


@pytest.mark.parametrize("workflow", ["ELIMINATED", "REJECTED", "NOT_FLAGGED"])
def test_leaving_the_served_states_releases_every_booked_place_with_the_reason(workflow):
    profile, booked = served()
    left = assessed(profile, 30, workflow)
    outcome = household_step(profile, "h-1", left, CATALOGUE)
    releases = [e for e in outcome.effects if isinstance(e.command, ReleaseMeasure)]
    assert sorted((r.pool, r.command.measure_id) for r in releases) == sorted(
        (n.pool, n.measure_id) for n in booked
    )
    assert len(outcome.effects) == len(releases)  # and nothing planned
    for release in releases:
        assert release.command.step == "CANCELLED"
        assert f"household {workflow} as of 2020-06-15" in release.command.reason
        assert left.event_id in release.command.reason and release.pool in release.command.reason
        state = outcome.profile.measures[release.command.measure_id]
        assert state.step == "CANCELLED" and state.released == release.command.reason
    again = household_step(outcome.profile, "h-1", left, CATALOGUE)
    assert again.effects == () and again.profile == outcome.profile  # releasing is idempotent


def test_a_proposed_elimination_keeps_what_the_household_holds_until_decided():
    profile, _ = served()
    outcome = household_step(profile, "h-1", assessed(profile, 30, "ELIMINATION_PROPOSED"),
                             CATALOGUE)  # fmt: skip
    assert outcome.effects == ()
    assert all(m.open for m in outcome.profile.measures.values())


def test_a_closing_step_without_a_pool_frees_the_pool_the_measure_id_booked():
    profile, booked = served()
    job = next(n for n in booked if n.pool == JOBS)
    outcome = household_step(profile, "h-1", closing(job.measure_id, job.catalogue_id, None,
                                                     "CANCELLED", 3), CATALOGUE)  # fmt: skip
    assert outcome.problem is None
    assert outcome.effects == (ToPool(JOBS, ReleaseMeasure(job.measure_id, "CANCELLED")),)
    assert outcome.profile.measures[job.measure_id].pool == JOBS  # the booking is remembered


def test_a_closing_step_without_a_pool_that_support_never_booked_is_reported():
    profile, _ = served()
    step = closing("m-unknown", "employment.public-welfare-job", None, "COMPLETED", 3)
    outcome = household_step(profile, "h-1", step, CATALOGUE)
    assert outcome.effects == ()
    assert "names no pool" in outcome.problem and "m-unknown" in outcome.problem
    assert outcome.profile.measures["m-unknown"].step == "COMPLETED"  # the step still applies


def test_a_step_closing_a_released_measure_releases_nothing_twice():
    profile, booked = served()
    released = household_step(profile, "h-1", assessed(profile, 30, "ELIMINATED"), CATALOGUE)
    job = next(n for n in booked if n.pool == JOBS)
    late = closing(job.measure_id, job.catalogue_id, JOBS, "CANCELLED", 31)
    outcome = household_step(released.profile, "h-1", late, CATALOGUE)
    assert outcome.effects == () and outcome.problem is None


def cancelled_job(days: int = 3):
    profile, booked = served()
    job = next(n for n in booked if n.pool == JOBS)
    step = closing(job.measure_id, job.catalogue_id, JOBS, "CANCELLED", days)
    return household_step(profile, "h-1", step, CATALOGUE).profile, job


def job_requests(outcome) -> list:
    return [
        e
        for e in outcome.effects
        if isinstance(e, ToPool) and isinstance(e.command, AllocateNeed) and e.pool == JOBS
    ]


def test_a_cancelled_measure_is_not_offered_again_by_the_same_pool_while_nothing_changed():
    profile, _ = cancelled_job()
    same = assessed(profile, 30, reasons=("rigid_expenditure",))
    assert job_requests(household_step(profile, "h-1", same, CATALOGUE)) == []
    # What the household got before: the next assessment queued it for the same pool again.
    no_cooling = replace(CATALOGUE, cooling_days=0)
    assert len(job_requests(household_step(profile, "h-1", same, no_cooling))) == 1


def test_a_new_reason_ends_the_cooling():
    profile, _ = cancelled_job()
    changed = assessed(profile, 30, reasons=("rigid_expenditure", "sharp_income_fall"))
    assert len(job_requests(household_step(profile, "h-1", changed, CATALOGUE))) == 1


def test_the_cooling_period_is_the_catalogues():
    profile, _ = cancelled_job(days=3)
    assert CATALOGUE.cooling_days == 90
    before = assessed(profile, 3 + 89, reasons=("rigid_expenditure",))
    after = assessed(profile, 3 + 90, reasons=("rigid_expenditure",))
    assert job_requests(household_step(profile, "h-1", before, CATALOGUE)) == []
    assert len(job_requests(household_step(profile, "h-1", after, CATALOGUE))) == 1
    short = replace(CATALOGUE, cooling_days=10)
    assert len(job_requests(household_step(profile, "h-1", before, short))) == 1


def test_a_release_by_support_does_not_cool_a_household_that_comes_back():
    profile, _ = served()
    released = household_step(profile, "h-1", assessed(profile, 10, "ELIMINATED"), CATALOGUE)
    back = assessed(profile, 20, "MONITORED", reasons=("rigid_expenditure",))
    assert len(job_requests(household_step(released.profile, "h-1", back, CATALOGUE))) == 1


def test_released_and_cooling_facts_survive_the_table_and_old_rows_still_read():
    profile, _ = cancelled_job()
    released = household_step(profile, "h-1", assessed(profile, 10, "ELIMINATED"), CATALOGUE)
    assert load_profile(dump_profile(released.profile)) == released.profile
    row = json.loads(dump_profile(released.profile))
    row["measures"] = [m[:5] for m in row["measures"]]  # as written before this change
    old = load_profile(json.dumps(row).encode())
    assert all(m.released == "" and m.basis == () for m in old.measures.values())


def test_a_release_reason_travels_on_the_pool_topic_and_old_releases_still_read():
    command = ReleaseMeasure("m-1", "CANCELLED", "household ELIMINATED as of 2020-06-15")
    assert load_command(dump_command(command)) == command
    old = json.dumps({"release": "m-1", "step": "COMPLETED"}).encode()
    assert load_command(old) == ReleaseMeasure("m-1", "COMPLETED", "")


def catalogue_text(extra: str) -> str:
    text = DEFAULT_CATALOGUE.read_text(encoding="utf-8")
    for line in ('hold_workflows = ["ELIMINATION_PROPOSED"]\n', "cooling_days = 90\n"):
        assert line in text
        text = text.replace(line, "")
    serve = 'serve_workflows = ["FLAGGED", "VERIFYING", "MONITORED"]\n'
    return text.replace(serve, serve + extra)


def test_catalogue_defaults_and_checks_for_cooling_and_hold_workflows(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(catalogue_text(""), encoding="utf-8")
    defaults = load_catalogue(path)
    assert defaults.cooling_days == 90 and defaults.hold_workflows == {"ELIMINATION_PROPOSED"}
    path.write_text(catalogue_text('cooling_days = -1\nhold_workflows = ["GONE"]\n'), "utf-8")
    with pytest.raises(CatalogueError) as error:
        load_catalogue(path)
    wheres = {where for where, _ in error.value.problems}
    assert {"catalogue.cooling_days", "catalogue.hold_workflows"} <= wheres
    path.write_text(catalogue_text("cooling_days = 30\n"), "utf-8")
    shorter = load_catalogue(path)
    assert shorter.cooling_days == 30
    found = changes(digest(defaults, b"a"), digest(shorter, b"b"))
    assert [c.item for c in found] == ["cooling_days"]
