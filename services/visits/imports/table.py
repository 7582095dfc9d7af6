"""Table imports from CSV: columns, rows checked like the API's records, sent, and the report.

What the household table (`households.py`) and the cadre roster (`cadres.py`) share: a kind
declares its columns and row checks (`TableImport`); this module reads the file (UTF-8 or
GB18030), turns each row into the JSON body a client would post and runs it through the same
`records.prepare` (contract and domain checks) with `source` IMPORT, seals and sends the good
rows, and `run_csv_import` is what `shouwang import KIND FILE` prints and exits with. Problems
name the line and column, never the cell's value (cells hold names and ID numbers). A file with
any bad row imports nothing unless `skip_bad`. Event ids are uuid5 of the row's content, so
importing a file twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import io
import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.contract.codec import Codec
from services.contract.inputs import BY_SLUG
from services.platform.config import SettingsError
from services.platform.kafka.producer import BrokerUnavailable, RecordSink
from services.platform.personal.keys import KeysUnavailable
from services.platform.personal.sealer import PersonalSealer
from services.visits.domain.records import Origin, prepare

CHINA = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
SEND_CHUNK = 500


def one_of(mapping: dict[str, str]) -> Callable[[str], str]:
    lookup = {k.lower(): v for k, v in mapping.items()}
    for symbol in set(mapping.values()):
        lookup[symbol.lower()] = symbol

    def convert(cell: str) -> str:
        try:
            return lookup[cell.strip().lower()]
        except KeyError:
            raise ValueError(
                "expected one of " + ", ".join(sorted(set(mapping.values())))
            ) from None

    return convert


def as_integer(cell: str) -> int:
    text = cell.strip().replace(",", "")
    if text.endswith(".0"):  # spreadsheets export whole numbers as 3.0
        text = text[:-2]
    try:
        return int(text)
    except ValueError:
        raise ValueError("expected a whole number") from None


def as_boolean(cell: str) -> bool:
    text = cell.strip().lower()
    if text in ("是", "有", "yes", "y", "true", "1"):
        return True
    if text in ("否", "无", "no", "n", "false", "0"):
        return False
    raise ValueError("expected 是/否 (yes/no)")


def as_moment(cell: str) -> str:
    text = cell.strip().replace("/", "-")
    try:
        if len(text) <= 10:
            day = dt.date.fromisoformat(text if len(text) == 10 else _pad_date(text))
            return dt.datetime.combine(day, dt.time(), CHINA).isoformat()
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("expected a date YYYY-MM-DD or an ISO-8601 timestamp") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=CHINA)).isoformat()


def _pad_date(text: str) -> str:
    year, month, day = text.split("-")
    return f"{int(year):04d}-{int(month):02d}-{int(day):02d}"


def as_text(cell: str) -> str:
    return cell.strip()


@dataclass(frozen=True)
class Column:
    """One CSV column: the record field it fills (dotted path), header names, converter."""

    path: str
    headers: tuple[str, ...]
    convert: Callable[[str], Any]
    required: bool = False


class CsvFileError(ValueError):
    """A file that cannot be imported at all (unreadable, missing required columns)."""


@dataclass
class RowProblem:
    """A problem of one row: its line number in the file, the field and the problem."""

    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field or '<row>'}: {self.problem}"


@dataclass
class ParsedFile:
    """The records of good rows (with their lines), the problems of bad rows, warnings."""

    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: int = 0

    @property
    def bad_lines(self) -> list[int]:
        return sorted({p.line for p in self.problems})


def read_text(path: Path) -> str:
    """The file's text: UTF-8 (with or without BOM), else GB18030 (Excel's Chinese default)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            raise CsvFileError("neither UTF-8 nor GB18030 text: save it as CSV UTF-8") from None


@dataclass(frozen=True)
class TableImport:
    """What differs between imported tables: columns, event kind, key, and row checks.

    `row_checks` is called once per file and returns the check for each row (body, line) →
    problems, so a check can remember earlier rows (e.g. a cadre listed twice).
    """

    slug: str  # the event kind, as in BY_SLUG: "households", "cadres"
    columns: tuple[Column, ...]
    key_field: str
    namespace: uuid.UUID  # event ids are uuid5 of the row's content: re-imports are harmless
    row_checks: Callable[[], Callable[[dict[str, Any], int], list[RowProblem]]]

    def column_for(self, header: str) -> Column | None:
        wanted = header.strip().lstrip("\ufeff").lower()
        return next((c for c in self.columns for h in c.headers if h.lower() == wanted), None)


