"""Cadre registry CSV import: rows → CadreRegistryRecorded on cadre.registry, keyed by cadre id.

The same path as `shouwang import households` (services/visits/household_import.py): each row
becomes the JSON body a client would post to /v1/cadres and goes through `records.prepare`
(contract and domain checks) with `source` IMPORT and the operator as `actor`. Headers are
English field names or the Chinese column names of county rosters (see COLUMNS). Problems are
reported by line and column, never with the cell's value (names and phones are personal). A file
with any bad row imports nothing unless `skip_bad`. Event ids are uuid5 of the row's content, so
importing a file twice is harmless.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import uuid
from typing import Any

from services.contract.codec import Codec
from services.visits.household_import import (
    Column,
    CsvFileError,
    ImportReport,
    ParsedFile,
    RowProblem,
    _boolean,
    _integer,
    _moment,
    _row_body,
    _text,
)
from services.visits.producer import BrokerUnavailable, RecordSink
from services.visits.records import BY_SLUG, Origin, prepare

CADRE_IMPORT_NAMESPACE = uuid.UUID("3c5e9a10-7d42-5b8f-a1e6-2b9d4c0f7e31")
SEND_CHUNK = 500

COLUMNS: tuple[Column, ...] = (
    Column("cadre_id", ("cadre_id", "干部编号", "帮扶干部编号", "工号"), _text, True),
    Column("township", ("township", "乡镇", "乡镇（街道）", "乡镇(街道)", "街道"), _text, True),
    Column("village", ("village", "村", "行政村", "帮扶村"), _text),
    Column("department", ("department", "单位", "派出单位", "所在单位"), _text, True),
    Column(
        "max_households",
        ("max_households", "最多帮扶户数", "帮扶户数上限", "联系户数上限"),
        _integer,
        True,
    ),
    Column("active", ("active", "在岗", "是否在岗"), _boolean),
    Column("personal.name", ("name", "姓名", "干部姓名"), _text),
    Column("personal.phone", ("phone", "联系电话", "电话"), _text),
    Column("occurred_at", ("occurred_at", "登记日期", "日期"), _moment),
)
_BY_HEADER = {h.lower(): c for c in COLUMNS for h in c.headers}


def parse(
    text: str,
    codec: Codec,
    actor: str,
    as_of: dt.datetime | None,
    now: dt.datetime,
    future_skew: dt.timedelta = dt.timedelta(minutes=5),
) -> ParsedFile:
    """Check every row; `as_of` is the occurred_at of rows without their own date column."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFileError("the file is empty: expected a header row") from None
    result = ParsedFile()
    columns: list[Column | None] = []
    for name in header:
        column = _BY_HEADER.get(name.strip().lstrip("\ufeff").lower())
        columns.append(column)
        if column is None and name.strip():
            result.warnings.append(f"column {name.strip()!r} is not imported (unknown header)")
    present = {c.path for c in columns if c is not None}
    duplicated = {c.path for c in columns if c is not None and columns.count(c) > 1}
    if duplicated:
        raise CsvFileError("columns given twice: " + ", ".join(sorted(duplicated)))
    missing = [c for c in COLUMNS if c.required and c.path not in present]
    if missing:
        raise CsvFileError(
            "missing columns: "
            + "; ".join(f"{c.path} (header {' or '.join(c.headers[:2])})" for c in missing)
        )
    if "occurred_at" not in present and as_of is None:
        raise CsvFileError("no occurred_at (登记日期) column: give --as-of DATE")
    kind = BY_SLUG["cadres"]
    origin = Origin(actor=actor, source="IMPORT")
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        result.rows += 1
        if len(row) > len(columns):
            result.problems.append(RowProblem(line, "", "more cells than header columns"))
            continue
        body, problems = _row_body(row, columns, line)
        if "occurred_at" not in body and as_of is not None:
            body["occurred_at"] = as_of.isoformat()
        if "personal" in body and "name" not in body["personal"]:
            problems.append(RowProblem(line, "personal.name (name)", "a phone needs a name"))
        cadre_id = body.get("cadre_id")
        if cadre_id in seen:  # two rows for one cadre: which one holds is ambiguous
            problems.append(
                RowProblem(line, "cadre_id (cadre_id)", f"also on line {seen[cadre_id]}")
            )
        elif cadre_id:
            seen[cadre_id] = line
        if problems:
            result.problems.extend(problems)
            continue
        body["event_id"] = str(
            uuid.uuid5(CADRE_IMPORT_NAMESPACE, json.dumps(body, sort_keys=True, ensure_ascii=False))
        )
        prepared = prepare(codec, kind, body, origin, now, future_skew)
        if prepared.problems:
            result.problems.extend(RowProblem(line, f, p) for f, p in prepared.problems)
        else:
            result.records.append((line, prepared.record))
    return result


async def import_cadres(
    text: str,
    codec: Codec,
    sink: RecordSink,
    actor: str,
    as_of: dt.datetime | None,
    skip_bad: bool,
    now: dt.datetime,
) -> ImportReport:
    """Check the whole file first; then write its good rows, waiting for every ack."""
    parsed = parse(text, codec, actor, as_of, now)
    report = ImportReport(
        rows=parsed.rows,
        imported=0,
        bad_lines=parsed.bad_lines,
        problems=parsed.problems,
        warnings=parsed.warnings,
        refused=bool(parsed.problems) and not skip_bad,
    )
    if report.refused:
        return report
    topic = BY_SLUG["cadres"].topic
    records: list[dict[str, Any]] = [record for _, record in parsed.records]
    for start in range(0, len(records), SEND_CHUNK):
        results = await asyncio.gather(
            *(
                sink.send(
                    topic.name,
                    record["cadre_id"].encode("utf-8"),
                    codec.encode(topic.event_type, record),
                )
                for record in records[start : start + SEND_CHUNK]
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BrokerUnavailable):
                report.unavailable += 1
            elif isinstance(result, BaseException):
                raise result
            else:
                report.imported += 1
    return report
