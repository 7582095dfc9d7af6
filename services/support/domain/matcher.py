"""The pure matcher: which measures a household needs, and who gets a pool's limited slots.

Two steps, so the faust app can run each where its state lives:

- `plan(profile, catalogue)` turns one household's profile into `Need`s: the pairing cadre,
  developmental or protective measures by eligibility, and the measures answering each risk
  reason. Each need carries the rule and reason that produced it.
- `allocate` / `release` / `with_cadre` decide, for one capacity pool, who holds a slot and who
  waits, never exceeding capacity. Pairing pools allocate cadres (same village first, then the
  least-loaded cadre of the township, within each cadre's maximum).

`match` composes both over many households, for batch use and for the properties in the tests.

Long because the two steps share their records (`Need`, `PoolState`, `Matching`) and `match`
composes them; each step alone is under 200 lines.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from services.contract.catalogue import Catalogue, Eligibility, Measure, Quantity
from services.contract.members import age_on, composition_on
from services.support.domain.following import cooling
from services.support.domain.profile import Profile, RegistryRecorded, RiskAssessed

# Fixed namespace: measure ids are uuid5 of (household, catalogue entry, triggering assessment),
# so replaying the same assessment asks for the same measure and a pool can recognise it.
MEASURE_NAMESPACE = uuid.UUID("6f1c1f4e-4a0b-5d7e-9a55-2f1b8d0c5e11")
URGENCY = {"NONE": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3}


@dataclass(frozen=True)
class Cadre:
    cadre_id: str
    township: str
    village: str | None
    department: str
    max_households: int
    active: bool = True


@dataclass(frozen=True)
class Need:
    """A measure one household should get, and why; allocated or queued by its pool."""

    measure_id: str
    household_id: str
    catalogue_id: str
    measure_type: str
    pool: str | None  # pool instance, e.g. county:public-welfare-jobs; None: no capacity limit
    priority: int
    urgency: int
    township: str
    village: str
    rule: (
        str  # which catalogue rule produced it, e.g. "reason unsold_produce → sales.produce-buyers"
    )
    reasons: tuple[str, ...]  # human-readable explanation lines
    trigger_event_id: str
    # ISO time the triggering assessment speaks for: the recommendation happened then, in
    # campaign time, not when a worker (re)processed it. "" for needs queued by older workers.
    triggered_at: str = ""
    amount_yuan: int | None = None
    term_months: int | None = None
    quantities: tuple[Quantity, ...] = ()

    @property
    def queue_key(self) -> tuple[int, int]:
        return (self.priority, -self.urgency)


@dataclass(frozen=True)
class Recommendation:
    need: Need
    cadre_id: str | None = None


@dataclass(frozen=True)
class Waiting:
    need: Need
    pool: str
    position: int  # 1 = next to be served


@dataclass(frozen=True)
class Holding:
    household_id: str
    cadre_id: str | None = None


@dataclass(frozen=True)
class PoolState:
    """One pool instance's use. Idempotent: a measure id is held, waiting or closed, once."""

    pool: str
    holders: Mapping[str, Holding] = field(default_factory=lambda: MappingProxyType({}))
    waiting: tuple[Need, ...] = ()
    closed: frozenset[str] = frozenset()
    cadres: Mapping[str, Cadre] = field(default_factory=lambda: MappingProxyType({}))

    def knows(self, measure_id: str) -> bool:
        return (
            measure_id in self.holders
            or measure_id in self.closed
            or any(n.measure_id == measure_id for n in self.waiting)
        )

    def cadre_load(self, cadre_id: str) -> int:
        return sum(1 for h in self.holders.values() if h.cadre_id == cadre_id)

    def cadre_capacity(self) -> int:
        return sum(c.max_households for c in self.cadres.values() if c.active)


@dataclass(frozen=True)
class Matching:
    recommendations: tuple[Recommendation, ...]
    waiting: tuple[Waiting, ...]
    pools: Mapping[str, PoolState]


def measure_id_for(household_id: str, catalogue_id: str, trigger_event_id: str) -> str:
    return str(uuid.uuid5(MEASURE_NAMESPACE, f"{household_id}|{catalogue_id}|{trigger_event_id}"))


