"""A measure step names a measure of the catalogue in force, and only that measure's pool.

The support worker books and frees pool slots by a step's `catalogue_id` and `pool`; a step
naming a measure or pool the catalogue (SHOUWANG_CATALOGUE) does not have would be accepted at
the door and dead-lettered there (issue 21: what the door accepts every later stage accepts).
So the door refuses it, naming the field, and the OpenAPI document states the same rule: the
catalogue's ids as the enum of `catalogue_id`, and for each pooled measure the pattern of its
pool's instances (`county:<pool>` or `township:<township>:<pool>`); a measure without a pool
takes no pool. A step that ends a pooled measure (COMPLETED, CANCELLED) names the pool whose
slot it frees: without one, the support worker can free only a slot it booked itself, and
dead-letters the step otherwise. Pure: the caller passes the catalogue.
"""

from __future__ import annotations

import re
from typing import Any

from services.contract.catalogue import RELEASE_STEPS, Catalogue, Measure
from services.contract.vocabulary import symbols
from services.visits.domain.grammar import MAX_NAME

Problems = list[tuple[str, str]]
OTHER_STEPS = tuple(s for s in symbols("MeasureStep") if s not in RELEASE_STEPS)
MEASURE_STEP = "shouwang.events.MeasureStepRecorded"
# A township's name in a pool instance: the grammar's names without a colon (the separator).
_TOWNSHIP = (
    f"[^:\\s\\u0000-\\u001f\\u007f-\\u009f][^:\\u0000-\\u001f\\u007f-\\u009f]{{0,{MAX_NAME - 1}}}"
)


def pool_pattern(catalogue: Catalogue, measure: Measure) -> str | None:
    """The pattern of the pool instances a step of `measure` may name; None if it has no pool."""
    if measure.pool is None:
        return None
    pool = catalogue.pools[measure.pool]
    name = re.escape(pool.id)
    return f"^county:{name}$" if pool.scope == "county" else f"^township:{_TOWNSHIP}:{name}$"


def catalogue_problems(record: dict[str, Any], catalogue: Catalogue) -> Problems:
    """(field, problem) for a measure step whose measure or pool the catalogue does not have."""
    catalogue_id = record.get("catalogue_id")
    if not isinstance(catalogue_id, str):
        return []  # missing or of a wrong type: the contract's validation names it
    try:
        measure = catalogue.measure(catalogue_id)
    except KeyError:
        return [("catalogue_id", f"is not a measure of catalogue {catalogue.id}")]
    pool = record.get("pool")
    pattern = pool_pattern(catalogue, measure)
    if pool is None and pattern is not None and record.get("step") in RELEASE_STEPS:
        return [("pool", f"required when step is {' or '.join(RELEASE_STEPS)}: the pool whose "
                 f"slot the step frees ({measure.pool})")]  # fmt: skip
    if not isinstance(pool, str):
        return []
    if pattern is None:
        return [("pool", f"measure {measure.id} has no pool")]
    if not re.fullmatch(pattern, pool):
        return [("pool", f"is not an instance of pool {measure.pool} of measure {measure.id}")]
    return []


def catalogue_schema(catalogue: Catalogue) -> dict[str, Any]:
    """The rule in JSON Schema: the `catalogue_id` enum, and one `allOf` member that is an
    `anyOf` of branches by pool (no pool first): the measures of that pool and the pool
    instances they may name, optional on other steps, required on a step that frees a slot.
    Branches by pool, not an if/then per measure, keep the schema small enough for generators
    (a fuzzer) to draw from."""
    by_pool: dict[str | None, list[Measure]] = {}
    for measure in catalogue.measures:
        by_pool.setdefault(measure.pool, []).append(measure)
    branches = []
    for _, measures in sorted(by_pool.items(), key=lambda item: item[0] or ""):
        pattern = pool_pattern(catalogue, measures[0])
        ids = {"enum": sorted(m.id for m in measures)}
        if pattern is None:
            branches.append({"properties": {"catalogue_id": ids, "pool": {"type": "null"}}})
            continue
        named = {"type": "string", "pattern": pattern, "maxLength": MAX_NAME}
        branches.append({"properties": {
            "catalogue_id": ids, "step": {"enum": list(OTHER_STEPS)},
            "pool": {"anyOf": [{"type": "null"}, named]},
        }})  # fmt: skip
        branches.append({"required": ["pool"], "properties": {
            "catalogue_id": ids, "step": {"enum": list(RELEASE_STEPS)}, "pool": named,
        }})  # fmt: skip
    return {
        "catalogue_id": sorted(m.id for m in catalogue.measures),
        "allOf": [{"anyOf": branches}],
    }
