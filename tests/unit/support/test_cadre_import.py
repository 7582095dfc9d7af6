"""`shouwang import cadres`: Chinese headers, GB18030, line-numbered problems without cell
values, all-or-nothing unless --skip-bad, deterministic event ids, the CLI's exit codes."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import pytest

from services.cli import main
from services.contract.codec import Codec
from services.contract.personal import Subject, unseal
from services.platform.kafka.producer import InMemorySink
from services.platform.personal.keys import CachedKeys, InMemoryKeyStore
from services.platform.personal.sealer import PersonalSealer
from services.visits.imports.cadres import CADRES
from services.visits.imports.table import CsvFileError, import_table, parse_table, read_text

# One table's parse and import: the table machinery with the cadre roster's columns.
parse = functools.partial(parse_table, CADRES)
import_cadres = functools.partial(import_table, CADRES)

CODEC = Codec.default()
NOW = dt.datetime(2020, 5, 16, 12, 0, tzinfo=dt.UTC)
KEYS = InMemoryKeyStore()
SEALER = PersonalSealer(CachedKeys(KEYS))
GOOD = (
    "干部编号,姓名,联系电话,乡镇,帮扶村,派出单位,最多帮扶户数,是否在岗,登记日期\n"
    "c-001,张三,13800000000,鹤游镇,水井村,县扶贫办,5,是,2020-04-20\n"
    "c-002,李四,,鹤游镇,,县农业农村委,8,否,2020-04-20\n"
)


async def test_a_roster_with_chinese_headers_becomes_cadre_registry_records():
    sink = InMemorySink()
    report = await import_cadres(GOOD, CODEC, sink, SEALER, "operator:t", None, False, NOW)
    assert (report.rows, report.imported, report.problems) == (2, 2, [])
    assert [(t, k) for t, k, _ in sink.records] == [
        ("cadre.registry", b"c-001"),
        ("cadre.registry", b"c-002"),
    ]
    first, second = (CODEC.decode(v).record for _, _, v in sink.records)
    assert (first["township"], first["village"], first["max_households"], first["active"]) == (
        "鹤游镇",
        "水井村",
        5,
        True,
    )
    assert first["source"] == "IMPORT" and first["actor"] == "operator:t"
    assert first["personal"] is None  # sealed:
    key = KEYS.keys[Subject("cadre", "c-001")][0]
    opened = unseal(first["personal_sealed"], Subject("cadre", "c-001"), first["event_id"], key)
    assert opened == {"name": "张三", "phone": "13800000000"}
    assert all(b"13800000000" not in v for _, _, v in sink.records)
    assert second["village"] is None and second["active"] is False
    again = InMemorySink()
    await import_cadres(GOOD, CODEC, again, SEALER, "operator:t", None, False, NOW)
    assert [CODEC.decode(v).record["event_id"] for _, _, v in again.records] == [
        first["event_id"],
        second["event_id"],
    ]  # importing the same file twice is harmless downstream


async def test_a_bad_row_refuses_the_file_unless_skip_bad():
    text = (
        GOOD
        + "c-003,王五,,鹤游镇,,县教委,很多,是,2020-04-20\n"
        + "c-001,张三,,鹤游镇,,县扶贫办,5,是,2020-04-21\n"
    )
    refused = InMemorySink()
    report = await import_cadres(text, CODEC, refused, SEALER, "operator:t", None, False, NOW)
    assert report.refused and refused.records == []
    assert report.bad_lines == [4, 5]
    assert [str(p) for p in report.problems] == [
        "line 4: max_households (max_households): expected a whole number",
        "line 5: cadre_id (cadre_id): also on line 2",
    ]
    assert "很多" not in " ".join(map(str, report.problems))  # never the cell's value
    skipped = InMemorySink()
    report = await import_cadres(text, CODEC, skipped, SEALER, "operator:t", None, True, NOW)
    assert not report.refused and report.imported == 2 and len(skipped.records) == 2


def test_contract_and_domain_checks_apply_as_for_the_api():
    text = "cadre_id,township,department,max_households,occurred_at\n c 1 ,鹤游镇,x,-1,2020-04-20\n"
    parsed = parse(text, CODEC, "operator:t", None, NOW)
    assert parsed.bad_lines == [2] and parsed.records == []


def test_missing_columns_and_dates_are_file_errors():
    with pytest.raises(CsvFileError, match="max_households"):
        parse("干部编号,乡镇,单位\nc,镇,u\n", CODEC, "t", None, NOW)
    with pytest.raises(CsvFileError, match="--as-of"):
        parse("干部编号,乡镇,单位,最多帮扶户数\nc,镇,u,3\n", CODEC, "t", None, NOW)
    as_of = dt.datetime(2020, 4, 20, tzinfo=dt.UTC)
    parsed = parse("干部编号,乡镇,单位,最多帮扶户数\nc,镇,u,3\n", CODEC, "t", as_of, NOW)
    assert len(parsed.records) == 1


def test_gb18030_files_and_the_check_only_command(tmp_path: Path, capsys):
    path = tmp_path / "cadres.csv"
    path.write_bytes(GOOD.encode("gb18030"))
    assert read_text(path) == GOOD
    assert main(["import", "cadres", str(path), "--check"]) == 0
    assert "2 rows, 0 bad" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text(GOOD + "c-009,,,鹤游镇,,县教委,x,是,2020-04-20\n", encoding="utf-8")
    assert main(["import", "cadres", str(bad), "--check"]) == 1
    assert "line 4: max_households" in capsys.readouterr().err