def ineligibility(rule: Eligibility, profile: Profile) -> list[str]:
    """The conditions of `rule` the household fails, as readable phrases; empty if eligible."""
    registry, assessment = profile.registry, profile.assessment
    if registry is None:
        return ["household registry not known"]
    # With a member list, the counts are the list's on the assessment's date (ages move on);
    # without one, the registry's counts as recorded.
    on = assessment.as_of.date() if assessment is not None else registry.occurred_at.date()
    m = composition_on(registry.people, on) if registry.people else registry.members
    any_labour = m.labour + m.weak_labour
    failed = []

    def at_least(name: str, value: int, minimum: int | None) -> None:
        if minimum is not None and value < minimum:
            failed.append(f"{name} {value} < {minimum}")

    def at_most(name: str, value: int, maximum: int | None) -> None:
        if maximum is not None and value > maximum:
            failed.append(f"{name} {value} > {maximum}")

    at_least("labour", m.labour, rule.labour_min)
    at_most("labour", m.labour, rule.labour_max)
    at_least("weak labour", m.weak_labour, rule.weak_labour_min)
    at_least("labour incl. weak", any_labour, rule.any_labour_min)
    at_most("labour incl. weak", any_labour, rule.any_labour_max)
    at_least("students", m.students, rule.students_min)
    at_least("disabled", m.disabled, rule.disabled_min)
    at_least("chronically ill", m.chronically_ill, rule.chronically_ill_min)
    at_most("chronically ill", m.chronically_ill, rule.chronically_ill_max)
    at_least("elderly", m.elderly, rule.elderly_min)
    if rule.head_age_min is not None or rule.head_age_max is not None:
        failed.extend(_borrower_age(rule, registry, assessment))
    for name, value, allowed in (
        ("livelihood", registry.livelihood, rule.livelihood_in),
        ("housing", registry.housing, rule.housing_in),
        ("water", registry.water, rule.water_in),
        ("category", assessment.category if assessment else None, rule.category_in),
        ("registration", registry.registration, rule.registration_in),
    ):
        if allowed is not None and value not in allowed:
            failed.append(f"{name} {value} not in {', '.join(allowed)}")
    if (
        rule.minimum_living_allowance is not None
        and registry.minimum_living_allowance != rule.minimum_living_allowance
    ):
        failed.append(
            "already receives the minimum living allowance"
            if registry.minimum_living_allowance
            else "does not receive the minimum living allowance"
        )
    return failed


def _borrower_age(
    rule: Eligibility, registry: RegistryRecorded, assessment: RiskAssessed | None
) -> list[str]:
    """The age condition (microcredit: borrowers aged 18-65, DOMAIN.md). With a member list,
    a member with labour (full, partial or weak) whose age on the assessment's date is within
    it can borrow, whoever heads the household; without one, the head's age by birth year."""
    low, high = rule.head_age_min, rule.head_age_max
    if assessment is None:
        return ["age unknown without an assessment"]
    day = assessment.as_of.date()
    bounds = f"{low if low is not None else 0}-{high if high is not None else '∞'}"
    if registry.people:
        ages = [
            age_on(p.birth_year, p.birth_month, day) for p in registry.people if p.labour != "NONE"
        ]
        if any((low is None or a >= low) and (high is None or a <= high) for a in ages):
            return []
        return [f"no member with labour aged {bounds} on {day.isoformat()}"]
    if registry.head_birth_year is None:
        return ["head of household's age unknown"]
    age = day.year - registry.head_birth_year
    if (low is not None and age < low) or (high is not None and age > high):
        return [f"head's age {age} not in {bounds}"]
    return []


def plan(profile: Profile, catalogue: Catalogue) -> tuple[Need, ...]:
    """The measures `profile`'s household needs now and does not already have or had asked.

    Nothing while the household is not in a served workflow state or its registry is unknown.
    Within a catalogue group only the eligible entry with the lowest priority number is chosen;
    a group with an open measure is left alone. An entry whose slot pool the household cancelled
    recently is skipped while its cooling period lasts (`following.cooling`), so the group's
    next eligible entry may be chosen instead.
    """
    registry, assessment = profile.registry, profile.assessment
    if registry is None or assessment is None:
        return ()
    if assessment.workflow not in catalogue.serve_workflows:
        return ()
    open_ids = profile.open_catalogue_ids()
    open_groups = {m.group for m in catalogue.measures if m.id in open_ids}
    triggers: dict[str, list[str]] = {}
    for code in assessment.reason_codes:
        for measure_id in catalogue.reasons.get(code, ()):
            triggers.setdefault(measure_id, []).append(code)
    needs: list[Need] = []
    chosen_groups: set[str] = set()
    for measure in catalogue.measures:  # ordered by (priority, id)
        if measure.group in open_groups or measure.group in chosen_groups:
            continue
        codes = triggers.get(measure.id, [])
        if measure.trigger == "reason" and not codes:
            continue
        if ineligibility(measure.eligible, profile) or _cooling(profile, measure, catalogue):
            continue
        measure_id = measure_id_for(profile.household_id, measure.id, assessment.event_id)
        if measure_id in profile.measures:
            continue  # asked for once already for this assessment (maybe completed since)
        chosen_groups.add(measure.group)
        needs.append(_need(profile, measure, measure_id, codes, catalogue))
    return tuple(needs)


