"""Laws of measures following the household, over generated households, pools and event orders:
households are planned and booked, then some leave the served states and some cancel measures
(with or without naming the pool), in a drawn order, through the real service steps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from services.contract.catalogue import Catalogue
from services.support.adapters import avro_translation as avro
from services.support.domain.matcher import Cadre, PoolState, Recommendation
from services.support.domain.pool_commands import ReleaseMeasure
from services.support.domain.profile import MeasureStepRecorded, Profile
from services.support.service import (
    ToPool,
    cadre_step,
    household_step,
    pairing_pool,
    pool_capacity,
    pool_step,
)
from tests import records
from tests.unit.support.households import AS_OF
from tests.unit.support.test_matcher_properties import PROPERTY, scenarios

LEAVING = ("ELIMINATED", "REJECTED", "NOT_FLAGGED")


@dataclass
class Simulation:
    """Support's two stages run in one process, each effect applied as soon as it is made."""

    catalogue: Catalogue
    profiles: dict[str, Profile] = field(default_factory=dict)
    pools: dict[str, PoolState] = field(default_factory=dict)
    left: set[str] = field(default_factory=set)  # households whose leaving was processed
    served_after_leaving: list[str] = field(default_factory=list)
    releases: list[ToPool] = field(default_factory=list)
    cancelled: list[tuple[str, str]] = field(default_factory=list)  # (household, measure) steps
    effects: int = 0

    def household(self, household_id: str, fact: object) -> None:
        outcome = household_step(
            self.profiles.get(household_id), household_id, fact, self.catalogue
        )
        self.profiles[household_id] = outcome.profile
        if getattr(fact, "workflow", None) in LEAVING:
            self.left.add(household_id)
        self.effects += len(outcome.effects)
        self.cancelled += [(c.household_id, c.measure_id) for c in outcome.cancellations]
        for effect in outcome.effects:
            if isinstance(effect, ToPool):
                self.pool(effect)

    def pool(self, send: ToPool) -> None:
        capacity = pool_capacity(self.catalogue, send.pool)
        state, decisions = pool_step(
            self.pools.get(send.pool, PoolState(send.pool)), send.command, capacity
        )
        self.pools[send.pool] = state
        if isinstance(send.command, ReleaseMeasure):
            self.releases.append(send)
        if capacity is not None:
            assert len(state.holders) <= capacity  # no pool goes over capacity, ever
        for cadre in state.cadres.values():
            assert state.cadre_load(cadre.cadre_id) <= cadre.max_households
        for decision in decisions:
            if isinstance(decision, Recommendation) and decision.need.household_id in self.left:
                self.served_after_leaving.append(decision.need.measure_id)

    def use(self) -> dict[str, tuple[frozenset[str], tuple[str, ...]]]:
        """Final pool use: who holds a place and who waits, in order, per pool instance in use
        (a pool first reached by a need that was released again is not in use)."""
        return {
            instance: (frozenset(state.holders), tuple(n.measure_id for n in state.waiting))
            for instance, state in sorted(self.pools.items())
            if state.holders or state.waiting
        }


def booked(profiles: list[Profile], catalogue: Catalogue, cadres: list[Cadre]) -> Simulation:
    simulation = Simulation(catalogue)
    pairing = pairing_pool(catalogue)
    for cadre in sorted(cadres, key=lambda c: c.cadre_id):
        simulation.pool(cadre_step(cadre, catalogue, pairing))
    for profile in profiles:
        simulation.profiles[profile.household_id] = profile  # its registry row and assessment
        simulation.household(profile.household_id, profile.assessment)
    return simulation


def leaving(household_id: str, workflow: str) -> object:
    _, record = records.risk(household_id, AS_OF + dt.timedelta(days=10), workflow=workflow)
    return avro.assessment_from(record)


def cancel(household_id: str, measure, with_pool: bool, day: int) -> MeasureStepRecorded:
    return MeasureStepRecorded(
        event_id=f"cancel-{measure.measure_id}", household_id=household_id,
        occurred_at=AS_OF + dt.timedelta(days=day), measure_id=measure.measure_id,
        step="CANCELLED", measure_type="?", catalogue_id=measure.catalogue_id,
        pool=measure.pool if with_pool else None, cadre_id=None,
    )  # fmt: skip


