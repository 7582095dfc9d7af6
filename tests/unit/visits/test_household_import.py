"""CSV rows → registry records: Chinese headers, encodings, bad rows by line, nothing echoed."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import pytest

from services.contract.codec import Codec
from services.contract.personal import Subject, unseal
from services.platform.kafka.producer import InMemorySink
from services.platform.personal.keys import CachedKeys, InMemoryKeyStore, KeysUnavailable
from services.platform.personal.sealer import PersonalSealer
from services.visits.imports.households import HOUSEHOLDS
from services.visits.imports.table import CsvFileError, import_table, parse_table, read_text

# One table's parse and import: the table machinery with the household table's columns.
parse = functools.partial(parse_table, HOUSEHOLDS)
import_households = functools.partial(import_table, HOUSEHOLDS)

NOW = dt.datetime(2020, 6, 1, tzinfo=dt.UTC)
AS_OF = dt.datetime(2020, 4, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))

CHINESE = (
    "户编号,乡镇,村,组,户类型,脱贫年度,家庭人口,劳动力,在校生,残疾人数,大病慢病人数,"
    "65岁以上老人,低保,住房安全,饮水安全,主要收入来源,收入年度,人均纯收入,户主姓名,身份证号,备注\n"
    "H-1,高峰镇,青山村,3,已脱贫,2015,3,1,1,0,1,0,是,安全,安全,种植,2019,6200,张三,500228197801010011,\n"
    "H-2,高峰镇,青山村,3,非贫困户,,4,2,1,0,0,1,否,不安全,未知,外出务工,2019,9000,李四,500228198001010022,边缘\n"
)
BAD = CHINESE + (
    "H-3,高峰镇,青山村,3,已脱贫,,3,1,1,0,1,0,是,安全,安全,种植,2019,6200,王五,500228,\n"  # no year
    "H-4,高峰镇,青山村,3,已脱贫,2016,2,5,0,0,0,0,是,安全,安全,种植,2019,-10,赵六,500228,\n"
    "H-5,高峰镇,青山村,3,富裕,2016,abc,1,0,0,0,0,也许,安全,安全,种植,2019,100,钱七,500228,\n"
)


def test_chinese_headers_become_registry_records(codec: Codec) -> None:
    parsed = parse(CHINESE, codec, "operator:li", AS_OF, NOW)
    assert parsed.problems == [] and parsed.rows == 2
    assert parsed.warnings == ["column '备注' is not imported (unknown header)"]
    (line1, first), (line2, second) = parsed.records
    assert (line1, line2) == (2, 3)
    assert first["registration"] == "LIFTED" and first["lifted_year"] == 2015
    assert first["members"] == {
        "count": 3,
        "labour": 1,
        "weak_labour": 0,
        "students": 1,
        "disabled": 0,
        "chronically_ill": 1,
        "elderly": 0,
        "people": [],  # a table of counts lists no members
    }
    assert first["minimum_living_allowance"] is True and first["main_livelihood"] == "FARMING"
    assert first["baseline_income"] == {"year": 2019, "per_capita_net_yuan": 6200}
    assert first["personal"]["head_name"] == "张三"
    assert (first["source"], first["actor"], first["change"]) == (
        "IMPORT",
        "operator:li",
        "BASELINE",
    )
    assert first["occurred_at"] == AS_OF
    assert second["registration"] == "NEVER_REGISTERED" and second["water"] == "UNKNOWN"


def test_event_ids_are_stable_across_imports(codec: Codec) -> None:
    first = parse(CHINESE, codec, "operator:li", AS_OF, NOW).records
    again = parse(CHINESE, codec, "operator:li", AS_OF, NOW + dt.timedelta(days=1)).records
    assert [r["event_id"] for _, r in first] == [r["event_id"] for _, r in again]
    assert first[0][1]["event_id"] != first[1][1]["event_id"]


def test_bad_rows_are_reported_by_line_without_values(codec: Codec) -> None:
    parsed = parse(BAD, codec, "operator:li", AS_OF, NOW)
    assert parsed.bad_lines == [4, 5, 6]
    text = "\n".join(str(p) for p in parsed.problems)
    assert "line 4: lifted_year: required when registration is LIFTED" in text
    assert "line 5: members.labour" in text
    assert "line 5: baseline_income.per_capita_net_yuan: must not be negative" in text
    assert "line 6: registration (registration): expected one of" in text
    assert "line 6: members.count (members): expected a whole number" in text
    assert "line 6: minimum_living_allowance (minimum_living_allowance): expected 是/否" in text
    for value in ("王五", "赵六", "钱七", "富裕", "abc", "也许", "500228"):
        assert value not in text


async def test_a_file_with_bad_rows_imports_nothing_unless_skip_bad(codec: Codec) -> None:
    sink, keys = InMemorySink(), InMemoryKeyStore()
    sealer = PersonalSealer(CachedKeys(keys))
    report = await import_households(BAD, codec, sink, sealer, "op", AS_OF, False, NOW)
    assert report.refused and report.imported == 0 and sink.records == []
    assert keys.created == 0  # a refused file makes no keys either
    report = await import_households(BAD, codec, sink, sealer, "op", AS_OF, True, NOW)
    assert not report.refused and report.imported == 2 and len(sink.records) == 2
    assert {key for _, key, _ in sink.records} == {b"H-1", b"H-2"}


async def test_imported_personal_data_is_sealed_and_a_key_outage_writes_nothing(
    codec: Codec,
) -> None:
    keys = InMemoryKeyStore()
    sealer = PersonalSealer(CachedKeys(keys))
    keys.failing = True
    down = InMemorySink()
    with pytest.raises(KeysUnavailable):
        await import_households(CHINESE, codec, down, sealer, "op", AS_OF, False, NOW)
    assert down.records == []
    keys.failing = False
    sink = InMemorySink()
    await import_households(CHINESE, codec, sink, sealer, "op", AS_OF, False, NOW)
    again = InMemorySink()
    await import_households(CHINESE, codec, again, sealer, "op", AS_OF, False, NOW)
    assert again.records == sink.records  # a re-run writes the same bytes
    for _, key, frame in sink.records:
        assert "张三".encode() not in frame and b"500228197801010011" not in frame
        record = codec.decode(frame).record
        subject = Subject("household", key.decode())
        opened = unseal(
            record["personal_sealed"], subject, record["event_id"], keys.keys[subject][0]
        )
        assert opened["head_name"] in ("张三", "李四")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("户编号,乡镇\nH-1,高峰镇\n", "missing columns: village"),
        (CHINESE.replace("户编号", "乡镇", 1), "columns given twice"),
    ],
)
def test_unusable_files(codec: Codec, text: str, words: str) -> None:
    with pytest.raises(CsvFileError, match=words):
        parse(text, codec, "op", AS_OF, NOW)


def test_without_a_date_column_as_of_is_required(codec: Codec) -> None:
    with pytest.raises(CsvFileError, match="--as-of"):
        parse(CHINESE, codec, "op", None, NOW)
    dated = CHINESE.replace(",备注\n", ",登记日期\n", 1).replace(",\n", ",2020/4/2\n", 1)
    parsed = parse(dated, codec, "op", None, NOW)
    [(_, record)] = parsed.records  # dates are China time when they carry no offset
    assert record["occurred_at"] == dt.datetime(2020, 4, 1, 16, tzinfo=dt.UTC)
    [problem] = parsed.problems  # the second row's date cell holds a remark
    assert (problem.line, problem.field) == (3, "occurred_at (occurred_at)")


def test_gb18030_files_are_read(tmp_path: Path) -> None:
    path = tmp_path / "huzhang.csv"
    path.write_bytes(CHINESE.encode("gb18030"))
    assert read_text(path) == CHINESE
    path.write_bytes(b"\xef\xbb\xbf" + CHINESE.encode("utf-8"))
    assert read_text(path) == CHINESE
