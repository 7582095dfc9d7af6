"""A household table joined with its member table (人员表): members one by one, counts from the
list on the row's date, names and ID numbers sealed; a bad member row refuses the file."""

from __future__ import annotations

import datetime as dt

import pytest

from services.contract.codec import Codec
from services.visits.imports.households import with_members
from services.visits.imports.table import CsvFileError, parse_table

NOW = dt.datetime(2020, 6, 1, tzinfo=dt.UTC)
AS_OF = dt.datetime(2020, 4, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))

# counts columns left out: the member table gives them
HOUSEHOLDS = (
    "户编号,乡镇,村,组,户类型,脱贫年度,低保,主要收入来源,户主姓名,身份证号\n"
    "H-1,高峰镇,青山村,3,已脱贫,2015,是,种植,周某,500228197803010011\n"
    "H-2,高峰镇,青山村,3,非贫困户,,否,外出务工,李四,500228198001010022\n"
)
MEMBERS = (
    "户编号,成员编号,姓名,身份证号,与户主关系,性别,出生年月,劳动技能,健康状况,残疾等级,在校生状况,务工时间\n"
    "H-1,1,周某,500228197803010011,户主,男,1978年3月,弱劳动力,患有大病,,非在校生,0\n"
    "H-1,2,周小某,,之子,男,2011-09,无劳动力,健康,,小学,\n"
    "H-1,3,周老某,,之母,女,195001,丧失劳动力,残疾,二级,,\n"
)


def test_members_join_their_household_and_give_its_counts(codec: Codec) -> None:
    one = HOUSEHOLDS.rsplit("H-2", 1)[0]
    parsed = parse_table(with_members(MEMBERS), one, codec, "operator:li", AS_OF, NOW)
    assert parsed.problems == [] and len(parsed.records) == 1
    ((_, first),) = parsed.records
    people = first["members"]["people"]
    assert [(p["member_id"], p["relation"], p["birth_year"], p["birth_month"]) for p in people] == [
        ("1", "HEAD", 1978, 3),
        ("2", "CHILD", 2011, 9),
        ("3", "PARENT", 1950, 1),
    ]
    assert people[2]["disability_grade"] == 2 and people[1]["schooling"] == "PRIMARY"
    counts = {k: v for k, v in first["members"].items() if k != "people"}
    assert counts == {"count": 3, "labour": 0, "weak_labour": 1, "students": 1, "disabled": 1,
                      "chronically_ill": 1, "elderly": 1}  # fmt: skip
    names = [m["name"] for m in first["personal"]["members"]]
    assert names == ["周某", "周小某", "周老某"]


def test_a_household_without_members_or_counts_is_refused_by_line(codec: Codec) -> None:
    # H-2 is not in the member table and its row has no counts
    parsed = parse_table(with_members(MEMBERS), HOUSEHOLDS, codec, "operator:li", AS_OF, NOW)
    assert [(p.line, p.field) for p in parsed.problems] == [(3, "members")]
    assert len(parsed.records) == 1


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("H-1,4,某,,之子,男,2011-13,无劳动力,健康,,小学,", "line 5: birth: expected a month"),
        ("H-1,4,某,,邻居,男,2011-01,无劳动力,健康,,小学,", "line 5: relation: expected one of"),
        ("H-1,4,某,,之子,男,2011-01,,健康,,小学,", "line 5: labour: empty"),
    ],
)
def test_a_bad_member_row_refuses_the_file_naming_line_and_column(row: str, words: str) -> None:
    with pytest.raises(CsvFileError, match=words) as caught:
        with_members(MEMBERS + row + "\n")
    assert "某" not in str(caught.value)  # never a cell's value


def test_a_member_table_needs_its_columns() -> None:
    with pytest.raises(CsvFileError, match="missing columns: .*birth"):
        with_members("户编号,成员编号,与户主关系,性别,劳动技能,健康状况\n")