def parse_table(
    table: TableImport,
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
        column = table.column_for(name)
        columns.append(column)
        if column is None and name.strip():
            result.warnings.append(f"column {name.strip()!r} is not imported (unknown header)")
    present = {c.path for c in columns if c is not None}
    duplicated = {c.path for c in columns if c is not None and columns.count(c) > 1}
    if duplicated:
        raise CsvFileError("columns given twice: " + ", ".join(sorted(duplicated)))
    missing = [c for c in table.columns if c.required and c.path not in present]
    if missing:
        raise CsvFileError(
            "missing columns: "
            + "; ".join(f"{c.path} (header {' or '.join(c.headers[:2])})" for c in missing)
        )
    if "occurred_at" not in present and as_of is None:
        raise CsvFileError("no occurred_at (登记日期) column: give --as-of DATE")
    kind = BY_SLUG[table.slug]
    origin = Origin(actor=actor, source="IMPORT")
    check_row = table.row_checks()
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
        problems.extend(check_row(body, line))
        if problems:
            result.problems.extend(problems)
            continue
        body["event_id"] = str(uuid.uuid5(table.namespace, json.dumps(body, sort_keys=True)))
        prepared = prepare(codec, kind, body, origin, now, future_skew)
        if prepared.problems:
            result.problems.extend(RowProblem(line, f, p) for f, p in prepared.problems)
        else:
            result.records.append((line, prepared.record))
    return result


def _row_body(row: list[str], columns: list[Column | None], line: int):
    body: dict[str, Any] = {}
    problems: list[RowProblem] = []
    for cell, column in zip(row, columns, strict=False):
        if column is None or not cell.strip():
            continue
        try:
            value = column.convert(cell)
        except ValueError as exc:
            problems.append(RowProblem(line, f"{column.path} ({column.headers[0]})", str(exc)))
            continue
        target = body
        *parents, leaf = column.path.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return body, problems


@dataclass
class ImportReport:
    """What an import did: rows read, records acknowledged, bad lines skipped or refused."""

    rows: int
    imported: int
    bad_lines: list[int]
    problems: list[RowProblem]
    warnings: list[str]
    refused: bool  # bad rows and no skip_bad: nothing was written
    unavailable: int = 0  # records the broker did not acknowledge (re-run the import)


async def import_table(
    table: TableImport,
    text: str,
    codec: Codec,
    sink: RecordSink,
    sealer: PersonalSealer,
    actor: str,
    as_of: dt.datetime | None,
    skip_bad: bool,
    now: dt.datetime,
) -> ImportReport:
    """Check the whole file first; then write its good rows, waiting for every ack.

    Personal data is sealed for every row before the first is sent: when the key store is down
    (KeysUnavailable) nothing is written, and a re-run writes the same bytes.
    """
    parsed = parse_table(table, text, codec, actor, as_of, now)
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
    topic = BY_SLUG[table.slug].topic
    sealed = [await sealer.seal(topic.event_type, record) for _, record in parsed.records]
    for start in range(0, len(sealed), SEND_CHUNK):
        chunk = sealed[start : start + SEND_CHUNK]
        results = await asyncio.gather(
            *(
                sink.send(
                    topic.name,
                    record[table.key_field].encode("utf-8"),
                    codec.encode(topic.event_type, record),
                )
                for record in chunk
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


SealedSink = Callable[[], contextlib.AbstractAsyncContextManager[tuple[PersonalSealer, RecordSink]]]


def run_csv_import(
    table: TableImport,
    file: Path,
    *,
    actor: str,
    as_of: dt.date | None,
    skip_bad: bool,
    check: bool,
    clock: Callable[[], dt.datetime],
    sealed_sink: SealedSink,
) -> int:
    """`shouwang import KIND FILE`: check the CSV (`check`) or import it through the sealer.

    `sealed_sink()` opens the sealer and producer (bootstrap wires them); a check needs neither.
    Exit codes: 1 bad rows, 2 an unreadable file, 3 nothing or not everything acknowledged (run
    it again).
    """
    what = table.slug
    moment = dt.datetime.combine(as_of, dt.time(), CHINA) if as_of else None
    codec = Codec.default()
    now = clock()
    try:
        try:
            text = read_text(file)
        except OSError as exc:
            raise SettingsError(f"cannot read {file}: {exc.strerror}") from exc
        # Checked before the sealer or the producer connects: a file that cannot be imported
        # (bad rows without --skip-bad, or no good row with it) is refused without any I/O.
        parsed = parse_table(table, text, codec, actor, moment, now)
        all_bad = parsed.rows > 0 and len(parsed.bad_lines) == parsed.rows
        if check or (parsed.problems and (not skip_bad or all_bad)):
            for warning in parsed.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            for problem in parsed.problems:
                print(problem, file=sys.stderr)
            if check:
                print(f"{parsed.rows} rows, {len(parsed.bad_lines)} bad")
            else:  # with --skip-bad, every row is bad
                bad = "all" if skip_bad else f"{len(parsed.bad_lines)} of"
                hint = "" if skip_bad else " (fix them, or give --skip-bad to import the rest)"
                print(f"{bad} {parsed.rows} rows are bad; nothing imported{hint}", file=sys.stderr)
            return 1 if parsed.problems else 0
        report = asyncio.run(_import(table, text, codec, sealed_sink, actor, moment, skip_bad, now))
    except CsvFileError as exc:
        print(f"shouwang import {what}: {file}: {exc}", file=sys.stderr)
        return 2
    except KeysUnavailable as exc:
        print(
            f"shouwang import {what}: the personal-data key store is unreachable ({exc}); "
            "nothing was written, run the import again",
            file=sys.stderr,
        )
        return 3
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    if report.refused:  # refused above already, before any I/O
        return 1
    print(
        f"imported {report.imported} of {report.rows} rows"
        + (f", skipped {len(report.bad_lines)} bad" if report.bad_lines else "")
    )
    if report.unavailable:
        print(
            f"{report.unavailable} rows were not acknowledged by Kafka; run the import again "
            "(rows already imported are not duplicated downstream)",
            file=sys.stderr,
        )
        return 3
    return 0


async def _import(
    table: TableImport,
    text: str,
    codec: Codec,
    sealed_sink: SealedSink,
    actor: str,
    as_of: dt.datetime | None,
    skip_bad: bool,
    now: dt.datetime,
) -> ImportReport:
    async with sealed_sink() as (sealer, sink):
        return await import_table(table, text, codec, sink, sealer, actor, as_of, skip_bad, now)