@st.composite
def late_events(draw, blocks: bool = False):
    """A booked scenario, then per household: maybe leaving, maybe cancelling some measures.

    With `blocks`, each household's events come together (other households' events before or
    after them, never between); otherwise households' events interleave freely.
    """
    profiles, catalogue, cadres = draw(scenarios())
    first = booked(profiles, catalogue, cadres)
    per_household: list[list[tuple[str, object]]] = []
    for household_id, profile in sorted(first.profiles.items()):
        mine: list[object] = []
        if draw(st.booleans()):
            mine.append(leaving(household_id, draw(st.sampled_from(LEAVING))))
        pooled = sorted(
            (m for m in profile.measures.values() if m.pool), key=lambda m: m.measure_id
        )
        for measure in draw(st.lists(st.sampled_from(pooled), unique=True)) if pooled else []:
            mine.append(
                cancel(household_id, measure, draw(st.booleans()), draw(st.integers(1, 20)))
            )
        per_household.append([(household_id, fact) for fact in draw(st.permutations(mine))])
    if blocks:
        order = [event for block in draw(st.permutations(per_household)) for event in block]
    else:
        order = draw(st.permutations([event for block in per_household for event in block]))
    return profiles, catalogue, cadres, order


def swapped_within_households(order: list[tuple[str, object]]) -> list[tuple[str, object]]:
    """The same order of households, each leaving household's own events (its release and its
    cancels) in reverse order. Households that stay keep theirs: a cancel lets the household's
    next measure of the group be asked for, and when it joins a queue decides its place there."""
    slots: dict[str, list[int]] = {}
    for index, (household_id, _) in enumerate(order):
        slots.setdefault(household_id, []).append(index)
    swapped = list(order)
    for indices in slots.values():
        if not any(getattr(order[i][1], "workflow", None) in LEAVING for i in indices):
            continue
        for index, source in zip(indices, reversed(indices), strict=True):
            swapped[index] = order[source]
    return swapped


def run(profiles, catalogue, cadres, order) -> Simulation:
    simulation = booked(profiles, catalogue, cadres)
    for household_id, fact in order:
        simulation.household(household_id, fact)
    return simulation


@PROPERTY
@given(late_events())
def test_a_household_that_left_holds_nothing_and_is_never_served_from_a_queue(scenario):
    simulation = run(*scenario)
    assert simulation.served_after_leaving == []
    for state in simulation.pools.values():
        holders = {h.household_id for h in state.holders.values()}
        waiting = {n.household_id for n in state.waiting}
        assert not (holders | waiting) & simulation.left


@PROPERTY
@given(late_events(blocks=True))
def test_the_order_of_a_households_release_and_its_cancels_does_not_change_pool_use(scenario):
    # Within the household's own events: when its places are freed among other households'
    # arrivals does change who is next in a queue (priority order), as it should.
    profiles, catalogue, cadres, order = scenario
    forward = run(profiles, catalogue, cadres, order)
    backward = run(profiles, catalogue, cadres, swapped_within_households(order))
    assert forward.use() == backward.use()


@PROPERTY
@given(late_events())
def test_releasing_is_idempotent(scenario):
    profiles, catalogue, cadres, order = scenario
    simulation = run(profiles, catalogue, cadres, order)
    pools, households = dict(simulation.pools), dict(simulation.profiles)
    for release in simulation.releases:  # each release once more, straight to its pool
        capacity = pool_capacity(catalogue, release.pool)
        again, decisions = pool_step(pools[release.pool], release.command, capacity)
        assert again == pools[release.pool] and decisions == []
    effects, cancelled = simulation.effects, list(simulation.cancelled)
    for household_id, fact in order:  # every late record redelivered
        simulation.household(household_id, fact)
    assert simulation.effects == effects  # nothing more sent
    assert simulation.cancelled == cancelled  # nor recorded
    assert simulation.pools == pools and simulation.profiles == households


@PROPERTY
@given(late_events())
def test_support_records_a_cancelled_step_for_each_release_of_its_own_and_only_those(scenario):
    simulation = run(*scenario)
    measures = [measure for _, measure in simulation.cancelled]
    assert len(measures) == len(set(measures))  # once each
    own = {r.command.measure_id for r in simulation.releases if r.command.reason}
    assert set(measures) == own  # a step the household recorded is not recorded again
    assert {household for household, _ in simulation.cancelled} <= simulation.left
