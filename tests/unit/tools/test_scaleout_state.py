"""The scale-out scenario's state check: the one-worker rows of a log and the table's rows read
back from its changelog compare equal when the table holds every event, and differ when it
lacks one or holds another order of a topic's records."""

from __future__ import annotations

from datetime import UTC, datetime

from services.monitoring.adapters.table_codec import dump_row
from services.platform.kafka.log import LogRecord
from services.tools.faults.scaleout import one_worker_rows, table_rows
from tests import records
from tests.unit.audit.emitter import as_log

NOW = datetime(2020, 6, 1, tzinfo=UTC)


def county_log() -> list[LogRecord]:
    return as_log(
        [
            records.registry("H1", records.at("2020-03-01"), labour=2),
            records.visit("H1", records.at("2020-04-01"), income=300),
            records.registry("H2", records.at("2020-03-02"), labour=0),
            records.visit("H2", records.at("2020-04-02"), visit_id="v2"),
            records.visit("H1", records.at("2020-05-01"), visit_id="v3", income=100),
        ]
    )


def changelog(rows) -> list[LogRecord]:
    """The rows as a table's changelog holds them, with an older value of H1 first."""
    out = [LogRecord("changelog", 0, 0, 0, b"H1", b"stale")]  # replaced by the later value
    for i, (household, row) in enumerate(sorted(rows.items()), start=1):
        out.append(LogRecord("changelog", 0, i, 0, household.encode(), dump_row(row)))
    return out


def comparable(rows) -> dict:
    return {h: (row.state, row.chain) for h, row in rows.items()}


def test_the_table_of_every_event_is_the_one_worker_table():
    log = county_log()
    want = one_worker_rows(log, NOW)
    assert set(want) == {"H1", "H2"}
    assert want["H1"].state.version == 3
    assert comparable(table_rows(changelog(want))) == comparable(want)


def test_redelivered_records_change_nothing():
    log = county_log()
    assert comparable(one_worker_rows([*log, *log], NOW)) == comparable(one_worker_rows(log, NOW))


def test_a_table_lacking_an_event_differs():
    log = county_log()
    want = one_worker_rows(log, NOW)
    short = one_worker_rows(log[:-1], NOW)
    assert comparable(table_rows(changelog(short))) != comparable(want)


def test_records_refused_by_the_worker_are_left_out():
    log = county_log()
    garbage = LogRecord(log[0].topic, log[0].partition, 99, 0, b"H1", b"not avro")
    assert comparable(one_worker_rows([*log, garbage], NOW)) == comparable(
        one_worker_rows(log, NOW)
    )
