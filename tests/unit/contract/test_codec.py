"""The contract's codec: schemas parse, records round-trip, old versions resolve, bad bytes fail."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.codec import HEADER_LENGTH, MAGIC, Codec
from services.contract.errors import (
    ContractError,
    CorruptFrame,
    IncompatibleSchema,
    InvalidRecord,
    UnknownEventType,
    UnknownSchema,
)
from services.contract.schemas import SchemaRegistry, load_version
from tests import records
from tests.avro_strategies import normalised
from tests.avro_strategies import records as any_record

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
CODEC = Codec(SchemaRegistry.from_directory(SCHEMAS))
EVENT_TYPES = sorted(CODEC.registry.current)
NOW = dt.datetime(2020, 5, 16, 9, 30, tzinfo=dt.UTC)


def visit(**fields):
    """A visit that found the policy card fallen off the wall and put it back on the spot."""
    _, record = records.visit(
        "500228-001-0042",
        NOW,
        visit_id="v-1",
        card="MISSING",
        problems=(("POLICY_CARD", "card fell off the wall", True),),
        **fields,
    )
    return record


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification writes it (its Java reference code)."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_every_schema_has_namespace_and_doc_on_every_field():
    for path in sorted(SCHEMAS.glob("*.avsc")):
        raw = json.loads(path.read_text())
        assert raw["namespace"] == "shouwang.events", path.name
        assert raw.get("doc"), path.name

        def walk(node, where, path=path):
            if isinstance(node, list):
                for branch in node:
                    walk(branch, where, path)
            elif isinstance(node, dict):
                for field in node.get("fields", []):
                    assert field.get("doc"), f"{path.name}: {where}.{field['name']} has no doc"
                    walk(field["type"], f"{where}.{field['name']}", path)
                for key in ("items", "values"):
                    if key in node:
                        walk(node[key], where, path)

        walk(raw, raw["name"])


def test_every_event_type_of_the_design_is_in_the_contract():
    short = {name.rsplit(".", 1)[-1] for name in EVENT_TYPES}
    assert short == {
        "HouseholdRegistryRecorded",
        "VisitRecorded",
        "IncomeUpdated",
        "HardshipReported",
        "MeasureStepRecorded",
        "ProblemRecorded",
        "ReviewDecided",
        "CadreRegistryRecorded",
        "RiskAssessed",
        "DeadLetter",
        "OperatorActionRecorded",
    }


def test_money_is_never_a_float():
    for path in SCHEMAS.glob("*.avsc"):
        text = path.read_text()
        for field in json.loads(text)["fields"]:
            if "yuan" in field["name"]:
                assert "float" not in json.dumps(field["type"]), f"{path.name}:{field['name']}"
                assert "double" not in json.dumps(field["type"]), f"{path.name}:{field['name']}"


def test_personal_data_is_one_marked_sub_record():
    raw = json.loads((SCHEMAS / "household_registry.avsc").read_text())
    personal = next(f for f in raw["fields"] if f["name"] == "personal")
    assert personal["x-personal"] is True
    record = personal["type"][1]
    assert {f["name"] for f in record["fields"]} == {"head_name", "citizen_id", "phone", "members"}
    members = next(f for f in record["fields"] if f["name"] == "members")["type"]["items"]
    assert {f["name"] for f in members["fields"]} == {"member_id", "name", "citizen_id"}
    # the member list outside it holds no names or ID numbers
    people = next(f for f in raw["fields"] if f["name"] == "members")["type"]["fields"]
    member = next(f for f in people if f["name"] == "people")["type"]["items"]
    assert not {f["name"] for f in member["fields"]} & {"name", "citizen_id", "phone"}
    top_level = {f["name"] for f in raw["fields"]}
    assert not top_level & {"head_name", "citizen_id", "phone", "name"}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_valid_record_round_trips(event_type, data):
    schema = CODEC.registry.current[event_type].parsed
    record = data.draw(any_record(schema))
    assert CODEC.validate(event_type, record) == []
    decoded = CODEC.decode(CODEC.encode(event_type, record))
    assert decoded.event_type == event_type
    assert normalised(decoded.record) == normalised(record)


def test_frame_layout_is_avro_single_object_encoding():
    version = CODEC.registry.schema("VisitRecorded")
    frame = CODEC.encode("VisitRecorded", visit())
    assert frame[:2] == MAGIC == b"\xc3\x01"
    expected = crc64_avro(version.canonical.encode()).to_bytes(8, "little")
    assert frame[2:HEADER_LENGTH] == expected
    body = io.BytesIO(frame[HEADER_LENGTH:])
    assert fastavro.schemaless_reader(body, version.parsed)["visit_id"] == "v-1"


def test_the_reference_crc_matches_the_specification_vector_and_the_codec():
    # The Avro specification's test vector: the fingerprint of the schema "int".
    assert crc64_avro(b'"int"') == 0x7275D51A3F395C8F
    for version in CODEC.registry.by_fingerprint.values():
        assert version.fingerprint == crc64_avro(version.canonical.encode()).to_bytes(8, "little")


def test_a_visit_written_with_version_1_decodes_under_the_current_schema():
    old = load_version(json.loads((SCHEMAS / "history" / "visit.v1.avsc").read_text()), "v1")
    current = CODEC.registry.schema("VisitRecorded")
    assert old.fingerprint != current.fingerprint
    record = visit()
    body = io.BytesIO()
    fastavro.schemaless_writer(body, old.parsed, record)
    frame = MAGIC + old.fingerprint + body.getvalue()

    decoded = CODEC.decode(frame)

    assert decoded.writer_fingerprint == old.fingerprint
    assert decoded.record["five_visits"] is None  # added in version 2, default applies
    assert decoded.record["geo"] is None
    assert decoded.record["policy_card"] == "MISSING"


def test_a_history_version_the_current_schema_cannot_read_is_refused_at_load():
    current = CODEC.registry.schema("IncomeUpdated")
    raw = json.loads(Path(current.source).read_text())
    # An old writer whose `members_counted` was a string cannot be read as an int.
    for field in raw["fields"]:
        if field["name"] == "members_counted":
            field["type"] = "string"
    with pytest.raises(IncompatibleSchema, match="members_counted|string|int"):
        SchemaRegistry([current], [load_version(raw, "bad-history.avsc")])


def test_a_current_schema_change_without_default_breaks_reading_history():
    raw = json.loads((SCHEMAS / "visit.avsc").read_text())
    raw["fields"].append({"name": "mandatory_new", "type": "string", "doc": "no default"})
    v1 = json.loads((SCHEMAS / "history" / "visit.v1.avsc").read_text())
    with pytest.raises(IncompatibleSchema, match="mandatory_new"):
        SchemaRegistry([load_version(raw, "visit.avsc")], [load_version(v1, "visit.v1.avsc")])


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (b"", "not an Avro single-object frame: 0 bytes"),
        (b"{}", "not an Avro single-object frame"),
        (b"\xc3\x02" + b"\0" * 12, "expected marker c301"),
        (b"\xc3\x01\x01", "not an Avro single-object frame: 3 bytes"),
    ],
)
def test_bytes_that_are_not_a_frame_are_refused(frame, problem):
    with pytest.raises(CorruptFrame, match=problem):
        CODEC.decode(frame)


def test_an_unknown_fingerprint_is_refused_with_its_value():
    frame = CODEC.encode("VisitRecorded", visit())
    forged = MAGIC + bytes.fromhex("0123456789abcdef") + frame[HEADER_LENGTH:]
    with pytest.raises(UnknownSchema, match="0123456789abcdef"):
        CODEC.decode(forged)


def test_truncated_and_padded_bodies_are_refused():
    frame = CODEC.encode("VisitRecorded", visit())
    with pytest.raises(CorruptFrame, match="corrupt shouwang.events.VisitRecorded body"):
        CODEC.decode(frame[:-5])
    with pytest.raises(CorruptFrame, match="1 trailing bytes"):
        CODEC.decode(frame + b"\0")


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=200), cut=st.integers(0, 200))
def test_garbage_never_escapes_as_anything_but_a_contract_error(garbage, cut):
    frame = CODEC.encode("VisitRecorded", visit())
    for candidate in (garbage, frame[:HEADER_LENGTH] + garbage, frame[:cut] + garbage):
        try:
            CODEC.decode(candidate)
        except CorruptFrame:
            pass


def test_a_frame_of_the_wrong_type_is_refused_when_a_type_is_expected():
    frame = CODEC.encode("VisitRecorded", visit())
    with pytest.raises(CorruptFrame, match="expected a IncomeUpdated frame"):
        CODEC.decode(frame, expected="IncomeUpdated")
    assert CODEC.decode(frame, expected="shouwang.events.VisitRecorded").record["visit_id"]


def test_validation_names_every_bad_field_by_path():
    bad = visit(event_id="not-a-uuid", source="PIGEON", occurred_at=dt.datetime(2020, 5, 16))
    bad["checks"]["water"] = {"status": "MAYBE"}
    bad["problems"][0]["fixed_on_spot"] = "yes"
    bad["unexpected"] = 1
    del bad["actor"]

    problems = dict(CODEC.validate("VisitRecorded", bad))

    assert problems == {
        "event_id": "expected a UUID",
        "source": "expected one of APP, FEED, OPERATOR, SERVICE, IMPORT",
        "occurred_at": "timestamp needs a time zone offset",
        "actor": "required field missing",
        "checks.water.status": "expected one of SECURED, PROBLEM, NOT_CHECKED",
        "problems[0].fixed_on_spot": "expected true/false, got a string",
        "unexpected": "unknown field",
    }


def test_validation_never_echoes_values():
    secret = "500228198001011234"
    record = {"personal": {"head_name": 5, "citizen_id": secret, "phone": 7}}
    problems = CODEC.validate("HouseholdRegistryRecorded", record)
    assert problems and secret not in repr(problems)


def test_encoding_an_invalid_record_raises_with_the_problems():
    with pytest.raises(InvalidRecord) as raised:
        CODEC.encode("VisitRecorded", {**visit(), "checks": {"food": {"status": "SECURED"}}})
    assert ("checks.clothing", "required field missing") in raised.value.problems


def test_unknown_event_types_are_named():
    with pytest.raises(UnknownEventType, match="'Gossip'.*VisitRecorded"):
        CODEC.encode("Gossip", {})


def test_a_broken_schema_file_names_the_file(tmp_path):
    (tmp_path / "broken.avsc").write_text('{"type": "record", "name": "X", "fields": [')
    with pytest.raises(ContractError, match="broken.avsc"):
        SchemaRegistry.from_directory(tmp_path)
