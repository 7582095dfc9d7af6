"""Support's steps, called by the faust agents: a household's record folded and planned, a
cadre routed to its pool, a command applied to a pool. No faust and no wall clock here: the
agents hold the tables and the outbox, and pass the time in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.contract.catalogue import Catalogue
from services.contract.inputs import SUPPORT_INPUTS
from services.contract.rejection import INVALID, NOT_APPLICABLE, Rejected
from services.support.adapters import avro_translation as avro
from services.support.domain.following import AFTER_DECISION, Cancellation, to_release
from services.support.domain.matcher import (
    Cadre,
    Need,
    PoolState,
    Recommendation,
    Waiting,
    allocate,
    plan,
    release,
    standing,
    with_cadre,
)
from services.support.domain.pool_commands import (
    AllocateNeed,
    PoolCommand,
    ReleaseMeasure,
    UpdateCadre,
)
from services.support.domain.profile import (
    MeasureReleased,
    MeasureRequested,
    MeasureStepRecorded,
    Profile,
    apply,
)

HOUSEHOLD_INPUTS = tuple(topic.name for topic in SUPPORT_INPUTS)  # declared in the contract
# The record type each household input carries (the contract's), and below its translation
# into support's domain.
EXPECTED = {topic.name: topic.event_type for topic in SUPPORT_INPUTS}
TRANSLATE: dict[str, Callable[[dict[str, Any]], object]] = {
    "HouseholdRegistryRecorded": avro.registry_from,
    "RiskAssessed": avro.assessment_from,
    "MeasureStepRecorded": avro.step_from,
}
Decision = Recommendation | Waiting | Need  # what a step recommends (a Need: no capacity limit)


@dataclass(frozen=True)
class ToPool:
    """A command for the owner of pool instance `pool`."""

    pool: str
    command: PoolCommand


@dataclass(frozen=True)
class HouseholdOutcome:
    """A household record applied: the profile to store and what to send, in order.

    `effects` holds pool commands and needs without a capacity limit (recommended at once).
    `cancellations` are the steps recording the releases among them, sent after them.
    `problem` is set when a release names a measure or pool the catalogue does not know: the
    record is dead-lettered for it, and the rest of the outcome still applies.
    """

    profile: Profile
    effects: tuple[ToPool | Need, ...]
    problem: str | None = None
    cancellations: tuple[Cancellation, ...] = ()


def household_fact(event_type: str, record: dict[str, Any]) -> object:
    """The domain fact of a decoded household record; Rejected(INVALID) if it does not translate.

    `event_type` is the decoded record's (full or short) type: on the household topics the
    codec has already checked it is the topic's.
    """
    translate = TRANSLATE.get(event_type.rsplit(".", 1)[-1])
    if translate is None:
        raise Rejected(INVALID, f"support's household stage does not consume {event_type}")
    try:
        return translate(record)
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejected(INVALID, f"{type(exc).__name__}: {exc}") from exc


def cadre_fact(record: dict[str, Any]) -> Cadre:
    """The cadre of a decoded cadre record; Rejected(INVALID) if it does not translate."""
    try:
        return avro.cadre_from(record)
    except (KeyError, TypeError, ValueError) as exc:
        raise Rejected(INVALID, f"{type(exc).__name__}: {exc}") from exc


def household_step(
    stored: Profile | None, household_id: str, fact: object, catalogue: Catalogue
) -> HouseholdOutcome:
    """Fold `fact` into the household's profile, release what a closed measure held, release
    everything when the household left the states that may hold support, then plan."""
    before = stored or Profile(household_id)
    profile = apply(before, fact)
    effects: list[ToPool | Need] = []
    cancellations: list[Cancellation] = []
    problem = None
    if isinstance(fact, MeasureStepRecorded) and fact.step in ("COMPLETED", "CANCELLED"):
        release, problem = _step_release(before, fact, catalogue)
        effects.extend(release)
    for measure, pool, reason, at in to_release(profile, catalogue):
        profile = apply(profile, MeasureReleased(measure.measure_id, reason, at))
        effects.append(ToPool(pool, ReleaseMeasure(measure.measure_id, "CANCELLED", reason)))
        kind = _measure_type(catalogue, measure.catalogue_id)
        cancellations.append(Cancellation(household_id, measure.measure_id, measure.catalogue_id,
                                          kind, pool, reason, at + AFTER_DECISION))  # fmt: skip
    for need in plan(profile, catalogue):
        profile = apply(profile, MeasureRequested(need.measure_id, need.catalogue_id, need.pool))
        effects.append(need if need.pool is None else ToPool(need.pool, AllocateNeed(need)))
    return HouseholdOutcome(profile, tuple(effects), problem, tuple(cancellations))


def _measure_type(catalogue: Catalogue, catalogue_id: str) -> str:
    # A measure booked under an earlier catalogue may be gone from this one: the contract's
    # default type then (the read model keeps the type its recommendation gave the row).
    try:
        return catalogue.measure(catalogue_id).type
    except KeyError:
        return "OTHER"


def _step_release(
    before: Profile, fact: MeasureStepRecorded, catalogue: Catalogue
) -> tuple[list[ToPool], str | None]:
    """The release a closing step asks for, and the problem that keeps it from being sent.

    The pool is the one support booked the measure id in (its profile remembers it), else the
    one the step names: a step without a pool still frees the booking. A step for a pooled
    catalogue entry whose booking neither names is reported, never silently dropped.
    """
    known = before.measures.get(fact.measure_id)
    if known is not None and not known.open:
        return [], None  # already closed (or released): its place was freed then
    pool = known.pool if known is not None and known.pool else fact.pool
    try:
        measure = catalogue.measure(fact.catalogue_id)
        if pool is not None:
            catalogue.pool_of_instance(pool)
    except KeyError:
        if pool is None:
            return [], None  # not a catalogue measure and no pool: nothing was booked for it
        return [], (
            f"measure {fact.catalogue_id!r} or pool {pool!r} is not in catalogue {catalogue.id}"
        )
    if pool is None:
        if measure.pool is None:
            return [], None  # no capacity limit: nothing to free
        return [], (
            f"{fact.step} step {fact.event_id} for measure {fact.measure_id} ({measure.id}) names "
            f"no pool and support booked none for that measure id: nothing released"
        )
    if fact.step not in measure.releases_on:
        return [], None
    return [ToPool(pool, ReleaseMeasure(fact.measure_id, fact.step))], None


def pairing_pool(catalogue: Catalogue) -> str:
    """The pool of the catalogue's pairing measure: where cadres are."""
    return next(m.pool for m in catalogue.measures if m.type == "PAIRING")


