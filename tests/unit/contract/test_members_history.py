"""Registry v1/v2 and hardship v1 records, written with their own schemas, decode under today's
(v3 / v2) with the new fields' defaults, and monitoring reads them as before."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import fastavro
import pytest

from services.contract.codec import MAGIC, Codec
from services.contract.schemas import SchemaRegistry, load_version
from services.monitoring.adapters import avro_translation as monitoring
from services.support.adapters import avro_translation as support
from tests.records import diagnosis, expense, hardship, member, registry

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
CODEC = Codec(SchemaRegistry.from_directory(SCHEMAS))
WHEN = dt.datetime(2020, 5, 14, 10, tzinfo=dt.UTC)


def written_with(history: str, record: dict) -> dict:
    old = load_version(json.loads((SCHEMAS / "history" / history).read_text()), history)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, old.parsed, record)
    decoded = CODEC.decode(MAGIC + old.fingerprint + body.getvalue())
    assert decoded.writer_fingerprint == old.fingerprint
    return decoded.record


@pytest.mark.parametrize("history", ["household_registry.v1.avsc", "household_registry.v2.avsc"])
def test_an_older_registry_record_decodes_without_members(history):
    _, record = registry("H-1", WHEN, count=2, labour=1)
    record = {k: v for k, v in record.items() if k != "personal_sealed" or "v2" in history}
    record["members"] = {k: v for k, v in record["members"].items() if k != "people"}
    decoded = written_with(history, record)
    assert decoded["members"]["people"] == [] and decoded["members"]["labour"] == 1
    assert monitoring.registry_from(decoded).people == ()
    assert support.registry_from(decoded).people == ()


def test_a_v1_hardship_decodes_and_reads_as_an_expense():
    _, record = hardship("H-1", WHEN, "ILLNESS", 10000)
    decoded = written_with(
        "hardship_report.v1.avsc",
        {k: v for k, v in record.items() if k not in ("expense", "diagnosis")},
    )
    assert decoded["expense"] is None and decoded["diagnosis"] is None
    event = monitoring.hardship_from(decoded)
    assert (event.expense.amount_yuan, event.expense.kind, event.diagnosis) == (
        10000,
        "MEDICAL",
        None,
    )


def test_v3_and_v2_records_round_trip():
    people = [member("1", "1978-03", health="DISABILITY", grade=2, migrant_months=4)]
    event_type, record = registry("H-1", WHEN, people=people)
    decoded = CODEC.decode(CODEC.encode(event_type, record)).record
    assert decoded["members"]["people"] == people
    event = monitoring.registry_from(decoded)
    assert event.people[0].disability_grade == 2 and event.people[0].migrant_work_months == 4
    assert event.members.disabled == 1 and event.members.labour == 1
    event_type, record = hardship(
        "H-1", WHEN, expense=expense(900, "EDUCATION"), diagnosis=diagnosis(member_index=0)
    )
    decoded = CODEC.decode(CODEC.encode(event_type, record)).record
    read = monitoring.hardship_from(decoded)
    assert read.rigid_expenditure_yuan == 900 and read.expense.kind == "EDUCATION"
    assert (read.diagnosis.member_index, read.diagnosis.condition) == (0, "SERIOUS_ILLNESS")


def test_monitoring_refuses_an_impossible_birth_month():
    _, record = registry("H-1", WHEN, people=[member("1", "1978-03")])
    record["members"]["people"][0]["birth_month"] = 13
    with pytest.raises(monitoring.Untranslatable, match=r"people\[0\]\.birth_month"):
        monitoring.registry_from(record)
