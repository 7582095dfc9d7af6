"""The monitoring table codec: Avro rows round-trip any row exactly and deterministically, JSON
rows written before them still load, and a row it cannot read fails naming its version."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import types
import typing
from pathlib import Path

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.codec import Codec
from services.monitoring.adapters import table_codec
from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.adapters.table_codec import (
    RowCache,
    RowFormatError,
    dump_row,
    dump_summary,
    load_row,
    load_summary,
)
from services.monitoring.domain import events
from services.monitoring.domain.row import Row, Summary
from services.monitoring.domain.state import LIMITS, HouseholdState
from services.monitoring.service import Position, apply_record
from tests import seed_households as seed
from tests.unit.monitoring.events import domain

DATA = Path(__file__).parent / "data"
LONG = st.integers(-(2**63), 2**63 - 1)
ZONES = st.sampled_from(
    [dt.UTC, dt.timezone(dt.timedelta(hours=8)), dt.timezone(-dt.timedelta(hours=5, minutes=30))]
)
# Avro keeps a timestamp's instant to the microsecond; any aware datetime in its range
AWARE = st.datetimes(
    min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2200, 1, 1), timezones=ZONES
)
TEXT = st.text(max_size=12)
IDS = st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=8))


def _values(hint: typing.Any, household_id: str) -> st.SearchStrategy:
    """A strategy for a domain field's type hint (the events' own hints, nothing retyped)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return st.none() | _values(inner, household_id)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(_values(args[0], household_id), max_size=3).map(tuple)
        return st.tuples(*(_values(a, household_id) for a in args))
    if dataclasses.is_dataclass(hint):
        return _instances(hint, household_id)
    return {str: TEXT, int: LONG, bool: st.booleans(), dt.datetime: AWARE, dt.date: st.dates()}[
        hint
    ]


def _instances(cls: type, household_id: str) -> st.SearchStrategy:
    hints = typing.get_type_hints(cls)
    fields = {}
    for f in dataclasses.fields(cls):
        if f.name == "household_id":
            fields[f.name] = st.just(household_id)
        elif f.name == "event_id":
            fields[f.name] = IDS
        else:
            fields[f.name] = _values(hints[f.name], household_id)
    return st.builds(cls, **fields)


@st.composite
def rows(draw) -> Row:
    household_id = draw(st.text(min_size=1, max_size=14))
    kinds = {
        kind: tuple(draw(st.lists(_instances(_KIND_CLASSES[kind], household_id), max_size=3)))
        for kind in LIMITS
    }
    kept = sorted({e.event_id for kept_events in kinds.values() for e in kept_events})
    # usually every kept id plus dropped ones, as the fold makes it; any set is stored faithfully
    seen = set(draw(st.lists(IDS, max_size=4)))
    seen |= set(kept) - set(draw(st.lists(st.sampled_from(kept), max_size=2)) if kept else [])
    state = HouseholdState(
        household_id,
        frozenset(seen),
        last_occurred_at=draw(st.none() | AWARE),
        **kinds,
    )
    return Row(
        state,
        tuple(draw(st.lists(st.tuples(TEXT, LONG, LONG, TEXT), max_size=3))),
        draw(TEXT),
        draw(TEXT),
        draw(st.none() | AWARE),
        draw(TEXT),
        draw(st.none() | AWARE),
    )


_KIND_CLASSES = {
    "registry": events.RegistryRecorded,
    "visits": events.VisitRecorded,
    "incomes": events.IncomeUpdated,
    "hardships": events.HardshipReported,
    "decisions": events.ReviewDecided,
    "measures": events.MeasureStepRecorded,
    "problems": events.ProblemRecorded,
}


def _whole_record(row: Row) -> bytes:
    """The row as fastavro writes the whole record at once: the reference for the fast path."""
    schema = table_codec._row()
    s = row.state
    kept = {e.event_id for kind in LIMITS for e in getattr(s, kind)}
    datum = {
        "household_id": s.household_id,
        "seen_beyond_kept": sorted(set(s.seen) - kept),
        "kept_not_seen": sorted(kept - set(s.seen)),
        "last_occurred_at": s.last_occurred_at,
        "chain": [
            dict(zip(("topic", "partition", "offset", "head"), c, strict=True)) for c in row.chain
        ],
        "emitted_digest": row.emitted_digest,
        "emitted_event_id": row.emitted_event_id,
        "emitted_as_of": row.emitted_as_of,
        "emitted_chain_hash": row.emitted_chain_hash,
        "emitted_recorded_at": row.emitted_recorded_at,
        **{kind: [schema.to_avro[kind](e) for e in getattr(s, kind)] for kind in LIMITS},
    }
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema.version.parsed, datum, strict=True)
    return schema.version.fingerprint + buffer.getvalue()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows())
