"""The read model's statements: each row statement's row and bulk forms, and the stored ranks."""

from __future__ import annotations

import re

import pytest

from services.contract import vocabulary
from services.readmodel.bulk import in_rounds
from services.readmodel.projection import MEASURE_STATUS_RANK, MEASURE_TERMINAL_RANK
from services.readmodel.statements import BULK_STATEMENTS, STAGING, STATEMENTS, TABLE_OF, UPSERTS

PARAM = re.compile(r"\$(\d+)")


def test_every_statement_writes_one_table_and_every_row_statement_but_position_is_staged():
    assert set(TABLE_OF) == set(STATEMENTS)
    assert set(BULK_STATEMENTS) == set(STAGING) == set(STATEMENTS) - {"position"}
    assert {STAGING[name] for name in STAGING} == {f"bulk_{name}" for name in STAGING}


@pytest.mark.parametrize("name", sorted(STAGING))
def test_the_bulk_form_reads_each_argument_from_its_staged_column(name):
    row, bulk = STATEMENTS[name], BULK_STATEMENTS[name]
    upsert = UPSERTS[name]
    columns = PARAM.sub(lambda m: f"b.c{m.group(1)}", upsert.values)
    assert f"VALUES ({upsert.values})" in row
    assert f"SELECT {columns} FROM {STAGING[name]} AS b WHERE b.round = $1 ON CONFLICT" in bulk
    assert PARAM.findall(bulk) == ["1"]  # the round, and nothing else
    # The same INSERT head and ON CONFLICT clause around either source of rows.
    assert row.split("VALUES")[0] == bulk.split("SELECT b.")[0]
    assert row.split("ON CONFLICT", 1)[1] == bulk.split("ON CONFLICT", 1)[1]


def test_a_measure_at_the_terminal_rank_keeps_its_status():
    # Stored ranks are the vocabulary's + 2; completed and cancelled are the last, 5 in rows.
    assert MEASURE_TERMINAL_RANK == 5
    # Rows already stored carry these exact numbers: a step added to the schema's enum must be
    # a decision here (and a migration), not a silent shift of the stored ranks.
    assert dict(MEASURE_STATUS_RANK) == {
        "RECOMMENDED": 2,
        "ACCEPTED": 3,
        "DELIVERED": 4,
        "COMPLETED": 5,
        "CANCELLED": 5,
    }
    ranks = vocabulary.measure_step_ranks()
    assert {step: rank - 2 for step, rank in MEASURE_STATUS_RANK.items()} == ranks
    measure = STATEMENTS["measure"]
    assert measure.count("m.status_rank < 5") == 5  # status, waiting_for, its time, rank, reasons
    assert not re.search(r"status_rank\s*[<>=]+\s*[0-46-9]", measure)


def test_rows_of_one_key_go_to_successive_rounds_in_batch_order():
    rows = [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("c", 1), ("b", 2)]
    numbered, rounds = in_rounds(rows)
    assert rounds == 3
    assert numbered == [
        (0, "a", 1), (0, "b", 1), (1, "a", 2), (2, "a", 3), (0, "c", 1), (1, "b", 2)
    ]  # fmt: skip
    assert in_rounds([]) == ([], 0)