def _cooling(profile: Profile, measure: Measure, catalogue: Catalogue) -> bool:
    # Only slot pools cool: a household's pairing cadre is not an offer it can turn down for a
    # season (reassigning one is a cancellation and a new request).
    pool = catalogue.pools[measure.pool] if measure.pool else None
    if pool is None or pool.kind != "slots" or profile.registry is None:
        return False
    return cooling(profile, pool.instance(profile.registry.township), catalogue) is not None


def _need(
    profile: Profile, measure: Measure, measure_id: str, codes: list[str], catalogue: Catalogue
) -> Need:
    registry, assessment = profile.registry, profile.assessment
    assert registry is not None and assessment is not None
    if codes:
        rule = f"reason {', '.join(sorted(set(codes)))} → {measure.id}"
        reasons = tuple(
            f"risk reason {code} is answered by {measure.id}" for code in sorted(set(codes))
        )
    else:
        rule = f"{measure.nature} measure for served households → {measure.id}"
        reasons = (
            f"{assessment.workflow.lower()} household ({assessment.category or 'no category'}, "
            f"risk {assessment.level.lower()}) eligible for {measure.id}",
        )
    pool = catalogue.pools[measure.pool].instance(registry.township) if measure.pool else None
    return Need(
        measure_id=measure_id,
        household_id=profile.household_id,
        catalogue_id=measure.id,
        measure_type=measure.type,
        pool=pool,
        priority=measure.priority,
        urgency=URGENCY.get(assessment.level, 0),
        township=registry.township,
        village=registry.village,
        rule=rule,
        reasons=reasons,
        trigger_event_id=assessment.event_id,
        triggered_at=assessment.as_of.isoformat(),
        amount_yuan=measure.amount_yuan,
        term_months=measure.term_months,
        quantities=measure.quantities,
    )


def allocate(state: PoolState, need: Need, capacity: int | None) -> tuple[PoolState, list]:
    """Give `need` a slot (or a cadre) of `state`'s pool, or queue it; never over capacity.

    `capacity` is the pool instance's slots (None for a cadre pool). A need the pool already
    knows (held, waiting or closed) changes nothing, so redelivery is harmless.
    """
    if need.pool != state.pool:
        raise ValueError(f"need for pool {need.pool} offered to pool {state.pool}")
    if state.knows(need.measure_id):
        return state, []
    granted = _grant(state, need, capacity)
    if granted is not None:
        return granted
    waiting = tuple(sorted((*state.waiting, need), key=lambda n: n.queue_key))  # stable: FIFO
    state = replace(state, waiting=waiting)
    return state, [Waiting(need, state.pool, waiting.index(need) + 1)]


def standing(state: PoolState, need: Need) -> list:
    """The decision `state` already holds for `need`, to emit again when a request is
    redelivered (the same deterministic event as the first time); none once it is closed."""
    holding = state.holders.get(need.measure_id)
    if holding is not None:
        return [Recommendation(need, holding.cadre_id)]
    for position, waiting in enumerate(state.waiting, start=1):
        if waiting.measure_id == need.measure_id:
            return [Waiting(need, state.pool, position)]
    return []


def release(state: PoolState, measure_id: str, capacity: int | None) -> tuple[PoolState, list]:
    """Free `measure_id`'s slot (or withdraw it from the queue) and serve whoever waits next."""
    if measure_id in state.closed:
        return state, []
    holders = dict(state.holders)
    was_held = holders.pop(measure_id, None) is not None
    waiting = tuple(n for n in state.waiting if n.measure_id != measure_id)
    if not was_held and len(waiting) == len(state.waiting):
        # Unknown here: the release may precede its request (never allocated): close it so a
        # late request for it is not served.
        return replace(state, closed=state.closed | {measure_id}), []
    state = replace(
        state,
        holders=MappingProxyType(holders),
        waiting=waiting,
        closed=state.closed | {measure_id},
    )
    return _promote(state, capacity)


