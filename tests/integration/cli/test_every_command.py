"""Every command of the CLI, run as an operator would, with Kafka, PostgreSQL and the visits API
on ports nobody listens on: the documented exit status, within a deadline, never a traceback.

The commands come from the parser itself (`commands_of`), so a new command is run here the day
it is added; one whose arguments this test cannot supply fails the test until VALUES learns
them. Long-running services (visits, monitoring, support, support-api, projector) must give up
at start (exit 3) instead of waiting for servers that were never there.
"""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.cli import build_parser, commands_of
from tests.cli_env import ROOT, closed_port, run_cli, unreachable_env

DEADLINE_SECONDS = 120  # each command; the slowest gives up after ~15 s on this machine

HOUSEHOLDS = (
    "户编号,乡镇,村,组,户类型,脱贫年度,家庭人口,劳动力,在校生,残疾人数,大病慢病人数,"
    "65岁以上老人,低保,住房安全,饮水安全,主要收入来源,收入年度,人均纯收入,户主姓名,身份证号,登记日期\n"
    "H-1,高峰镇,青山村,3,已脱贫,2015,3,1,1,0,1,0,是,安全,安全,种植,2019,6200,张三,"
    "500228197801010011,2020-04-01\n"
)
CADRES = (
    "干部编号,姓名,联系电话,乡镇,帮扶村,派出单位,最多帮扶户数,是否在岗,登记日期\n"
    "c-001,张三,13800000000,鹤游镇,水井村,县扶贫办,5,是,2020-04-20\n"
)
CATALOGUE = ROOT / "services" / "contract" / "catalogues" / "dianjiang.toml"

# Commands that do not need a server (or, for `stack status`, report the local stack down).
EXPECTED = {
    ("schemas",): 0,
    ("topics", "list"): 0,
    ("stack", "down"): 0,
    ("stack", "status"): 3,  # nothing runs under the test's home: a server down is 3
    ("archive", "verify"): 1,  # an empty directory is not an archive: a check that found that
}
# Commands that start servers of their own and so cannot meet an unreachable one; each has its
# own tests.
OWN_SERVERS = {
    ("stack", "up"): "starts Kafka and PostgreSQL: tests/integration/test_localstack.py",
    ("demo",): "starts a private stack and every service: tests/e2e",
    ("faults",): "starts a private stack per scenario: tests/integration/faults",
}


def _values(tmp_path: Path, words: tuple[str, ...]) -> dict[str, str]:
    households = tmp_path / "households.csv"
    households.write_text(HOUSEHOLDS, encoding="utf-8")
    cadres = tmp_path / "cadres.csv"
    cadres.write_text(CADRES, encoding="utf-8")
    archive = tmp_path / "archive"
    archive.mkdir(exist_ok=True)
    files = {("import", "households"): households, ("import", "cadres"): cadres}
    return {
        "household": "H-1",
        "subject_id": "H-1",
        "token_id": "0123456789abcdef",
        "dir": str(archive),
        "file": str(files.get(words, CATALOGUE)),
        "kind": "cadre",
        "holder": "cadre-1",
        "actor": "operator:test",
        "reason": "a test",
        "duty": "reader",
        "name": "login_one",
    }


def _argv(words: tuple[str, ...], parser, values: dict[str, str]) -> list[str]:
    """The command with a value for each required argument, found by its dest."""
    argv = list(words)
    for action in parser._actions:
        positional = not action.option_strings
        if not (positional or action.required) or action.dest in ("help", "command", "action"):
            continue
        assert action.dest in values, f"{' '.join(words)}: add a value for {action.dest}"
        argv += (
            [values[action.dest]]
            if positional
            else [action.option_strings[-1], values[action.dest]]
        )
    return argv


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_cli(argv, env, DEADLINE_SECONDS)


def test_every_command_meets_unreachable_servers_with_its_documented_exit(tmp_path):
    kafka_port, db_port = closed_port(), closed_port()
    env = unreachable_env(tmp_path / "home", kafka_port, db_port)
    commands = commands_of(build_parser())
    runs = {}
    for words, parser in commands:
        if words in OWN_SERVERS:
            continue
        runs[words] = _argv(words, parser, _values(tmp_path, words))
    assert len(runs) >= 25, sorted(runs)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(
            zip(runs, pool.map(lambda argv: _run(argv, env), runs.values()), strict=True)
        )
    wrong = []
    for words, done in results.items():
        expected = EXPECTED.get(words, 3)
        lines = done.stderr.splitlines()
        if "Traceback" in done.stderr or done.returncode != expected:
            wrong.append((words, done.returncode, done.stderr[-1500:]))
        elif expected == 3 and words not in EXPECTED:
            # One line naming the server and where it was looked for.
            named = [
                line
                for line in lines
                if line.startswith(f"shouwang {words[0]}")
                and re.search(
                    rf"(Kafka|PostgreSQL|visits API).*127\.0\.0\.1:({kafka_port}|{db_port})", line
                )
            ]
            if len(named) != 1:
                wrong.append((words, done.returncode, done.stderr[-1500:]))
    assert wrong == [], "\n\n".join(f"{' '.join(w)} → {code}\n{err}" for w, code, err in wrong)


def test_commands_that_start_their_own_servers_are_still_commands():
    # OWN_SERVERS must name real commands: a renamed one would otherwise escape the test above.
    commands = {words for words, _ in commands_of(build_parser())}
    assert set(OWN_SERVERS) <= commands
    assert set(EXPECTED) <= commands


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_failing_command_logs_no_escape_codes_and_json_when_asked(tmp_path, fmt):
    env = unreachable_env(tmp_path / "home", closed_port(), closed_port())
    env["SHOUWANG_LOG_FORMAT"] = fmt
    done = _run(["topics", "create"], env)
    assert done.returncode == 3, done.stderr
    assert "\x1b" not in done.stderr and "\x08" not in done.stderr
    *logged, last = done.stderr.splitlines()
    assert logged, "aiokafka's connection error is logged"
    if fmt == "json":
        # Every line a JSON record, the command's own last line among them.
        records = [json.loads(line) for line in done.stderr.splitlines()]
        assert all(r["logger"].startswith("aiokafka") for r in records[:-1])
        assert records[-1]["logger"] == "services.cli" and records[-1]["level"] == "ERROR"
        last = records[-1]["message"]
    assert last.startswith("shouwang topics create: cannot reach Kafka at 127.0.0.1:")


def test_services_with_a_database_but_no_broker_exit_3_naming_kafka(database_url, tmp_path):
    # The projector waits out a database outage once running; an unreachable broker at start
    # is not waited for. (The visits API, by design, starts and answers 503 until Kafka is back:
    # tests/integration/visits/test_broker_down.py.)
    env = unreachable_env(tmp_path / "home", closed_port(), closed_port())
    env["DATABASE_URL"] = database_url
    done = _run(["projector"], env)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(
        "shouwang projector: cannot reach Kafka at 127.0.0.1:"
    ), done.stderr[-2000:]
