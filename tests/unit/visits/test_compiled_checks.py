"""The compiled converter and validity check used on the write path agree with the reference
walkers they shortcut (`conversion.convert`, `validation.problems_in`) on every input: valid
samples, samples with fields removed, replaced by arbitrary JSON or nested values mangled, and
schemas with recursive or skippable named types."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.codec import Codec
from services.contract.inputs import BY_SLUG
from services.contract.validation import problems_in, validity
from services.visits.domain.conversion import convert, converted
from services.visits.domain.records import Origin, prepare
from tests.visits_samples import SAMPLES, sample, value_paths

NOW = dt.datetime(2020, 5, 17, 0, 0, tzinfo=dt.UTC)
CODEC = Codec.default()

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(
        ["2020-05-16", "2020-05-16T09:30:00+08:00", "2020-05-16T09:30:00", "SECURED"]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@st.composite
def mangled(draw) -> tuple[str, Any]:
    slug = draw(st.sampled_from(sorted(SAMPLES)))
    body: Any = sample(slug)
    for _ in range(draw(st.integers(0, 3))):
        paths = value_paths(body)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "extra"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "extra" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=6))] = draw(json_values)
        else:
            parent[path[-1]] = draw(json_values)
    if draw(st.integers(0, 20)) == 0:
        body = draw(json_values)
    return slug, body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled())
def test_compiled_conversion_equals_the_reference(case: tuple[str, Any]) -> None:
    slug, body = case
    schema = CODEC.registry.schema(BY_SLUG[slug].event_type).parsed
    original = copy.deepcopy(body)
    fast_problems: list = []
    reference_problems: list = []
    fast = converted(schema, body, fast_problems)
    assert body == original  # the input is never changed (a fallback re-reads it)
    reference = convert(schema, copy.deepcopy(body), "", {}, reference_problems)
    assert fast == reference
    assert fast_problems == reference_problems


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mangled())
def test_fast_validity_agrees_with_the_problems_found(case: tuple[str, Any]) -> None:
    slug, body = case
    kind = BY_SLUG[slug]
    schema = CODEC.registry.schema(kind.event_type).parsed
    record = convert(schema, body, "", {}, [])
    if isinstance(record, dict):
        record.update(recorded_at=NOW, source="OPERATOR", actor="op-1")
    reference = problems_in(schema, record)
    assert validity(schema)(record) == (not reference)
    assert CODEC.validate(kind.event_type, record) == reference


def test_prepare_still_names_every_problem() -> None:
    body = sample("visits", occurred_at="2020-05-16T09:30:00", extra=1)
    del body["checks"]["water"]
    body["checks"]["food"] = {"status": "FINE"}
    prepared = prepare(
        CODEC, BY_SLUG["visits"], body, Origin("op-1", "OPERATOR"), NOW, dt.timedelta(minutes=5)
    )
    assert sorted(field for field, _ in prepared.problems) == [
        "checks.food.status",
        "checks.water",
        "extra",
        "occurred_at",
    ]


LINKED = {
    "type": "record",
    "name": "Node",
    "fields": [
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "next", "type": ["null", "Node"], "default": None},
    ],
}
# `Inner` is first defined inside an optional field, then referred to by name.
SKIPPABLE = {
    "type": "record",
    "name": "Outer",
    "fields": [
        {
            "name": "maybe",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Inner",
                    "fields": [
                        {"name": "on", "type": {"type": "int", "logicalType": "date"}},
                    ],
                },
            ],
        },
        {"name": "then", "type": "Inner"},
    ],
}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([LINKED, SKIPPABLE]), json_values, json_values)
def test_named_types_recursive_or_skippable(schema: dict, first: Any, second: Any) -> None:
    names = [f["name"] for f in schema["fields"]]
    for value in (
        {names[0]: first, names[1]: second},
        {"at": "2020-05-16T09:30:00+08:00", "next": {"at": "2020-05-16T10:00:00+08:00"}},
        {"maybe": None, "then": {"on": "2020-05-16"}},
        {"maybe": {"on": "2020-05-16"}, "then": {"on": "2020-05-17"}},
    ):
        fast_problems: list = []
        reference_problems: list = []
        fast = converted(schema, value, fast_problems)
        assert fast == convert(schema, value, "", {}, reference_problems)
        assert fast_problems == reference_problems
        assert validity(schema)(fast) == (not problems_in(schema, fast))