def cadre_step(cadre: Cadre, catalogue: Catalogue, pairing: str) -> ToPool:
    """The cadre, sent to the pairing pool instance of their township."""
    return ToPool(catalogue.pools[pairing].instance(cadre.township), UpdateCadre(cadre))


def pool_capacity(catalogue: Catalogue, instance: str) -> int | None:
    """Slots of pool `instance`; Rejected(NOT_APPLICABLE) if the catalogue has no such pool."""
    try:
        return catalogue.capacity(instance)
    except KeyError as exc:
        raise Rejected(
            NOT_APPLICABLE, f"pool {instance!r} is not in catalogue {catalogue.id}"
        ) from exc


def pool_step(
    state: PoolState, command: PoolCommand, capacity: int | None
) -> tuple[PoolState, list[Decision]]:
    """Apply one command to a pool; the decisions to emit (safe to run twice: a need the pool
    already knows gets its standing decision again)."""
    match command:
        case AllocateNeed(need):
            state, decisions = allocate(state, need, capacity)
            return state, decisions or standing(state, need)
        case ReleaseMeasure(measure_id, _):
            return release(state, measure_id, capacity)
        case UpdateCadre(cadre):
            return with_cadre(state, cadre)
    raise TypeError(f"not a pool command: {command!r}")
