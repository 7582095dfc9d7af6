"""Measures follow the household: releases when it leaves the served states, the cooling of a
cancelled measure, and closing steps without a pool resolved from the booking."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest

from services.contract.catalogue import DEFAULT_CATALOGUE, CatalogueError, load_catalogue
from services.contract.catalogue_changes import changes, digest
from services.contract.codec import Codec
from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.domain.assess import assess
from services.monitoring.domain.fold import fold
from services.support.adapters import avro_translation as avro
from services.support.adapters.pool_codec import dump_command, load_command
from services.support.adapters.table_codec import dump_profile, load_profile
from services.support.domain.following import AFTER_DECISION, Cancellation
from services.support.domain.pool_commands import AllocateNeed, ReleaseMeasure
from services.support.domain.profile import MeasureStepRecorded, Profile
from services.support.service import ToPool, household_step
from tests import records
from tests.unit.monitoring.events import domain as monitoring_domain
from tests.unit.support.households import AS_OF, household

CATALOGUE = load_catalogue(DEFAULT_CATALOGUE)
JOBS = "county:public-welfare-jobs"
POLICIES = load_policies()
NOW = dt.datetime(2026, 12, 4, 19, 0, tzinfo=dt.UTC)  # the worker's wall clock: recorded_at only
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


@pytest.mark.parametrize("workflow", ["ELIMINATED", "REJECTED", "NOT_FLAGGED"])
def test_each_release_is_recorded_as_a_cancelled_step_with_its_reason(workflow):
    profile, booked = served()
    left = assessed(profile, 30, workflow)
    outcome = household_step(profile, "h-1", left, CATALOGUE)
    released = {e.command.measure_id: e for e in outcome.effects}
    assert {c.measure_id for c in outcome.cancellations} == set(released) != set()
    codec = Codec.default()
    for cancellation in outcome.cancellations:
        release = released[cancellation.measure_id]
        assert (cancellation.pool, cancellation.reason) == (release.pool, release.command.reason)
        record = avro.cancelled_record(cancellation, NOW)
        assert codec.validate(avro.MEASURE_STEP, record) == []
        assert record["step"] == "CANCELLED" and record["actor"] == "support"
        assert record["reasons"] == [release.command.reason]
        assert f"household {workflow}" in record["reasons"][0]
        need = next(n for n in booked if n.measure_id == cancellation.measure_id)
        assert (record["catalogue_id"], record["measure_type"]) == (
            need.catalogue_id,
            need.measure_type,
        )
        # Dated just after the assessment that caused it, never at the wall clock's time.
        assert record["occurred_at"] == left.as_of + AFTER_DECISION
        assert record["event_id"] == avro.step_id(cancellation.measure_id, "cancelled")
    # A retry from the stored profile (the row is stored after the sends) decides the same
    # records; once stored, a redelivered assessment records nothing more.
    retried = household_step(load_profile(dump_profile(profile)), "h-1", left, CATALOGUE)
    later = NOW + dt.timedelta(hours=1)
    assert [avro.cancelled_record(c, later) for c in retried.cancellations] == [
        {**avro.cancelled_record(c, NOW), "recorded_at": later} for c in outcome.cancellations
    ]
    assert household_step(outcome.profile, "h-1", left, CATALOGUE).cancellations == ()


def test_a_step_someone_recorded_is_not_recorded_again_by_support():
    profile, booked = served()
    job = next(n for n in booked if n.pool == JOBS)
    step = closing(job.measure_id, job.catalogue_id, None, "CANCELLED", 3)
    outcome = household_step(profile, "h-1", step, CATALOGUE)
    assert outcome.effects and outcome.cancellations == ()  # it is on household.measures


def _eliminated(*, cancelled_at: dt.timedelta | None):
    """A household monitored six months, its migrant work delivered, then eliminated; with
    support's cancellation of that measure `cancelled_at` after the decision, if given."""
    hid = "h-elim"
    decided = records.at("2020-11-25")  # the exit procedure opens once the conditions hold
    history = [
        records.registry(hid, records.at("2019-12-31"), count=3, labour=2, baseline=(2019, 5200)),
        *records.approved(hid, records.at("2020-05-16"), "INCLUDE", "UNSTABLE_LIFTED"),
        records.measure(
            hid,
            records.at("2020-06-01"),
            "m-jobs",
            "DELIVERED",
            "MIGRANT_WORK",
            "employment.migrant-work",
            pool="county:migrant-work",
        ),
        records.income(hid, records.at("2020-06-05"), 7600, start="2019-06-01", end="2020-05-31"),
        records.visit(hid, records.at("2020-08-20"), visit_id="v-aug", income=7800),
        *records.approved(hid, decided, "ELIMINATE"),
    ]
    if cancelled_at is not None:
        released = Cancellation(hid, "m-jobs", "employment.migrant-work", "MIGRANT_WORK",
                                "county:migrant-work", "household ELIMINATED",
                                decided + cancelled_at)  # fmt: skip
        history.append((avro.MEASURE_STEP, avro.cancelled_record(released, decided)))
    state = fold(hid, monitoring_domain(history))
    # Monitoring's event clock: the assessment is as of the latest event.
    return assess(state, POLICIES.get("dianjiang-2020"), max(r[1]["occurred_at"] for r in history))


def test_supports_cancellation_never_becomes_a_ground_against_the_elimination_it_follows():
    before = _eliminated(cancelled_at=None)
    assert before.workflow == "ELIMINATED"
    assert "policy_exception" not in {r.code for r in before.reasons}
    after = _eliminated(cancelled_at=AFTER_DECISION)
    assert after.workflow == "ELIMINATED"
    assert "policy_exception" not in {r.code for r in after.reasons}
    # Dated at the decision's own instant, the cancelled measure would no longer count as
    # received when monitoring re-judges the decision: why releases are dated just after.
    same_instant = _eliminated(cancelled_at=dt.timedelta(0))
    exception = next(r for r in same_instant.reasons if r.code == "policy_exception")
    assert "measure(s) received" in exception.message
