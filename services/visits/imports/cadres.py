"""Cadre registry CSV import: rows → CadreRegistryRecorded on cadre.registry, keyed by cadre id.

Read, checked and sent by `table.py`, like the household table: each row becomes the JSON
body a client would post to /v1/cadres and goes through `records.prepare` with `source` IMPORT
and the operator as `actor`. Headers are English field names or the Chinese column names of
county rosters (see COLUMNS). Problems never show a cell's value (names and phones are
personal). A file with any bad row imports nothing unless `skip_bad`; event ids are uuid5 of
the row's content, so importing a file twice is harmless.
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
)

CADRE_IMPORT_NAMESPACE = uuid.UUID("3c5e9a10-7d42-5b8f-a1e6-2b9d4c0f7e31")

COLUMNS: tuple[Column, ...] = (
    Column("cadre_id", ("cadre_id", "干部编号", "帮扶干部编号", "工号"), as_text, True),
    Column("township", ("township", "乡镇", "乡镇（街道）", "乡镇(街道)", "街道"), as_text, True),
    Column("village", ("village", "村", "行政村", "帮扶村"), as_text),
    Column("department", ("department", "单位", "派出单位", "所在单位"), as_text, True),
    Column(
        "max_households",
        ("max_households", "最多帮扶户数", "帮扶户数上限", "联系户数上限"),
        as_integer,
        True,
    ),
    Column("active", ("active", "在岗", "是否在岗"), as_boolean),
    Column("personal.name", ("name", "姓名", "干部姓名"), as_text),
    Column("personal.phone", ("phone", "联系电话", "电话"), as_text),
    Column("occurred_at", ("occurred_at", "登记日期", "日期"), as_moment),
)


def _cadre_checks() -> Callable[[dict[str, Any], int], list[RowProblem]]:
    seen: dict[str, int] = {}

    def check(body: dict[str, Any], line: int) -> list[RowProblem]:
        problems = []
        if "personal" in body and "name" not in body["personal"]:
            problems.append(RowProblem(line, "personal.name (name)", "a phone needs a name"))
        cadre_id = body.get("cadre_id")
        if cadre_id in seen:  # two rows for one cadre: which one holds is ambiguous
            problems.append(
                RowProblem(line, "cadre_id (cadre_id)", f"also on line {seen[cadre_id]}")
            )
        elif cadre_id:
            seen[cadre_id] = line
        return problems

    return check


CADRES = TableImport("cadres", COLUMNS, "cadre_id", CADRE_IMPORT_NAMESPACE, _cadre_checks)
