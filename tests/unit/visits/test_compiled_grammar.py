"""The grammar check compiled once per schema (`grammar_problems`) names exactly what the
field-by-field walker (`walked_problems`) names, on valid records, on records with values that
break a rule (too long, control characters, out of bounds, too many items) and on mangled
ones, and on schemas whose named types recur or are first defined where a value may skip them."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.codec import Codec
from services.contract.inputs import BY_SLUG
from services.visits.domain.conversion import convert
from services.visits.domain.grammar import MAX_ITEMS, Rule, grammar_problems, walked_problems
from services.visits.domain.records import _SERVER_SET
from tests.unit.visits.test_compiled_checks import json_values, mangled
from tests.visits_samples import SAMPLES, sample, value_paths

CODEC = Codec.default()
NOW = dt.datetime(2020, 5, 17, 0, 0, tzinfo=dt.UTC)

# Values that break some rule of the grammar, of each JSON type.
breaking = st.sampled_from(
    [
        "x" * 65,  # an identifier too long
        "x" * 201,  # a name too long
        "x" * 4001,  # free text too long
        "",  # a blank name, an empty identifier
        "   ",
        "bad\x00text",
        "line\nbreak",  # fine in free text, not in a name
        "中文 id",
        "-leading",
        -1,
        0,
        100,
        2**40,
        -(2**40),
        12.5,
        -0.5,
        float("inf"),
        ["x"] * (MAX_ITEMS + 1),
        [-1] * 3,
        None,
    ]
)


@st.composite
def broken(draw) -> tuple[str, Any]:
    """A sample with up to three of its values replaced by values that break a rule."""
    slug = draw(st.sampled_from(sorted(SAMPLES)))
    body: Any = sample(slug)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(value_paths(body)))
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = copy.deepcopy(draw(breaking))
    return slug, body


def _record(slug: str, body: Any) -> tuple[Any, Any]:
    schema = CODEC.registry.schema(BY_SLUG[slug].event_type).parsed
    record = convert(schema, body, "", {}, [])
    if isinstance(record, dict):
        record.update(recorded_at=NOW, source="OPERATOR", actor="op-1")
    return schema, record


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(broken(), mangled()))
def test_compiled_grammar_equals_the_walker(case: tuple[str, Any]) -> None:
    schema, record = _record(*case)
    assert grammar_problems(schema, record, _SERVER_SET) == walked_problems(
        schema, record, _SERVER_SET
    )
    assert grammar_problems(schema, record) == walked_problems(schema, record)


def test_every_sample_fits_and_a_broken_one_is_named() -> None:
    for slug in SAMPLES:
        schema, record = _record(slug, sample(slug))
        assert grammar_problems(schema, record, _SERVER_SET) == []
    schema, record = _record("visits", sample("visits", household_id="x" * 65))
    assert grammar_problems(schema, record) == [("household_id", "at most 64 characters")]


NAMED = {
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
                    "fields": [{"name": "household_id", "type": "string"}],
                },
            ],
        },
        {"name": "then", "type": "Inner"},
        {"name": "items", "type": {"type": "array", "items": "Inner"}},
        {
            "name": "chain",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Node",
                    "fields": [
                        {"name": "note", "type": "string"},
                        {"name": "next", "type": ["null", "Node"], "default": None},
                    ],
                },
            ],
        },
    ],
}
inner_values = st.one_of(json_values, st.fixed_dictionaries({"household_id": breaking}))


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "maybe": inner_values,
            "then": inner_values,
            "items": st.lists(inner_values, max_size=3),
            "chain": st.recursive(
                st.none(),
                lambda inner: st.fixed_dictionaries({"note": breaking, "next": inner}),
                max_leaves=4,
            ),
        },
    )
)
def test_named_types_recursive_or_skippable(value: dict) -> None:
    assert grammar_problems(NAMED, value) == walked_problems(NAMED, value)


@given(breaking | json_values)
def test_a_rule_fits_what_it_names_no_problem_in(value: Any) -> None:
    for rule in (
        Rule(pattern="^[a-z]+$", max_length=3, message="letters"),
        Rule(minimum=0, maximum=10),
        Rule(minimum=1, maximum=None),
        Rule(max_items=2),
    ):
        assert rule.fits(value) == (not rule.problems(value))
