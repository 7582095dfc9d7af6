"""Household table (户表) CSV import: rows → HouseholdRegistryRecorded through the API's checks.

Each row becomes the JSON body a client would post to /v1/households and goes through the
same `records.prepare` (contract and domain checks), with `source` IMPORT and the operator as
`actor`. Headers may be English field names or the Chinese column names of county tables
(see COLUMNS). Problems are reported by line number and column, never with the cell's value
(cells hold names and ID numbers). A file with any bad row imports nothing unless `skip_bad`.
Event ids are derived from the row's content (uuid5), so importing a file twice is harmless.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.contract.codec import Codec
from services.contract.inputs import BY_SLUG
from services.platform.kafka.producer import BrokerUnavailable, RecordSink
from services.platform.personal.sealer import PersonalSealer
from services.visits.domain.records import Origin, prepare

CHINA = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
IMPORT_NAMESPACE = uuid.UUID("6f1d8a52-4a8e-5b63-9a51-0c3e2f6d7b10")
SEND_CHUNK = 500


def _choices(mapping: dict[str, str]) -> Callable[[str], str]:
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


def _integer(cell: str) -> int:
    text = cell.strip().replace(",", "")
    if text.endswith(".0"):  # spreadsheets export whole numbers as 3.0
        text = text[:-2]
    try:
        return int(text)
    except ValueError:
        raise ValueError("expected a whole number") from None


def _boolean(cell: str) -> bool:
    text = cell.strip().lower()
    if text in ("是", "有", "yes", "y", "true", "1"):
        return True
    if text in ("否", "无", "no", "n", "false", "0"):
        return False
    raise ValueError("expected 是/否 (yes/no)")


def _moment(cell: str) -> str:
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


def _text(cell: str) -> str:
    return cell.strip()


REGISTRATION = _choices(
    {
        "已脱贫": "LIFTED",
        "脱贫户": "LIFTED",
        "未脱贫": "NOT_LIFTED",
        "贫困户": "NOT_LIFTED",
        "非贫困户": "NEVER_REGISTERED",
        "一般农户": "NEVER_REGISTERED",
    }
)
LIVELIHOOD = _choices(
    {
        "种植": "FARMING",
        "种植业": "FARMING",
        "养殖": "LIVESTOCK",
        "养殖业": "LIVESTOCK",
        "外出务工": "MIGRANT_WORK",
        "务工": "MIGRANT_WORK",
        "本地务工": "LOCAL_WAGES",
        "经营": "BUSINESS",
        "个体经营": "BUSINESS",
        "转移性收入": "TRANSFERS",
        "政策性收入": "TRANSFERS",
        "混合": "MIXED",
        "综合": "MIXED",
    }
)
SAFETY = _choices({"安全": "SAFE", "不安全": "UNSAFE", "未知": "UNKNOWN", "未核实": "UNKNOWN"})
CHANGE = _choices(
    {
        "基线": "BASELINE",
        "新增": "BASELINE",
        "更正": "CORRECTION",
        "人口变动": "MEMBERSHIP_CHANGE",
        "成员变动": "MEMBERSHIP_CHANGE",
        "状态变更": "STATUS_CHANGE",
    }
)


@dataclass(frozen=True)
class Column:
    """One CSV column: the record field it fills (dotted path), header names, converter."""

    path: str
    headers: tuple[str, ...]
    convert: Callable[[str], Any]
    required: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("household_id", ("household_id", "户编号", "户号", "户码"), _text, True),
    Column("township", ("township", "乡镇", "乡镇（街道）", "乡镇(街道)", "街道"), _text, True),
    Column("village", ("village", "村", "行政村"), _text, True),
    Column("village_group", ("village_group", "组", "村民小组"), _text, True),
    Column("registration", ("registration", "户类型", "脱贫状态"), REGISTRATION, True),
    Column("lifted_year", ("lifted_year", "脱贫年度", "脱贫年份"), _integer),
    Column("members.count", ("members", "家庭人口", "家庭人口数", "人口数"), _integer, True),
    Column("members.labour", ("labour", "劳动力", "劳动力人数"), _integer, True),
    Column("members.weak_labour", ("weak_labour", "弱劳动力", "弱劳动力人数"), _integer),
    Column("members.students", ("students", "在校生", "在校生人数"), _integer, True),
    Column("members.disabled", ("disabled", "残疾人", "残疾人数"), _integer, True),
    Column(
        "members.chronically_ill",
        ("chronically_ill", "大病慢病", "慢病人数", "大病慢病人数"),
        _integer,
        True,
    ),
    Column("members.elderly", ("elderly", "65岁以上老人", "老年人数"), _integer, True),
    Column("head_birth_year", ("head_birth_year", "户主出生年份"), _integer),
    Column("main_livelihood", ("main_livelihood", "主要收入来源"), LIVELIHOOD),
    Column(
        "minimum_living_allowance", ("minimum_living_allowance", "低保", "享受低保"), _boolean, True
    ),
    Column("housing", ("housing", "住房安全"), SAFETY),
    Column("water", ("water", "饮水安全"), SAFETY),
    Column("baseline_income.year", ("income_year", "收入年度"), _integer),
    Column(
        "baseline_income.per_capita_net_yuan",
        ("per_capita_net_yuan", "人均纯收入", "人均纯收入（元）", "人均纯收入(元)"),
        _integer,
    ),
    Column("personal.head_name", ("head_name", "户主姓名"), _text),
    Column("personal.citizen_id", ("citizen_id", "身份证号", "户主身份证号"), _text),
    Column("personal.phone", ("phone", "联系电话"), _text),
    Column("change", ("change", "变更类型"), CHANGE),
    Column("occurred_at", ("occurred_at", "登记日期", "日期"), _moment),
)


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
            raise CsvFileError(f"{path}: neither UTF-8 nor GB18030 text") from None


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


def _household_defaults() -> Callable[[dict[str, Any], int], list[RowProblem]]:
    def complete(body: dict[str, Any], line: int) -> list[RowProblem]:
        body.setdefault("change", "BASELINE")
        body.setdefault("housing", "UNKNOWN")
        body.setdefault("water", "UNKNOWN")
        return []

    return complete


HOUSEHOLDS = TableImport(
    "households", COLUMNS, "household_id", IMPORT_NAMESPACE, _household_defaults
)


def parse(
    text: str,
    codec: Codec,
    actor: str,
    as_of: dt.datetime | None,
    now: dt.datetime,
    future_skew: dt.timedelta = dt.timedelta(minutes=5),
) -> ParsedFile:
    """Check every row of a household table (户表)."""
    return parse_table(HOUSEHOLDS, text, codec, actor, as_of, now, future_skew)


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


async def import_households(
    text: str,
    codec: Codec,
    sink: RecordSink,
    sealer: PersonalSealer,
    actor: str,
    as_of: dt.datetime | None,
    skip_bad: bool,
    now: dt.datetime,
) -> ImportReport:
    """Import a household table (户表); see `import_table`."""
    return await import_table(HOUSEHOLDS, text, codec, sink, sealer, actor, as_of, skip_bad, now)
