"""The fault scenarios' support check: a pool whose slot was released and given to the next in
the queue is not over capacity; one holding more open slots than it has is; support's own
cancellations are steps whose copies must be identical like its recommendations."""

from __future__ import annotations

import datetime as dt

from services.contract.catalogue import DEFAULT_CATALOGUE, load_catalogue
from services.support.adapters import avro_translation as avro
from services.support.domain.following import Cancellation
from services.support.domain.matcher import Need, Recommendation
from services.tools.faults.crashes import support_verdict

CATALOGUE = load_catalogue(DEFAULT_CATALOGUE)
POOL = "township:鹤游镇:industry-livestock"
CAPACITY = CATALOGUE.capacity(POOL)
NOW = dt.datetime(2020, 6, 1, tzinfo=dt.UTC)


def allocated(i: int) -> dict:
    need = Need(f"m-{i}", f"h-{i}", "industry.livestock", "INDUSTRY", POOL, 10, 3, "鹤游镇",
                "水井村", "rule", ("why",), f"a-{i}")  # fmt: skip
    return avro.recommended_record(Recommendation(need), NOW)


def cancelled(i: int, recorded: dt.datetime = NOW) -> dict:
    released = Cancellation(f"h-{i}", f"m-{i}", "industry.livestock", "INDUSTRY", POOL,
                            "household ELIMINATED", NOW)  # fmt: skip
    return avro.cancelled_record(released, recorded)


def test_a_released_slot_given_to_the_next_household_is_not_over_capacity():
    steps = [("support.measures", allocated(i)) for i in range(CAPACITY + 1)]
    by_id, differing, over, held = support_verdict(steps, CATALOGUE)
    assert over == {POOL: (CAPACITY + 1, CAPACITY)}  # the check can fail
    later = NOW + dt.timedelta(minutes=1)
    released = [
        *steps,
        ("support.measures", cancelled(0)),
        ("support.measures", cancelled(0, later)),
    ]
    by_id, differing, over, held = support_verdict(released, CATALOGUE)
    assert (over, differing, held) == ({}, [], CAPACITY)
    assert len(by_id) == CAPACITY + 2  # the resent cancellation is one step id
    recorded = {**allocated(1), "event_id": "e-done", "step": "COMPLETED", "actor": "cadre-1"}
    _, _, over, held = support_verdict([*steps, ("household.measures", recorded)], CATALOGUE)
    assert (over, held) == ({}, CAPACITY)


def test_copies_of_a_cancellation_that_differ_are_reported():
    changed = {**cancelled(0), "reasons": ["another reason"]}
    steps = [("support.measures", cancelled(0)), ("support.measures", changed)]
    _, differing, _, _ = support_verdict(steps, CATALOGUE)
    assert differing == [str(cancelled(0)["event_id"])]
