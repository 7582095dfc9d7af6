"""The households agent on rows it did not write: JSON rows of a worker before the Avro rows
(what a deployed worker's changelogs restore) and rows it cannot read."""

from __future__ import annotations

from pathlib import Path

from services.contract.topics import DEAD_LETTERS, RISK
from services.monitoring.adapters.table_codec import dump_row, load_row
from services.monitoring.entrypoints.app import TABLES
from tests.agent.monitoring.test_households_agent import harness, put_all  # noqa: F401
from tests.seed_households import wu_chickens, wu_sales_aid

JSON_ROWS = Path(__file__).parents[2] / "unit" / "monitoring" / "data" / "json_rows.jsonl"
HOUSEHOLD = b"500231-wu"


def _rows(agent):
    return agent.app.tables[TABLES[0]]


async def test_a_json_row_is_read_and_the_next_record_applies_on_top_of_it(harness):  # noqa: F811
    agent, outbox, _, _ = harness
    # the JSON row of wu_chickens + wu_sales_aid as the JSON codec wrote it (test_table_codec)
    json_row = JSON_ROWS.read_bytes().splitlines()[1]
    assert load_row(json_row).state.household_id == HOUSEHOLD.decode()
    async with agent.test_context() as context:
        _rows(agent).data[HOUSEHOLD] = json_row
        await put_all(context, wu_sales_aid()[-1:])  # a redelivery: nothing new
        await put_all(context, wu_chickens()[:1])  # and again, the first record
    stored = _rows(agent).data[HOUSEHOLD]
    # nothing lost, nothing reset; written back in Avro (its chain took in the new positions)
    assert stored[:2] == b"\xc3\x01"
    assert load_row(stored).state == load_row(json_row).state
    assert outbox.records(DEAD_LETTERS.name) == []
    # the redeliveries re-send the last emitted assessment the JSON row remembers
    assert {str(r["event_id"]) for r in outbox.records(RISK.name)} == {
        load_row(json_row).emitted_event_id
    }


async def test_a_row_it_cannot_read_dead_letters_the_records_and_keeps_the_row(harness):  # noqa: F811
    agent, outbox, _, _ = harness
    json_row = JSON_ROWS.read_bytes().splitlines()[1]
    unknown = dump_row(load_row(json_row))
    unknown = unknown[:2] + bytes(8) + unknown[10:]  # a row schema this worker does not know
    async with agent.test_context() as context:
        _rows(agent).data[HOUSEHOLD] = unknown
        await put_all(context, wu_chickens()[:1])
    assert _rows(agent).data[HOUSEHOLD] == unknown
    (dead,) = outbox.records(DEAD_LETTERS.name)
    assert dead["error_kind"] == "NOT_APPLICABLE"
    assert "RowFormatError" in dead["error"] and "0000000000000000" in dead["error"]
    assert "HouseholdRow v1" in dead["error"]
    assert outbox.records(RISK.name) == []
