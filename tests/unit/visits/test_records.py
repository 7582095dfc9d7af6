"""JSON → contract record: every sample passes; each kind of bad input names its field."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from services.contract.codec import Codec
from services.contract.inputs import BY_SLUG
from services.visits.domain.records import Origin, content_digest, prepare
from tests.visits_samples import SAMPLES, sample

NOW = dt.datetime(2020, 5, 17, 0, 0, tzinfo=dt.UTC)
SKEW = dt.timedelta(minutes=5)
ORIGIN = Origin(actor="cadre-0042", source="APP")


def run(codec: Codec, slug: str, body: object):
    return prepare(codec, BY_SLUG[slug], body, ORIGIN, NOW, SKEW)


@pytest.mark.parametrize("slug", sorted(SAMPLES))
def test_every_sample_becomes_an_encodable_record(codec: Codec, slug: str) -> None:
    prepared = run(codec, slug, sample(slug))
    assert prepared.problems == []
    record = prepared.record
    assert record["actor"] == "cadre-0042" and record["source"] == "APP"
    assert record["recorded_at"] == NOW
    decoded = codec.decode(codec.encode(BY_SLUG[slug].event_type, record))
    assert decoded.record["event_id"] == uuid.UUID(record["event_id"])


def test_conversion_fills_defaults_and_truncates_to_milliseconds(codec: Codec) -> None:
    body = sample("visits", occurred_at="2020-05-16T09:30:00.123456+08:00")
    body["event_id"] = body["event_id"].upper()
    record = run(codec, "visits", body).record
    assert record["occurred_at"] == dt.datetime(2020, 5, 16, 1, 30, 0, 123000, tzinfo=dt.UTC)
    assert record["event_id"] == body["event_id"].lower()  # canonical idempotency key
    assert record["five_visits"] is None and record["note"] == ""
    assert record["checks"]["food"]["note"] == ""


def test_digest_ignores_recorded_at_but_not_content(codec: Codec) -> None:
    body = sample("visits")
    first = run(codec, "visits", body).record
    later = prepare(codec, BY_SLUG["visits"], body, ORIGIN, NOW + SKEW, SKEW).record
    kind = BY_SLUG["visits"]
    assert content_digest(kind, first) == content_digest(kind, later)
    changed = run(codec, "visits", {**body, "note": "another"}).record
    assert content_digest(kind, first) != content_digest(kind, changed)


def _without(slug: str, *path: str) -> dict:
    body = sample(slug)
    target = body
    for name in path[:-1]:
        target = target[name]
    del target[path[-1]]
    return body


def _nested(slug: str, path: tuple, value: object) -> dict:
    body = sample(slug)
    target = body
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value
    return body


# (case, route, body, field, words in the problem)
BAD = [
    ("not an object", "visits", [1, 2], "", "expected a JSON object"),
    (
        "missing household",
        "visits",
        _without("visits", "household_id"),
        "household_id",
        "required field missing",
    ),
    (
        "missing nested",
        "visits",
        _without("visits", "checks", "water"),
        "checks.water",
        "required field missing",
    ),
    ("wrong type", "visits", sample("visits", visit_id=17), "visit_id", "expected a string"),
    (
        "unknown enum",
        "visits",
        _nested("visits", ("checks", "water", "status"), "FINE"),
        "checks.water.status",
        "expected one of SECURED",
    ),
    ("unknown field", "visits", sample("visits", colour="red"), "colour", "unknown field"),
    ("bad uuid", "visits", sample("visits", event_id="not-a-uuid"), "event_id", "expected a UUID"),
    (
        "timestamp without offset",
        "visits",
        sample("visits", occurred_at="2020-05-16T09:30:00"),
        "occurred_at",
        "UTC offset",
    ),
    (
        "timestamp garbage",
        "visits",
        sample("visits", occurred_at="yesterday"),
        "occurred_at",
        "ISO-8601",
    ),
    (
        "timestamp as number",
        "visits",
        sample("visits", occurred_at=1589592600000),
        "occurred_at",
        "timestamp string",
    ),
    (
        "future occurred_at",
        "visits",
        sample("visits", occurred_at="2020-05-17T00:10:00+00:00"),
        "occurred_at",
        "in the future",
    ),
    (
        "client sets actor",
        "visits",
        sample("visits", actor="someone-else"),
        "actor",
        "set by the server",
    ),
    (
        "client sets source",
        "visits",
        sample("visits", source="SERVICE"),
        "source",
        "set by the server",
    ),
    (
        "float for long",
        "visits",
        _nested("visits", ("income_estimate", "per_capita_yuan"), 1.5),
        "income_estimate.per_capita_yuan",
        "expected an integer",
    ),
    (
        "negative estimate",
        "visits",
        _nested("visits", ("income_estimate", "per_capita_yuan"), -1),
        "income_estimate.per_capita_yuan",
        "negative",
    ),
    ("latitude", "visits", _nested("visits", ("geo", "lat"), 91.0), "geo.lat", "between"),
    (
        "blank household id",
        "visits",
        sample("visits", household_id=" "),
        "household_id",
        "without spaces",
    ),
    (
        "int out of range",
        "households",
        _nested("households", ("members", "count"), 2**40),
        "members.count",
        "out of range",
    ),
    (
        "labour over count",
        "households",
        _nested("households", ("members", "labour"), 5),
        "members.labour",
        "cannot exceed members.count",
    ),
    (
        "negative members",
        "households",
        _nested("households", ("members", "students"), -1),
        "members.students",
        "negative",
    ),
    (
        "lifted without year",
        "households",
        sample("households", lifted_year=None),
        "lifted_year",
        "required when registration is LIFTED",
    ),
    (
        "year on never registered",
        "households",
        sample("households", registration="NEVER_REGISTERED"),
        "lifted_year",
        "only a LIFTED",
    ),
    (
        "negative baseline income",
        "households",
        _nested("households", ("baseline_income", "per_capita_net_yuan"), -5),
        "baseline_income.per_capita_net_yuan",
        "negative",
    ),
    (
        "blank citizen id",
        "households",
        _nested("households", ("personal", "citizen_id"), ""),
        "personal.citizen_id",
        "ASCII letters or digits",
    ),
    (
        "negative income",
        "income-updates",
        sample("income-updates", per_capita_net_yuan=-100),
        "per_capita_net_yuan",
        "negative",
    ),
    (
        "negative wages",
        "income-updates",
        sample("income-updates", wages_yuan=-1),
        "wages_yuan",
        "negative",
    ),
    (
        "period reversed",
        "income-updates",
        sample("income-updates", period_start="2020-05-01"),
        "period_end",
        "before period_start",
    ),
    (
        "bad date",
        "income-updates",
        sample("income-updates", period_end="2020-02-30"),
        "period_end",
        "YYYY-MM-DD",
    ),
    (
        "zero members counted",
        "income-updates",
        sample("income-updates", members_counted=0),
        "members_counted",
        "at least 1",
    ),
    (
        "negative expenditure",
        "hardships",
        sample("hardships", rigid_expenditure_yuan=-3),
        "rigid_expenditure_yuan",
        "negative",
    ),
    (
        "feed without department",
        "hardships",
        sample("hardships", department=None),
        "department",
        "required when origin is DEPARTMENT_FEED",
    ),
    (
        "negative quantity",
        "measure-steps",
        sample("measure-steps", quantities=[{"item": "ducklings", "amount": -50, "unit": "head"}]),
        "quantities[0].amount",
        "negative",
    ),
    (
        "waiting on delivered",
        "measure-steps",
        sample("measure-steps", waiting_for="county:jobs"),
        "waiting_for",
        "only a RECOMMENDED",
    ),
    (
        "task without cadre",
        "problems",
        sample("problems", step="TASK_ASSIGNED"),
        "responsible_cadre_id",
        "required when step is TASK_ASSIGNED",
    ),
    (
        "include without category",
        "review-decisions",
        sample("review-decisions", category=None),
        "category",
        "required when decision is INCLUDE",
    ),
    (
        "reject with category",
        "review-decisions",
        sample("review-decisions", decision="REJECT"),
        "category",
        "has no category",
    ),
    (
        "negative notice",
        "review-decisions",
        sample("review-decisions", notice_days=-1),
        "notice_days",
        "negative",
    ),
    (
        "negative cadre load",
        "cadres",
        sample("cadres", max_households=-1),
        "max_households",
        "negative",
    ),
]


@pytest.mark.parametrize(
    ("slug", "body", "field", "words"), [case[1:] for case in BAD], ids=[c[0] for c in BAD]
)
def test_bad_input_names_the_field(
    codec: Codec, slug: str, body: object, field: str, words: str
) -> None:
    prepared = run(codec, slug, body)
    assert prepared.record is None
    matching = [p for f, p in prepared.problems if f == field]
    assert matching, prepared.problems
    assert any(words in p for p in matching), prepared.problems


def test_problems_never_echo_values(codec: Codec) -> None:
    secret = "500228197801010011-SECRET"
    body = _nested("households", ("personal", "citizen_id"), 12345)
    body["personal"]["head_name"] = secret
    body["township"] = ["x", secret]
    problems = run(codec, "households", body).problems
    assert problems
    assert all(secret not in f and secret not in p for f, p in problems)
