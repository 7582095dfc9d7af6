"""The measure catalogue (measures, capacity pools, reason mappings): TOML, validated.

Long because the format and its checks are one reading: the model classes are built only by the
parser below them, and each check names the TOML path it guards; the field readers at the end
are the parser's own. The digest of a catalogue is `catalogue_changes.py`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.contract.vocabulary import symbols

CATALOGUES_DIR = Path(__file__).resolve().parent / "catalogues"
DEFAULT_CATALOGUE = CATALOGUES_DIR / "dianjiang.toml"

# Enum values the contract's schemas declare (vocabulary); the catalogue is checked against them.
MEASURE_TYPES = symbols("MeasureType")
NATURES = ("pairing", "developmental", "protective")
TRIGGERS = ("monitored", "reason")
SCOPES = ("county", "township")
POOL_KINDS = ("slots", "cadres")
# Deliberately a subset of MeasureStep: the steps that end a measure and free its pool slot.
RELEASE_STEPS = ("COMPLETED", "CANCELLED")
WORKFLOWS = symbols("WorkflowStatus")
# Defaults of the optional [catalogue] keys; see services/support/README.md ("Catalogue format").
DEFAULT_COOLING_DAYS = 90
DEFAULT_HOLD_WORKFLOWS = ("ELIMINATION_PROPOSED",)
LIVELIHOODS = symbols("Livelihood")
SAFETY = symbols("HousingBaseline")  # WaterBaseline has the same symbols
CATEGORIES = symbols("Category")
REGISTRATIONS = symbols("RegistrationStatus")

# Eligibility criteria a catalogue may use, by kind of value; see Eligibility.
_INT_CRITERIA = (
    "labour_min",
    "labour_max",
    "weak_labour_min",
    "any_labour_min",
    "any_labour_max",
    "students_min",
    "disabled_min",
    "chronically_ill_min",
    "chronically_ill_max",
    "elderly_min",
    "head_age_min",
    "head_age_max",
)
_LIST_CRITERIA = {
    "livelihood_in": LIVELIHOODS,
    "housing_in": SAFETY,
    "water_in": SAFETY,
    "category_in": CATEGORIES,
    "registration_in": REGISTRATIONS,
}
_BOOL_CRITERIA = ("minimum_living_allowance",)


class CatalogueError(ValueError):
    """A catalogue file that cannot be used; `problems` lists (where, problem) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        listed = "; ".join(f"{where}: {problem}" for where, problem in problems)
        super().__init__(f"invalid measure catalogue {source}: {listed}")


@dataclass(frozen=True)
class Eligibility:
    """Conditions over household state, all of which must hold; None means "no condition"."""

    labour_min: int | None = None
    labour_max: int | None = None
    weak_labour_min: int | None = None
    any_labour_min: int | None = None  # full + weak labour
    any_labour_max: int | None = None
    students_min: int | None = None
    disabled_min: int | None = None
    chronically_ill_min: int | None = None
    chronically_ill_max: int | None = None
    elderly_min: int | None = None
    head_age_min: int | None = None
    head_age_max: int | None = None
    livelihood_in: tuple[str, ...] | None = None
    housing_in: tuple[str, ...] | None = None
    water_in: tuple[str, ...] | None = None
    category_in: tuple[str, ...] | None = None
    registration_in: tuple[str, ...] | None = None
    minimum_living_allowance: bool | None = None


@dataclass(frozen=True)
class Quantity:
    item: str
    amount: int
    unit: str


@dataclass(frozen=True)
class Pool:
    """A capacity pool; `instance(township)` names the pool instance a household draws on."""

    id: str
    scope: str  # county | township
    kind: str  # slots (fixed capacity) | cadres (capacity from the cadre registry)
    capacity: int | None  # per instance, for kind "slots"
    capacity_by_township: Mapping[str, int]
    unit: str
    source: str

    def instance(self, township: str) -> str:
        return f"county:{self.id}" if self.scope == "county" else f"township:{township}:{self.id}"

    def capacity_of(self, township: str | None) -> int | None:
        """Slots of an instance; None for a cadre pool (its capacity is its cadres')."""
        if self.kind == "cadres":
            return None
        if township is not None and township in self.capacity_by_township:
            return self.capacity_by_township[township]
        return self.capacity