def test_any_row_round_trips_exactly_and_deterministically(row):
    raw = dump_row(row)
    back = load_row(raw)
    assert back == row
    assert back.state.seen == row.state.seen
    assert dump_row(back) == raw  # the same value, the same bytes
    assert raw[:2] == b"\xc3\x01" and raw[2:] == _whole_record(row)
    ids = [e.event_id for kind in LIMITS for e in getattr(row.state, kind)]
    if len(set(ids)) == len(ids):  # the cache's premise: within a household an id names one event
        cache = RowCache(rows=2, fragments=3)
        assert cache.dump(b"k", row) == raw and cache.dump(b"k", back) == raw
        assert cache.load(b"k", raw) == row


@settings(max_examples=100, deadline=None)
@given(
    st.builds(
        Summary,
        TEXT,
        st.none() | TEXT,
        TEXT,
        TEXT,
        st.lists(TEXT, max_size=3).map(tuple),
        LONG,
        LONG,
        LONG,
        st.none() | st.dates(),
    )
)
def test_any_summary_round_trips(summary):
    raw = dump_summary(summary)
    assert load_summary(raw) == summary and dump_summary(load_summary(raw)) == raw


def sample_rows() -> list[tuple[Row, Summary]]:
    """Rows and summaries the worker makes of the seed's stories (`apply_record`, in order)."""
    codec, book = Codec.default(), load_policies()
    now = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    stories = [
        seed.zhou_uremia(),
        seed.wu_chickens() + seed.wu_sales_aid(),
        seed.monitored_then_eliminated(),  # the procedure's decisions, notice dates
        seed.sudden_hardship(),  # an expense and a diagnosis
        seed.general_key_with_a_bill(),
        seed.policy_card_fixed_on_the_spot(),  # a visit's problem
    ]
    out = []
    for records in stories:
        outcome = None
        for i, (record, event) in enumerate(zip(records, domain(records), strict=True)):
            outcome = apply_record(
                outcome.row if outcome else None,
                event,
                Position("household.visits", 0, i),
                codec.encode(*record),
                book,
                now,
                event_clock=True,
            )
        out.append((outcome.row, outcome.summary))
    return out


def test_json_rows_written_before_the_avro_rows_still_load():
    """data/json_rows.jsonl and json_summaries.jsonl were written by the JSON codec (main at
    d5a0de6, `dump_row` / `dump_summary`) from `sample_rows()`: what a deployed worker's
    changelogs hold. They load as the rows they were, and are written back in Avro."""
    rows = (DATA / "json_rows.jsonl").read_bytes().splitlines()
    summaries = (DATA / "json_summaries.jsonl").read_bytes().splitlines()
    expected = sample_rows()
    assert len(rows) == len(summaries) == len(expected)
    for raw, raw_summary, (row, summary) in zip(rows, summaries, expected, strict=True):
        assert raw.startswith(b'{"format":1')
        loaded = load_row(raw)
        assert loaded == row
        assert load_summary(raw_summary) == summary
        assert load_row(dump_row(loaded)) == row
        assert RowCache().load(b"k", raw) == row


def test_the_avro_row_is_smaller_than_the_json_row():
    for raw, (row, _) in zip(
        (DATA / "json_rows.jsonl").read_bytes().splitlines(), sample_rows(), strict=True
    ):
        assert len(dump_row(row)) < len(raw)


def _row() -> Row:
    return sample_rows()[0][0]


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda raw: raw[:2] + b"\x00" * 8 + raw[10:], "fingerprint 0000000000000000"),
        (lambda raw: raw[:40], "HouseholdRow v1"),
        (lambda raw: raw + b"\x00", "HouseholdRow v1"),
        (lambda raw: b"\x00\x01garbage", "not a monitoring row"),
        (lambda raw: b"", "not a monitoring row"),
        (lambda raw: b'{"format":7}', "JSON row: ValueError: format 7"),
        (lambda raw: b'{"format":1,"household_id":"h"}', "JSON row: KeyError"),
        (lambda raw: b"{not json", "JSON row"),
    ],
)
def test_a_row_it_cannot_read_fails_naming_its_version_and_why(damage, says):
    with pytest.raises(RowFormatError, match=says.replace("(", r"\(")):
        load_row(damage(dump_row(_row())))


def test_an_unknown_row_version_says_which_one_and_which_it_reads():
    raw = dump_row(_row())
    with pytest.raises(RowFormatError) as caught:
        load_row(raw[:2] + bytes(range(8)) + raw[10:])
    message = str(caught.value)
    assert "0001020304050607" in message and "newer code" in message
    assert f"HouseholdRow v1 (fingerprint {raw[2:10].hex()})" in message


def test_a_naive_datetime_is_refused_not_stored_as_another_value():
    row = _row()
    naive = dataclasses.replace(row.state, last_occurred_at=dt.datetime(2020, 1, 1))
    with pytest.raises(ValueError, match="naive datetime"):
        dump_row(dataclasses.replace(row, state=naive))


def test_the_table_schemas_are_not_contract_events():
    assert not any(name.startswith("shouwang.tables.") for name in Codec.default().registry.current)
