"""Each command has its own --help listing the variables its code reads; global options go
before or after the command; --version; logging levels and JSON lines."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from services.cli import build_parser, commands_of
from services.platform import logs
from services.platform.config import SettingsError
from services.platform.environment import RecordingEnvironment, variables_read

ROOT = Path(__file__).resolve().parents[3]


def _help(words: tuple[str, ...], capsys) -> str:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*words, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_every_command_has_its_own_help_with_the_variables_it_reads(capsys):
    commands = commands_of(build_parser())
    assert len(commands) > 25, commands
    for words, _ in commands:
        text = _help(words, capsys)
        # Its own usage line, not its parent's ("topics create --help" printed topics' help).
        assert text.startswith(f"usage: shouwang {' '.join(words)} "), (words, text[:200])
        assert "environment variables read:" in text, words
        for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "SHOUWANG_LOG_LEVEL"):
            assert name in text, (words, name)
        assert "exit status:" in text and "  3 " in text, words


def test_a_command_lists_the_variables_of_its_own_readers(capsys):
    from services.monitoring.bootstrap import MonitoringSettings

    # The monitoring worker's list is what MonitoringSettings.from_env asks for, whatever it is.
    recorder = RecordingEnvironment()
    MonitoringSettings.from_env(recorder)
    assert "SHOUWANG_MONITORING_PORT" in recorder.asked
    text = _help(("monitoring",), capsys)
    own = text.split("(by this command)")[0]
    for name in recorder.asked:
        assert name in own, name
    assert "SHOUWANG_DB_LOGIN_PASSWORD" in _help(("db", "create-login"), capsys)
    assert "SHOUWANG_PERSONAL_MASTER_KEY" in _help(("import", "households"), capsys)
    assert "SHOUWANG_VISITS_TOKEN" in _help(("simulate",), capsys)


def test_the_recorder_catches_a_reader_that_refuses_an_empty_environment():
    # load_master_key raises without a key, after asking for both of its variables.
    names = variables_read(["services.platform.personal.keys:load_master_key", "EXTRA_NAME"])
    assert names == [
        "SHOUWANG_PERSONAL_MASTER_KEY",
        "SHOUWANG_PERSONAL_MASTER_KEY_FILE",
        "EXTRA_NAME",
    ]


def test_version():
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"shouwang {metadata.version('shouwang')}"


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "--log-format", "json", "topics", "list"],
        ["topics", "-v", "list", "--log-format", "json"],
        ["topics", "list", "-v", "--log-format", "json"],
    ],
)
def test_global_options_before_or_after_the_command(argv):
    args = build_parser().parse_args(argv)
    assert args.verbose is True and args.log_format == "json"
    assert (args.command, args.action) == ("topics", "list")


def test_options_not_given_keep_their_defaults():
    args = build_parser().parse_args(["topics", "list"])
    assert args.verbose is False and args.log_level is None and args.log_format is None


def test_client_libraries_are_quiet_unless_asked():
    stream = io.StringIO()
    try:
        logs.configure(logs.LogSettings.parse("INFO", "text", "L", "F"), stream)
        assert not logging.getLogger("aiokafka.consumer").isEnabledFor(logging.INFO)
        assert logging.getLogger("aiokafka").isEnabledFor(logging.WARNING)
        assert logging.getLogger("services.readmodel").isEnabledFor(logging.INFO)
        logs.configure(logs.LogSettings.parse("INFO,aiokafka=INFO", "text", "L", "F"), stream)
        assert logging.getLogger("aiokafka.consumer").isEnabledFor(logging.INFO)
        assert not logging.getLogger("faust").isEnabledFor(logging.INFO)
        logs.configure(logs.LogSettings.parse("DEBUG", "text", "L", "F"), stream)
        assert logging.getLogger("faust").isEnabledFor(logging.DEBUG)
    finally:
        logs.configure(logs.LogSettings(), sys.stderr)


def test_json_lines():
    stream = io.StringIO()
    try:
        logs.configure(logs.LogSettings.parse("", "json", "L", "F"), stream)
        log = logging.getLogger("services.test")
        log.info("two\nlines, 中文")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        logs.configure(logs.LogSettings(), sys.stderr)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "two\nlines, 中文" and first["level"] == "INFO"
    assert first["logger"] == "services.test" and first["time"].endswith("+00:00")
    assert "ValueError: boom" in second["exc_info"]


@pytest.mark.parametrize(
    ("level", "fmt", "named"),
    [("LOUD", "", "SHOUWANG_LOG_LEVEL"), ("INFO,=DEBUG", "", "SHOUWANG_LOG_LEVEL"),
     ("", "xml", "SHOUWANG_LOG_FORMAT")],
)  # fmt: skip
def test_a_bad_log_setting_is_refused_by_name(level, fmt, named):
    with pytest.raises(SettingsError, match=named):
        logs.LogSettings.from_env({"SHOUWANG_LOG_LEVEL": level, "SHOUWANG_LOG_FORMAT": fmt})


def test_the_readme_documents_every_variable_read_and_every_exit_status():
    from services.cli import EVERY_COMMAND_READS

    names = set(variables_read(EVERY_COMMAND_READS))
    for _, parser in commands_of(build_parser()):
        names |= set(variables_read(parser.reads))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert sorted(n for n in names if f"`{n}`" not in readme) == []
    statuses = readme.split("## The command line", 1)[1].split("\n## ", 1)[0]
    for status in ("0", "1", "2", "3", "75", "130"):
        assert f"\n| {status} | " in statuses, status


def test_mode_service_lines_are_chatter_whichever_logger_carries_them():
    stream = io.StringIO()
    try:
        logs.configure(logs.LogSettings.parse("INFO", "text", "L", "F"), stream)
        ours = logging.getLogger("services.platform.kafka.faust.redelivery")
        ours.info("[^--RedeliveringConsumer]: Starting...")
        ours.warning("[^--RedeliveringConsumer]: a warning stays")
        ours.info("12 partitions without a committed offset")
        logs.configure(logs.LogSettings.parse("INFO,mode=INFO", "text", "L", "F"), stream)
        ours.info("[^--DrainingProducer]: Starting... (asked for)")
    finally:
        logs.configure(logs.LogSettings(), sys.stderr)
    text = stream.getvalue()
    assert "RedeliveringConsumer]: Starting" not in text
    assert "a warning stays" in text and "12 partitions" in text and "(asked for)" in text