@dataclass(frozen=True)
class Measure:
    """One catalogue entry."""

    id: str
    type: str
    nature: str
    trigger: str
    priority: int
    group: str
    pool: str | None
    releases_on: tuple[str, ...]
    eligible: Eligibility
    quantities: tuple[Quantity, ...]
    amount_yuan: int | None
    term_months: int | None
    description: str


@dataclass(frozen=True)
class Catalogue:
    """A validated catalogue. Build with `load_catalogue` or `parse_catalogue`."""

    id: str
    description: str
    serve_workflows: frozenset[str]
    pools: Mapping[str, Pool]
    measures: tuple[Measure, ...]  # ordered by (priority, id)
    reasons: Mapping[str, tuple[str, ...]]  # reason code -> measure ids
    microcredit_policy: Mapping[str, int] = field(default_factory=dict)
    # Reason codes deliberately answered by no reason-triggered measure (the monitored-trigger
    # measures, or people, answer them); a code in neither is a gap the tests catch.
    unanswered_reasons: frozenset[str] = frozenset()
    # Workflow states in which a household keeps the slots and queue places it holds but is not
    # matched anew; outside these and `serve_workflows` everything it holds is released.
    hold_workflows: frozenset[str] = frozenset(DEFAULT_HOLD_WORKFLOWS)
    # Days a measure the household cancelled keeps it from being recommended the same slot pool
    # again, unless its assessment brings a reason it did not have when it cancelled.
    cooling_days: int = DEFAULT_COOLING_DAYS

    def holds_support(self, workflow: str) -> bool:
        """Whether a household in `workflow` may keep what it holds."""
        return workflow in self.serve_workflows or workflow in self.hold_workflows

    def measure(self, measure_id: str) -> Measure:
        for measure in self.measures:
            if measure.id == measure_id:
                return measure
        raise KeyError(measure_id)

    def pool_of_instance(self, instance: str) -> tuple[Pool, str | None]:
        """The pool definition and township of a pool instance name; KeyError if unknown."""
        if instance.startswith("county:"):
            pool = self.pools[instance.removeprefix("county:")]
            if pool.scope != "county":
                raise KeyError(instance)
            return pool, None
        prefix, _, rest = instance.partition(":")
        township, _, pool_id = rest.rpartition(":")
        if prefix != "township" or not township:
            raise KeyError(instance)
        pool = self.pools[pool_id]
        if pool.scope != "township":
            raise KeyError(instance)
        return pool, township

    def capacity(self, instance: str) -> int | None:
        pool, township = self.pool_of_instance(instance)
        return pool.capacity_of(township)


