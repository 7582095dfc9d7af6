"""Household table (户表) CSV import: rows → HouseholdRegistryRecorded on household.registry.

The columns (English field names or the Chinese column names of county tables) and their
values; reading, checking and sending the rows is `table.py`'s, shared with the cadre roster.
A member table (人员表, one row per person) joins it by household id (`with_members`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from services.contract.members import composition_on
from services.visits.imports.table import (
    Column,
    CsvFileError,
    RowProblem,
    TableImport,
    as_boolean,
    as_integer,
    as_moment,
    as_text,
    one_of,
)

IMPORT_NAMESPACE = uuid.UUID("6f1d8a52-4a8e-5b63-9a51-0c3e2f6d7b10")

REGISTRATION = one_of(
    {
        "已脱贫": "LIFTED",
        "脱贫户": "LIFTED",
        "未脱贫": "NOT_LIFTED",
        "贫困户": "NOT_LIFTED",
        "非贫困户": "NEVER_REGISTERED",
        "一般农户": "NEVER_REGISTERED",
    }
)
LIVELIHOOD = one_of(
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
SAFETY = one_of({"安全": "SAFE", "不安全": "UNSAFE", "未知": "UNKNOWN", "未核实": "UNKNOWN"})
CHANGE = one_of(
    {
        "基线": "BASELINE",
        "新增": "BASELINE",
        "更正": "CORRECTION",
        "人口变动": "MEMBERSHIP_CHANGE",
        "成员变动": "MEMBERSHIP_CHANGE",
        "状态变更": "STATUS_CHANGE",
    }
)


COLUMNS: tuple[Column, ...] = (
    Column("household_id", ("household_id", "户编号", "户号", "户码"), as_text, True),
    Column("township", ("township", "乡镇", "乡镇（街道）", "乡镇(街道)", "街道"), as_text, True),
    Column("village", ("village", "村", "行政村"), as_text, True),
    Column("village_group", ("village_group", "组", "村民小组"), as_text, True),
    Column("registration", ("registration", "户类型", "脱贫状态"), REGISTRATION, True),
    Column("lifted_year", ("lifted_year", "脱贫年度", "脱贫年份"), as_integer),
    Column("members.count", ("members", "家庭人口", "家庭人口数", "人口数"), as_integer, True),
    Column("members.labour", ("labour", "劳动力", "劳动力人数"), as_integer, True),
    Column("members.weak_labour", ("weak_labour", "弱劳动力", "弱劳动力人数"), as_integer),
    Column("members.students", ("students", "在校生", "在校生人数"), as_integer, True),
    Column("members.disabled", ("disabled", "残疾人", "残疾人数"), as_integer, True),
    Column(
        "members.chronically_ill",
        ("chronically_ill", "大病慢病", "慢病人数", "大病慢病人数"),
        as_integer,
        True,
    ),
    Column("members.elderly", ("elderly", "65岁以上老人", "老年人数"), as_integer, True),
    Column("head_birth_year", ("head_birth_year", "户主出生年份"), as_integer),
    Column("main_livelihood", ("main_livelihood", "主要收入来源"), LIVELIHOOD),
    Column(
        "minimum_living_allowance",
        ("minimum_living_allowance", "低保", "享受低保"),
        as_boolean,
        True,
    ),
    Column("housing", ("housing", "住房安全"), SAFETY),
    Column("water", ("water", "饮水安全"), SAFETY),
    Column("baseline_income.year", ("income_year", "收入年度"), as_integer),
    Column(
        "baseline_income.per_capita_net_yuan",
        ("per_capita_net_yuan", "人均纯收入", "人均纯收入（元）", "人均纯收入(元)"),
        as_integer,
    ),
    Column("personal.head_name", ("head_name", "户主姓名"), as_text),
    Column("personal.citizen_id", ("citizen_id", "身份证号", "户主身份证号"), as_text),
    Column("personal.phone", ("phone", "联系电话"), as_text),
    Column("change", ("change", "变更类型"), CHANGE),
    Column("occurred_at", ("occurred_at", "登记日期", "日期"), as_moment),
)


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


# The member table (人员表): one row per person, joined to the household table by household id
# (`shouwang import households FILE --members PEOPLE.csv`); names and ID numbers go into the
# household's sealed personal data, the rest into members.people (registry schema v3).
RELATION = one_of(
    {
        "户主": "HEAD",
        "配偶": "SPOUSE",
        "之子": "CHILD",
        "之女": "CHILD",
        "子女": "CHILD",
        "之儿媳": "CHILD_IN_LAW",
        "之女婿": "CHILD_IN_LAW",
        "之孙子": "GRANDCHILD",
        "之孙女": "GRANDCHILD",
        "孙子女": "GRANDCHILD",
        "之父": "PARENT",
        "之母": "PARENT",
        "父母": "PARENT",
        "之祖父": "GRANDPARENT",
        "之祖母": "GRANDPARENT",
        "兄弟姐妹": "SIBLING",
        "其他": "OTHER",
    }
)
SEX = one_of({"男": "MALE", "女": "FEMALE"})
LABOUR = one_of(
    {
        "普通劳动力": "FULL",
        "技能劳动力": "FULL",
        "劳动力": "FULL",
        "半劳动力": "PARTIAL",
        "弱劳动力": "WEAK",
        "弱劳动力或半劳动力": "WEAK",
        "丧失劳动力": "NONE",
        "无劳动力": "NONE",
    }
)
HEALTH = one_of(
    {"健康": "HEALTHY", "长期慢性病": "CHRONIC_ILLNESS", "慢性病": "CHRONIC_ILLNESS",
     "患有大病": "SERIOUS_ILLNESS", "大病": "SERIOUS_ILLNESS", "残疾": "DISABILITY"}
)  # fmt: skip
SCHOOLING = one_of(
    {"非在校生": "NONE", "学前教育": "PRESCHOOL", "小学": "PRIMARY", "初中": "JUNIOR",
     "高中": "SENIOR", "中职": "VOCATIONAL", "高职": "VOCATIONAL", "大专": "COLLEGE",
     "本科": "COLLEGE", "辍学": "DROPPED_OUT"}
)  # fmt: skip


def as_birth(cell: str) -> tuple[int, int]:
    """出生年月: 1978-03, 1978/3, 197803 or 1978年3月 (a full date's day is dropped)."""
    text = cell.strip().replace("年", "-").replace("月", "").replace("/", "-").replace(".", "-")
    parts = text.split("-") if "-" in text else [text[:4], text[4:6]]
    try:
        year, month = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        raise ValueError("expected a year and month, e.g. 1978-03") from None
    if not 1 <= month <= 12:
        raise ValueError("expected a month between 1 and 12")
    return year, month


def as_grade(cell: str) -> int:
    """残疾等级: 1-4, or 一级..四级."""
    text = cell.strip().removesuffix("级")
    text = {"一": "1", "二": "2", "三": "3", "四": "4"}.get(text, text)
    return as_integer(text)


MEMBER_COLUMNS: tuple[Column, ...] = (
    Column("household_id", ("household_id", "户编号", "户号", "户码"), as_text, True),
    Column("member_id", ("member_id", "成员编号", "人员编号"), as_text, True),
    Column("relation", ("relation", "与户主关系"), RELATION, True),
    Column("birth", ("birth", "出生年月"), as_birth, True),
    Column("sex", ("sex", "性别"), SEX, True),
    Column("labour", ("labour", "劳动技能", "劳动能力"), LABOUR, True),
    Column("health", ("health", "健康状况"), HEALTH, True),
    Column("disability_grade", ("disability_grade", "残疾等级"), as_grade),
    Column("schooling", ("schooling", "在校生状况", "在校情况"), SCHOOLING),
    Column("migrant_work_months", ("migrant_work_months", "务工时间", "务工月数"), as_integer),
    Column("name", ("name", "姓名"), as_text),
    Column("citizen_id", ("citizen_id", "身份证号", "证件号码"), as_text),
)
COUNTS = ("count", "labour", "weak_labour", "students", "disabled", "chronically_ill", "elderly")


def parse_members(text: str) -> dict[str, list[tuple[dict[str, Any], dict[str, Any] | None]]]:
    """Household id → its members as (members.people entry, personal.members entry or None),
    in file order. Any bad row is a CsvFileError naming its line and column (never a value):
    a member list imported in part would give households wrong counts."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise CsvFileError("the members file is empty: expected a header row")
    columns = [_member_column(name) for name in header]
    present = {c.path for c in columns if c is not None}
    missing = [c for c in MEMBER_COLUMNS if c.required and c.path not in present]
    if missing:
        raise CsvFileError(
            "members file: missing columns: "
            + "; ".join(f"{c.path} (header {' or '.join(c.headers[:2])})" for c in missing)
        )
    found: dict[str, list[tuple[dict[str, Any], dict[str, Any] | None]]] = {}
    problems: list[str] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        values: dict[str, Any] = {}
        for cell, column in zip(row, columns, strict=False):
            if column is None or not cell.strip():
                continue
            try:
                values[column.path] = column.convert(cell)
            except ValueError as exc:
                problems.append(f"members file line {reader.line_num}: {column.path}: {exc}")
        missing_cells = [c.path for c in MEMBER_COLUMNS if c.required and c.path not in values]
        problems += [f"members file line {reader.line_num}: {p}: empty" for p in missing_cells]
        if problems and problems[-1].startswith(f"members file line {reader.line_num}:"):
            continue
        year, month = values.pop("birth")
        name, citizen_id = values.pop("name", None), values.pop("citizen_id", None)
        household_id = values.pop("household_id")
        person = {
            "birth_year": year,
            "birth_month": month,
            "disability_grade": None,
            "schooling": "NONE",
            "migrant_work_months": 0,
            **values,
        }
        personal = (
            None
            if name is None
            else {"member_id": person["member_id"], "name": name, "citizen_id": citizen_id}
        )
        found.setdefault(household_id, []).append((person, personal))
    if problems:
        raise CsvFileError("; ".join(problems[:20]) + ("; …" if len(problems) > 20 else ""))
    return found


def _member_column(header: str) -> Column | None:
    wanted = header.strip().lstrip("\ufeff").lower()
    return next((c for c in MEMBER_COLUMNS for h in c.headers if h.lower() == wanted), None)


def with_members(text: str) -> TableImport:
    """The household table import joined with a member table: each household's row gets its
    members (counts columns become optional: absent, they are what the list gives on the row's
    date; given, the door checks they agree)."""
    members = parse_members(text)
    columns = tuple(
        replace(c, required=False) if c.path.startswith("members.") else c for c in COLUMNS
    )

    def row_checks() -> Callable[[dict[str, Any], int], list[RowProblem]]:
        complete = _household_defaults()

        def check(body: dict[str, Any], line: int) -> list[RowProblem]:
            listed = members.get(str(body.get("household_id", "")), [])
            if listed:
                people = [person for person, _ in listed]
                counts = body.setdefault("members", {})
                try:
                    day = dt.datetime.fromisoformat(body["occurred_at"]).date()
                except (KeyError, ValueError):
                    day = None
                if day is not None:
                    counted = composition_on(people, day).as_record()
                    for name in COUNTS:
                        counts.setdefault(name, counted[name])
                counts["people"] = people
                personal = [p for _, p in listed if p is not None]
                if personal:
                    body.setdefault("personal", {})["members"] = personal
            return complete(body, line)

        return check

    return replace(HOUSEHOLDS, columns=columns, row_checks=row_checks)