def with_cadre(state: PoolState, cadre: Cadre) -> tuple[PoolState, list]:
    """Record a cadre's registry record in its township's pairing pool and serve waiters.

    Lowering a cadre's maximum or deactivating them never revokes a pairing: reassigning a
    household is a decision for people, recorded as a cancellation and a new request.
    """
    state = replace(state, cadres=MappingProxyType({**state.cadres, cadre.cadre_id: cadre}))
    return _promote(state, None)


def choose_cadre(state: PoolState, need: Need) -> Cadre | None:
    """Same village first, then least loaded, then cadre id; only active cadres with room."""
    loads = {cid: 0 for cid in state.cadres}
    for holding in state.holders.values():
        if holding.cadre_id in loads:
            loads[holding.cadre_id] += 1
    candidates = [
        c
        for c in state.cadres.values()
        if c.active and c.township == need.township and loads[c.cadre_id] < c.max_households
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c.village != need.village, loads[c.cadre_id], c.cadre_id))


def _grant(state: PoolState, need: Need, capacity: int | None):
    if need.measure_type == "PAIRING":
        cadre = choose_cadre(state, need)
        if cadre is None:
            return None
        holding = Holding(need.household_id, cadre.cadre_id)
    else:
        if capacity is None or len(state.holders) >= capacity:
            return None
        holding = Holding(need.household_id)
    holders = MappingProxyType({**state.holders, need.measure_id: holding})
    return replace(state, holders=holders), [Recommendation(need, holding.cadre_id)]


def _promote(state: PoolState, capacity: int | None) -> tuple[PoolState, list]:
    decisions: list = []
    index = 0
    while index < len(state.waiting):
        need = state.waiting[index]
        rest = state.waiting[:index] + state.waiting[index + 1 :]
        granted = _grant(replace(state, waiting=rest), need, capacity)
        if granted is None:
            if need.measure_type != "PAIRING":
                break  # slot pools: strictly in queue order
            index += 1  # cadre pools: a later waiter may fit another village's cadre
            continue
        state, made = granted
        decisions.extend(made)
    return state, decisions


def match(
    profiles: Sequence[Profile],
    catalogue: Catalogue,
    pools: Mapping[str, PoolState] | None = None,
    cadres: Iterable[Cadre] = (),
) -> Matching:
    """Plan and allocate for many households at once, most urgent first, then by household id."""
    book: dict[str, PoolState] = dict(pools or {})
    pairing_pool = next(m.pool for m in catalogue.measures if m.type == "PAIRING")
    for cadre in sorted(cadres, key=lambda c: c.cadre_id):
        instance = catalogue.pools[pairing_pool].instance(cadre.township)
        state = book.get(instance, PoolState(instance))
        book[instance] = replace(
            state, cadres=MappingProxyType({**state.cadres, cadre.cadre_id: cadre})
        )
    recommendations: list[Recommendation] = []
    waiting: dict[str, Waiting] = {}
    ordered = sorted(
        profiles,
        key=lambda p: (-URGENCY.get(p.assessment.level, 0) if p.assessment else 0, p.household_id),
    )
    for profile in ordered:
        for need in plan(profile, catalogue):
            if need.pool is None:
                recommendations.append(Recommendation(need))
                continue
            state = book.get(need.pool, PoolState(need.pool))
            capacity = catalogue.capacity(need.pool)
            state, decisions = allocate(state, need, capacity)
            book[need.pool] = state
            for decision in decisions:
                if isinstance(decision, Recommendation):
                    recommendations.append(decision)
                else:
                    waiting[decision.need.measure_id] = decision
    # Positions as they stand at the end, not as they were when each need queued.
    final_waiting = []
    for state in book.values():
        for position, need in enumerate(state.waiting, start=1):
            if need.measure_id in waiting:
                final_waiting.append(Waiting(need, state.pool, position))
    final_waiting.sort(key=lambda w: (w.pool, w.position))
    return Matching(tuple(recommendations), tuple(final_waiting), MappingProxyType(book))
