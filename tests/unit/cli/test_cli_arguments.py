"""Arguments and input files are checked before any I/O: a bad one exits 2 (or 1 for a file
whose every row is bad) without dialling Kafka or PostgreSQL, and never with a traceback.

The servers here are listeners that count connections: a command that refused its arguments
first leaves the count at zero.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_env import CountingListener, unreachable_env

ROOT = Path(__file__).resolve().parents[3]
HOUSEHOLD_HEADER = (
    "户编号,乡镇,村,组,户类型,脱贫年度,家庭人口,劳动力,在校生,残疾人数,大病慢病人数,"
    "65岁以上老人,低保,住房安全,饮水安全,主要收入来源,收入年度,人均纯收入,户主姓名,身份证号,备注\n"
)
BAD_ROWS = (
    "H-3,高峰镇,青山村,3,已脱贫,,3,1,1,0,1,0,是,安全,安全,种植,2019,6200,王五,500228,\n"
    "H-5,高峰镇,青山村,3,富裕,2016,abc,1,0,0,0,0,也许,安全,安全,种植,2019,100,钱七,500228,\n"
)


@pytest.fixture
def listener():
    server = CountingListener()
    yield server
    server.close()


def shouwang(args: list[str], tmp_path: Path, listener: CountingListener):
    env = unreachable_env(tmp_path / "home", listener.port, listener.port)
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["replay", "--to", "notadate"], "argument --to: 'notadate' is not an ISO date"),
        (["replay", "--from", "visits:x=1"], "is not topic:partition=offset"),
        (["replay", "--processes", "0"], "argument --processes: must be at least 1"),
        (["replay", "--processes", "two"], "argument --processes: 'two' is not a whole number"),
        (["demo", "--scale", "much"], "argument --scale: 'much' is not a number"),
        (["explain", "H-1", "--as-of", "notadate"], "argument --as-of: 'notadate' is not"),
        (["explain", "H-1", "--known-at", "2020-13-01"], "argument --known-at:"),
        (["archive", "export", "out", "--to", "yesterday"], "argument --to:"),
        (["replay", "--verify", "--from", "2020-06-01"], "--verify needs a replay from the"),
        (["topics", "create", "--log-level", "LOUD"], "--log-level"),
        (["tokens", "issue", "--kind", "nobody", "--holder", "x"], "argument --kind"),
    ],
)
def test_bad_arguments_exit_2_before_any_connection(args, says, tmp_path, listener):
    done = shouwang(args, tmp_path, listener)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert listener.connections == 0


def test_a_file_in_neither_utf8_nor_gb18030_is_a_clear_refusal(tmp_path, listener):
    table = tmp_path / "households.csv"
    table.write_bytes((HOUSEHOLD_HEADER + BAD_ROWS).encode("utf-16"))
    for what in ("households", "cadres"):
        done = shouwang(["import", what, str(table)], tmp_path, listener)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == (
            f"shouwang import {what}: {table}: neither UTF-8 nor GB18030 text: save it as CSV UTF-8"
        )
    assert listener.connections == 0


@pytest.mark.parametrize("skip_bad", [[], ["--skip-bad"]])
def test_a_file_whose_every_row_is_bad_imports_nothing_and_exits_1(skip_bad, tmp_path, listener):
    table = tmp_path / "households.csv"
    table.write_text(HOUSEHOLD_HEADER + BAD_ROWS, encoding="utf-8")
    args = ["import", "households", str(table), "--as-of", "2020-04-01", *skip_bad]
    done = shouwang(args, tmp_path, listener)
    assert done.returncode == 1, done.stderr
    expected = "all 2 rows are bad; nothing imported" if skip_bad else "2 of 2 rows are bad"
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert listener.connections == 0
