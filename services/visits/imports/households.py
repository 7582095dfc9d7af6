"""Household table (户表) CSV import: rows → HouseholdRegistryRecorded on household.registry.

The columns (English field names or the Chinese column names of county tables) and their
values; reading, checking and sending the rows is `table.py`'s, shared with the cadre roster.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from services.visits.imports.table import (
    Column,
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