def load_catalogue(path: Path | str = DEFAULT_CATALOGUE) -> Catalogue:
    """Read and validate a catalogue file; CatalogueError lists every problem found."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(str(path), [("<file>", f"cannot read: {exc}")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(str(path), [("<file>", f"not valid TOML: {exc}")]) from exc
    return parse_catalogue(raw, str(path))


def parse_catalogue(raw: Mapping[str, Any], source: str = "<data>") -> Catalogue:
    """Validate a parsed catalogue document and build the Catalogue."""
    problems: list[tuple[str, str]] = []
    header = _table(raw, "catalogue", "catalogue", problems)
    catalogue_id = _string(header, "id", "catalogue", problems)
    workflows = _strings(header, "serve_workflows", "catalogue", problems, WORKFLOWS) or ()
    if not workflows:
        problems.append(("catalogue.serve_workflows", "name at least one workflow state"))
    hold = _strings(header, "hold_workflows", "catalogue", problems, WORKFLOWS, required=False)
    hold = DEFAULT_HOLD_WORKFLOWS if hold is None else hold
    cooling = _integer(header, "cooling_days", "catalogue", problems, required=False, minimum=0)
    policy = _table(
        _table(raw, "policy", "policy", problems, required=False),
        "microcredit",
        "policy.microcredit",
        problems,
        required=False,
    )
    microcredit = {}
    for key in ("max_amount_yuan", "max_term_months", "min_age", "max_age"):
        value = _integer(policy, key, "policy.microcredit", problems, required=False)
        if value is not None:
            microcredit[key] = value

    pools: dict[str, Pool] = {}
    for index, entry in enumerate(_list(raw, "pools", problems)):
        where = f"pools[{index}]"
        pool = _parse_pool(entry, where, problems)
        if pool is None:
            continue
        if pool.id in pools:
            problems.append((where, f"duplicate pool id {pool.id!r}"))
        pools[pool.id] = pool

    measures: dict[str, Measure] = {}
    for index, entry in enumerate(_list(raw, "measures", problems)):
        where = f"measures[{index}]"
        measure = _parse_measure(entry, where, pools, microcredit, problems)
        if measure is None:
            continue
        if measure.id in measures:
            problems.append((where, f"duplicate measure id {measure.id!r}"))
        measures[measure.id] = measure

    reasons: dict[str, tuple[str, ...]] = {}
    for code, ids in _table(raw, "reasons", "reasons", problems, required=False).items():
        where = f"reasons.{code}"
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not ids:
            problems.append((where, "expected a non-empty list of measure ids"))
            continue
        for measure_id in ids:
            if measure_id not in measures:
                problems.append((where, f"unknown measure {measure_id!r}"))
        reasons[code] = tuple(ids)
    unanswered = header.get("unanswered_reasons", [])
    if not isinstance(unanswered, list) or not all(isinstance(c, str) for c in unanswered):
        problems.append(("catalogue.unanswered_reasons", "expected a list of reason codes"))
        unanswered = []
    for code in sorted(set(unanswered) & set(reasons)):
        problems.append(("catalogue.unanswered_reasons", f"{code!r} is also mapped in [reasons]"))
    answered = {measure_id for ids in reasons.values() for measure_id in ids}
    for measure in measures.values():
        if measure.trigger == "reason" and measure.id not in answered:
            problems.append(
                (f"measures.{measure.id}", "trigger is 'reason' but no [reasons] code maps to it")
            )
    pairing = [m for m in measures.values() if m.type == "PAIRING"]
    if len(pairing) != 1:
        problems.append(("measures", f"need exactly one PAIRING measure, found {len(pairing)}"))
    elif (
        pairing[0].pool is None
        or pools.get(pairing[0].pool, None) is None
        or pools[pairing[0].pool].kind != "cadres"
    ):
        problems.append(
            (f"measures.{pairing[0].id}", "PAIRING must draw on a pool of kind 'cadres'")
        )
    for measure in measures.values():
        if (
            measure.type != "PAIRING"
            and measure.pool in pools
            and pools[measure.pool].kind == "cadres"
        ):
            problems.append((f"measures.{measure.id}", "only PAIRING may draw on a cadre pool"))
    if problems:
        raise CatalogueError(source, problems)
    return Catalogue(
        id=catalogue_id,
        description=str(header.get("description", "")),
        serve_workflows=frozenset(workflows),
        pools=pools,
        measures=tuple(sorted(measures.values(), key=lambda m: (m.priority, m.id))),
        reasons=reasons,
        microcredit_policy=microcredit,
        unanswered_reasons=frozenset(unanswered),
        hold_workflows=frozenset(hold),
        cooling_days=DEFAULT_COOLING_DAYS if cooling is None else cooling,
    )


def _parse_pool(entry: Any, where: str, problems: list) -> Pool | None:
    if not isinstance(entry, dict):
        problems.append((where, "expected a table"))
        return None
    _unknown_keys(
        entry,
        {"id", "scope", "kind", "capacity", "capacity_by_township", "unit", "source"},
        where,
        problems,
    )
    pool_id = _string(entry, "id", where, problems)
    scope = _choice(entry, "scope", where, problems, SCOPES)
    kind = entry.get("kind", "slots")
    if kind not in POOL_KINDS:
        problems.append((f"{where}.kind", f"expected one of {', '.join(POOL_KINDS)}"))
    capacity = _integer(entry, "capacity", where, problems, required=kind == "slots", minimum=0)
    if kind == "cadres" and "capacity" in entry:
        problems.append((f"{where}.capacity", "a cadre pool's capacity comes from the registry"))
    overrides = entry.get("capacity_by_township", {})
    if not isinstance(overrides, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in overrides.values()
    ):
        problems.append((f"{where}.capacity_by_township", "expected township = whole number ≥ 0"))
        overrides = {}
    if overrides and scope != "township":
        problems.append((f"{where}.capacity_by_township", "only for township pools"))
    if pool_id and ":" in pool_id:
        problems.append((f"{where}.id", "must not contain ':'"))
    return Pool(
        pool_id,
        scope,
        kind,
        capacity,
        dict(overrides),
        str(entry.get("unit", "slot")),
        str(entry.get("source", "")),
    )


def _parse_measure(
    entry: Any,
    where: str,
    pools: Mapping[str, Pool],
    microcredit: Mapping[str, int],
    problems: list,
) -> Measure | None:
    if not isinstance(entry, dict):
        problems.append((where, "expected a table"))
        return None
    _unknown_keys(
        entry,
        {
            "id",
            "type",
            "nature",
            "trigger",
            "priority",
            "group",
            "pool",
            "releases_on",
            "eligible",
            "quantities",
            "amount_yuan",
            "term_months",
            "description",
        },
        where,
        problems,
    )
    measure_id = _string(entry, "id", where, problems)
    if measure_id:
        where = f"measures.{measure_id}"
    measure_type = _choice(entry, "type", where, problems, MEASURE_TYPES)
    nature = _choice(entry, "nature", where, problems, NATURES)
    trigger = _choice(entry, "trigger", where, problems, TRIGGERS)
    priority = _integer(entry, "priority", where, problems, minimum=0)
    pool = entry.get("pool")
    if pool is not None and pool not in pools:
        problems.append((f"{where}.pool", f"unknown pool {pool!r}"))
    releases_on = _strings(entry, "releases_on", where, problems, RELEASE_STEPS, required=False)
    eligible = _parse_eligibility(entry.get("eligible", {}), f"{where}.eligible", problems)
    quantities = []
    for index, q in enumerate(entry.get("quantities", [])):
        if (
            not isinstance(q, dict)
            or not isinstance(q.get("item"), str)
            or not isinstance(q.get("unit"), str)
            or not isinstance(q.get("amount"), int)
            or q["amount"] < 1
        ):
            problems.append((f"{where}.quantities[{index}]", "expected {item, amount ≥ 1, unit}"))
            continue
        quantities.append(Quantity(q["item"], q["amount"], q["unit"]))
    amount = _integer(entry, "amount_yuan", where, problems, required=False, minimum=1)
    term = _integer(entry, "term_months", where, problems, required=False, minimum=1)
    if measure_type == "MICROCREDIT":
        _check_microcredit(where, amount, term, eligible, microcredit, problems)
    return Measure(
        id=measure_id,
        type=measure_type,
        nature=nature,
        trigger=trigger,
        priority=priority if priority is not None else 0,
        group=str(entry.get("group", measure_id)),
        pool=pool,
        releases_on=tuple(releases_on) if releases_on else RELEASE_STEPS,
        eligible=eligible,
        quantities=tuple(quantities),
        amount_yuan=amount,
        term_months=term,
        description=str(entry.get("description", "")),
    )


def _check_microcredit(where, amount, term, eligible: Eligibility, policy, problems) -> None:
    if not policy:
        problems.append(("policy.microcredit", "required when a MICROCREDIT measure exists"))
        return
    if amount is None or amount > policy.get("max_amount_yuan", amount):
        problems.append(
            (f"{where}.amount_yuan", f"required and at most {policy.get('max_amount_yuan')} yuan")
        )
    if term is None or term > policy.get("max_term_months", term):
        problems.append(
            (f"{where}.term_months", f"required and at most {policy.get('max_term_months')} months")
        )
    low, high = policy.get("min_age"), policy.get("max_age")
    if eligible.head_age_min is None or (low is not None and eligible.head_age_min < low):
        problems.append((f"{where}.eligible.head_age_min", f"required and at least {low}"))
    if eligible.head_age_max is None or (high is not None and eligible.head_age_max > high):
        problems.append((f"{where}.eligible.head_age_max", f"required and at most {high}"))
    if not eligible.labour_min:
        problems.append((f"{where}.eligible.labour_min", "microcredit needs labour (≥ 1)"))


def _parse_eligibility(raw: Any, where: str, problems: list) -> Eligibility:
    if not isinstance(raw, dict):
        problems.append((where, "expected a table"))
        return Eligibility()
    _unknown_keys(raw, {*_INT_CRITERIA, *_LIST_CRITERIA, *_BOOL_CRITERIA}, where, problems)
    values: dict[str, Any] = {}
    for key in _INT_CRITERIA:
        value = _integer(raw, key, where, problems, required=False, minimum=0)
        if value is not None:
            values[key] = value
    for key, allowed in _LIST_CRITERIA.items():
        if key in raw:
            values[key] = tuple(_strings(raw, key, where, problems, allowed) or ())
    for key in _BOOL_CRITERIA:
        if key in raw:
            if isinstance(raw[key], bool):
                values[key] = raw[key]
            else:
                problems.append((f"{where}.{key}", "expected true or false"))
    for low, high in (
        ("labour_min", "labour_max"),
        ("any_labour_min", "any_labour_max"),
        ("head_age_min", "head_age_max"),
        ("chronically_ill_min", "chronically_ill_max"),
    ):
        if low in values and high in values and values[low] > values[high]:
            problems.append((where, f"{low} is above {high}: nobody is eligible"))
    return Eligibility(**values)


def _unknown_keys(entry: Mapping, known: set[str], where: str, problems: list) -> None:
    for key in sorted(set(entry) - known):
        problems.append((f"{where}.{key}", "unknown key (a typo would otherwise be ignored)"))


def _table(raw: Any, key: str, where: str, problems: list, required: bool = True) -> dict:
    value = raw.get(key) if isinstance(raw, dict) else None
    if value is None:
        if required:
            problems.append((where, "missing table"))
        return {}
    if not isinstance(value, dict):
        problems.append((where, "expected a table"))
        return {}
    return value


def _list(raw: Mapping, key: str, problems: list) -> list:
    value = raw.get(key, [])
    if not isinstance(value, list) or not value:
        problems.append((key, f"expected at least one [[{key}]] entry"))
        return []
    return value


def _string(entry: Mapping, key: str, where: str, problems: list) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.append((f"{where}.{key}", "expected a non-empty string"))
        return ""
    return value


def _choice(entry: Mapping, key: str, where: str, problems: list, allowed: tuple) -> str:
    value = entry.get(key)
    if value not in allowed:
        problems.append((f"{where}.{key}", f"{value!r} is not one of {', '.join(allowed)}"))
        return ""
    return value


def _integer(
    entry: Mapping,
    key: str,
    where: str,
    problems: list,
    required: bool = True,
    minimum: int | None = None,
) -> int | None:
    value = entry.get(key)
    if value is None:
        if required:
            problems.append((f"{where}.{key}", "expected a whole number"))
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append((f"{where}.{key}", f"expected a whole number, got {value!r}"))
        return None
    if minimum is not None and value < minimum:
        problems.append((f"{where}.{key}", f"must be at least {minimum}"))
        return None
    return value


def _strings(
    entry: Mapping, key: str, where: str, problems: list, allowed: tuple, required: bool = True
) -> list[str] | None:
    value = entry.get(key)
    if value is None:
        if required:
            problems.append((f"{where}.{key}", "expected a list"))
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append((f"{where}.{key}", "expected a list of strings"))
        return None
    for item in value:
        if item not in allowed:
            problems.append((f"{where}.{key}", f"{item!r} is not one of {', '.join(allowed)}"))
    return value
