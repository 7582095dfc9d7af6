"""The input grammar: what the door refuses (the findings of the hostile-client issue), every
problem of a record in one answer, and every rule published in the OpenAPI document."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import jsonschema_rs
import pytest

from services.contract.catalogue import load_catalogue
from services.contract.codec import Codec
from services.contract.inputs import BY_SLUG, KINDS
from services.visits.domain.catalogued import catalogue_schema
from services.visits.domain.grammar import (
    DATE_PATTERN,
    EARLIEST_DATE,
    TIMESTAMP_PATTERN,
    grammar_problems,
    rule_for,
)
from services.visits.domain.levels import LEVEL_RULE
from services.visits.domain.procedure import ORDER_RULE
from services.visits.domain.records import MAX_PROBLEMS, Origin, prepare
from services.visits.domain.validation import (
    BEYOND_SCHEMA,
    DOMAIN_RULES,
    IN_SCHEMA,
    beyond_schema,
    in_schema,
    stated,
)
from services.visits.entrypoints.openapi import load_document
from tests.visits_samples import sample

NOW = dt.datetime(2020, 5, 17, 0, 0, tzinfo=dt.UTC)
SKEW = dt.timedelta(minutes=5)
ORIGIN = Origin(actor="cadre-0042", source="APP")
DOCUMENT = load_document()
CATALOGUE = load_catalogue()  # the shipped one, as the visits API loads by default


def problems(codec: Codec, slug: str, body: Any) -> dict[str, str]:
    prepared = prepare(codec, BY_SLUG[slug], body, ORIGIN, NOW, SKEW, CATALOGUE)
    assert prepared.record is None, "accepted"
    return dict(prepared.problems)


@pytest.mark.parametrize(
    ("case", "slug", "field", "value"),
    [
        ("NUL in a township", "households", "township", "鹤游\x00镇"),
        ("C1 control in a village", "households", "village", "水井\x85村"),
        ("newline in a name", "households", "village_group", "一组\n"),
        ("NUL in free text", "visits", "note", "ok\x00"),
        ("Cyrillic letter in an id", "households", "household_id", "H-5002\u0410-0001"),
        ("full-width digits in an id", "households", "household_id", "H-５００２２８-0001"),
        ("space in an id", "visits", "cadre_id", "cadre 7"),
        ("id too long", "visits", "visit_id", "v" * 65),
        ("year 0001", "visits", "occurred_at", "0001-01-01T00:00:00+00:00"),
        ("before the registers", "visits", "occurred_at", "2013-12-31T23:59:59+08:00"),
        ("no offset", "visits", "occurred_at", "2020-06-01T10:00:00"),
        ("basic format", "visits", "occurred_at", "20200516T093000+0800"),
        ("a date of 2013", "income-updates", "period_start", "2013-06-01"),
        ("money beyond bounds", "income-updates", "wages_yuan", 10**12),
        ("a thousand members counted", "income-updates", "members_counted", 1000),
        ("text too long", "hardships", "description", "字" * 4001),
    ],
)
def test_the_door_refuses_what_a_later_stage_would(
    codec: Codec, case: str, slug: str, field: str, value: Any
) -> None:
    found = problems(codec, slug, sample(slug, **{field: value}))
    assert list(found) == [field], (case, found)
    assert "\x00" not in found[field] and str(value) not in found[field]  # never echoed


def test_free_text_keeps_tab_and_newline(codec: Codec) -> None:
    body = sample("visits", note="第一行\n\t第二行")
    assert prepare(codec, BY_SLUG["visits"], body, ORIGIN, NOW, SKEW).problems == []


def test_an_array_is_bounded(codec: Codec) -> None:
    body = sample("visits")
    body["problems"] = [{"kind": "OTHER", "description": "x", "fixed_on_spot": True}] * 51
    assert problems(codec, "visits", body) == {"problems": "at most 50 items"}


def test_every_problem_of_a_record_is_reported_at_once(codec: Codec) -> None:
    body = sample("visits", household_id="H\x00", occurred_at="0001-01-01T00:00:00Z")
    del body["checks"]["food"]
    body["geo"] = {"lat": 91.0, "lon": 0.0}
    body["five_visits"] = {"students_learning_at_home": 1, "students_without_access": 2}
    found = problems(codec, "visits", body)
    assert set(found) == {
        "household_id",
        "occurred_at",
        "checks.food",
        "geo.lat",
        "five_visits.students_without_access",
    }, found


def test_a_relation_of_fields_is_checked_even_when_another_field_is_missing(codec: Codec):
    body = sample("households")
    del body["township"]
    body["members"] = {**body["members"], "count": 1, "labour": 2}
    assert set(problems(codec, "households", body)) == {"township", "members.labour"}


def _leaves(schema: Any, named: dict, shape: str = "") -> list[tuple[str, str]]:
    """(shape path, Avro kind) of every string, number and array a client may send."""
    if isinstance(schema, str):
        return _leaves(named[schema], named, shape) if schema in named else [(shape, schema)]
    if isinstance(schema, list):
        return [leaf for b in schema if b != "null" for leaf in _leaves(b, named, shape)]
    kind = schema["type"]
    if kind in ("record", "enum", "fixed"):
        named[schema["name"]] = schema
    if schema.get("logicalType") or kind == "enum":
        return []
    if kind == "record":
        prefix = f"{shape}." if shape else ""
        return [
            leaf
            for f in schema["fields"]
            if f["name"] not in ("recorded_at", "source", "actor", "personal_sealed")
            for leaf in _leaves(f["type"], named, prefix + f["name"])
        ]
    if kind == "array":
        return [(shape, "array"), *_leaves(schema["items"], named, f"{shape}[]")]
    return [(shape, kind)]


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.slug)
def test_every_value_a_client_sends_has_a_rule(codec: Codec, kind) -> None:
    """No string without a pattern and a length, no number or array without bounds."""
    missing = []
    for shape, avro in _leaves(codec.registry.schema(kind.event_type).parsed, {}):
        if avro == "boolean":
            continue
        rule = rule_for(shape)
        keywords = rule.keywords() if rule else {}
        needed = {
            "string": {"pattern", "maxLength"},
            "array": {"maxItems"},
        }.get(avro, {"minimum", "maximum"})
        if not needed <= set(keywords):
            missing.append((shape, avro, keywords))
    assert not missing


def _strings(schema: Any) -> list[dict]:
    if isinstance(schema, dict):
        own = [schema] if schema.get("type") == "string" else []
        return own + [s for v in schema.values() for s in _strings(v)]
    if isinstance(schema, list):
        return [s for v in schema for s in _strings(v)]
    return []


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.slug)
def test_the_document_publishes_every_rule(kind) -> None:
    schema = DOCUMENT["components"]["schemas"][kind.short_name]
    for string in _strings(schema):
        if "enum" in string or string.get("format") == "uuid":
            continue  # the values are listed / the format is the rule
        assert {"pattern", "maxLength"} <= set(string), string
        re.compile(string["pattern"])  # and Python reads it as the server does
    assert schema["properties"]["occurred_at"]["pattern"] == TIMESTAMP_PATTERN


@pytest.mark.parametrize(
    ("pattern", "text", "fits"),
    [
        (TIMESTAMP_PATTERN, "2014-01-01T00:00:00+08:00", True),
        (TIMESTAMP_PATTERN, "2020-05-16T09:30:00.123Z", True),
        (TIMESTAMP_PATTERN, "2020-05-16 09:30:00Z", False),
        (TIMESTAMP_PATTERN, "2020-05-16T09:30:00Z\n", False),
        (DATE_PATTERN, str(EARLIEST_DATE), True),
        (DATE_PATTERN, "2013-12-31", False),
    ],
)
def test_date_patterns(pattern: str, text: str, fits: bool) -> None:
    assert bool(re.fullmatch(pattern, text)) is fits


def test_grammar_leaves_wrong_types_to_the_avro_validation(codec: Codec) -> None:
    schema = codec.registry.schema(BY_SLUG["visits"].event_type).parsed
    assert grammar_problems(schema, {"household_id": 7, "problems": "no", "geo": []}) == []


def test_an_answer_is_bounded_however_many_problems_a_record_has(codec: Codec) -> None:
    body = sample("visits", **{f"{'x' * 500}{i}": i for i in range(1000)})
    found = prepare(codec, BY_SLUG["visits"], body, ORIGIN, NOW, SKEW).problems
    assert len(found) == MAX_PROBLEMS
    assert found[-1] == ("", f"{1000 - MAX_PROBLEMS + 1} more problems not listed")
    assert all(len(field) <= 65 for field, _ in found)  # an unknown key is cut, not echoed


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.slug)
def test_every_rule_relating_fields_is_published_in_words(kind) -> None:
    rules = DOMAIN_RULES[kind.event_type]
    assert all(rule.__doc__ and rule.__doc__.strip() for rule in rules)
    schema = DOCUMENT["components"]["schemas"][kind.short_name]
    assert schema["x-rules"] == stated(kind.event_type)
    assert len(schema["x-rules"]) == len(rules)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"catalogue_id": "no.such", "pool": "county:none"}, "catalogue_id"),
        ({"catalogue_id": "industry.pomelo-seedlings"}, "catalogue_id"),  # the old simulation's
        ({"pool": "township:鹤游镇"}, "pool"),  # the old simulation's: no such pool
        ({"pool": "county:industry-poultry"}, "pool"),  # a township pool named as the county's
        ({"pool": "township:鹤游镇:microcredit"}, "pool"),  # another measure's pool
        ({"catalogue_id": "protection.minimum-living", "pool": "county:microcredit"}, "pool"),
        ({"pool": None}, "pool"),  # a pooled measure ended without the pool whose slot it frees
    ],
)
def test_the_door_refuses_a_measure_step_outside_the_catalogue(
    codec: Codec, changes: dict[str, Any], field: str
) -> None:
    """The support worker would dead-letter it (NOT_APPLICABLE): the door refuses it, and the
    document says so (catalogue_id's enum, each measure's pool pattern)."""
    body = sample("measure-steps", step="COMPLETED", **changes)
    assert list(problems(codec, "measure-steps", body)) == [field]
    schema = {**DOCUMENT["components"]["schemas"]["MeasureStepRecorded"]}
    schema["components"] = DOCUMENT["components"]
    assert not jsonschema_rs.validator_for(schema).is_valid(body)


@pytest.mark.parametrize(
    "pool",
    [None, "township:鹤游镇:industry-fruit-seedlings", "township:大石乡:industry-fruit-seedlings"],
)
def test_a_measure_step_of_the_catalogue_passes_the_door(codec: Codec, pool: str | None) -> None:
    body = sample("measure-steps", step="COMPLETED" if pool else "DELIVERED", pool=pool)
    assert prepare(codec, BY_SLUG["measure-steps"], body, ORIGIN, NOW, SKEW, CATALOGUE).ok
    schema = {**DOCUMENT["components"]["schemas"]["MeasureStepRecorded"]}
    schema["components"] = DOCUMENT["components"]
    assert jsonschema_rs.validator_for(schema).is_valid(body)


def test_a_whole_number_written_with_a_decimal_point_is_an_integer(codec: Codec) -> None:
    """JSON Schema (the document's "type": "integer") and JSON itself take 3.0 as 3."""
    body = sample("income-updates", members_counted=3.0, wages_yuan=9000.0)
    prepared = prepare(codec, BY_SLUG["income-updates"], body, ORIGIN, NOW, SKEW)
    assert prepared.problems == []
    assert prepared.record is not None and prepared.record["members_counted"] == 3
    assert type(prepared.record["members_counted"]) is int
    assert "members_counted" in problems(codec, "income-updates", {**body, "members_counted": 3.5})


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.slug)
def test_every_rule_relating_fields_is_in_the_schema_or_published_as_beyond_it(kind) -> None:
    rules = DOMAIN_RULES[kind.event_type]
    assert all(rule in IN_SCHEMA or rule in BEYOND_SCHEMA for rule in rules)
    schema = DOCUMENT["components"]["schemas"][kind.short_name]
    measures = catalogue_schema(CATALOGUE)["allOf"] if kind.slug == "measure-steps" else []
    assert schema.get("allOf", []) == in_schema(kind.event_type) + measures
    # a review decision's level rule relates the record to the token writing it (levels.py),
    # its order rule to the household's procedure in the log (procedure.py)
    token_rules = [LEVEL_RULE, ORDER_RULE] if kind.slug == "review-decisions" else []
    assert schema.get("x-rules-beyond-schema", []) == beyond_schema(kind.event_type) + token_rules


@pytest.mark.parametrize(
    ("slug", "changes"),
    [
        ("households", {"registration": "LIFTED", "lifted_year": None}),
        ("hardships", {"origin": "DEPARTMENT_FEED", "department": None}),
        ("measure-steps", {"step": "DELIVERED", "waiting_for": "county:microcredit"}),
        ("problems", {"step": "TASK_ASSIGNED", "responsible_cadre_id": None}),
        ("review-decisions", {"decision": "INCLUDE", "category": None}),
        ("review-decisions", {"decision": "REJECT", "category": "MARGINAL"}),
        ("review-decisions", {"notice_days": 5, "notice_start": None}),
    ],
)
def test_a_relation_the_schema_states_is_refused_by_the_document_and_the_server(
    codec: Codec, slug: str, changes: dict[str, Any]
) -> None:
    body = sample(slug, **changes)
    assert problems(codec, slug, body)  # the server refuses it
    name = BY_SLUG[slug].short_name
    schema = {**DOCUMENT["components"]["schemas"][name], "components": DOCUMENT["components"]}
    assert not jsonschema_rs.validator_for(schema).is_valid(body)  # and so does the document
    assert jsonschema_rs.validator_for(schema).is_valid(sample(slug))
