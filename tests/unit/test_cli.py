"""The one CLI: building its parser stays cheap, and `main` still reports refusals as exit 2."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What a worker or a `--help` must not pay for before its command runs: each takes a fraction of
# a second to import, and every command once imported them all when the parser was built.
HEAVY = ("aiohttp", "asyncpg", "aiokafka", "faust", "prometheus_client")


def test_building_the_parser_imports_no_client_library():
    # A fresh interpreter: in this one, other tests have imported them already.
    script = (
        "import json, sys\n"
        "from services.cli import build_parser\n"
        "build_parser()\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_each_command_function_imports_at_most_one_module_late():
    # The laziness is structural: a command module holds parsers and thin run_* functions, each
    # reaching the module that does the work through one import; the bodies with many imports
    # live in those modules, where imports are at the top.
    cli = ROOT / "services" / "cli.py"
    modules = [cli] + [
        ROOT / Path(*node.module.split("."), f"{alias.name}.py")
        for node in ast.parse(cli.read_text()).body
        if isinstance(node, ast.ImportFrom) and node.module.startswith("services.")
        for alias in node.names
        if (ROOT / Path(*node.module.split("."), f"{alias.name}.py")).exists()
    ]
    assert len(modules) > 10, modules
    crowded = []
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                late = [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
                if len(late) > 1:
                    crowded.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert crowded == []


def test_every_command_has_a_handler():
    from services.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["monitoring"]).run is not None
    assert parser.parse_args(["import", "cadres", "roster.csv"]).run is not None
    assert parser.parse_args(["catalogue", "activate", "c.toml"]).run is not None


def test_the_monitoring_command_reaches_its_worker(monkeypatch, capsys):
    # The handler imports the worker's modules only when it runs: a bad monitoring setting is
    # reported by run_monitoring itself, after those imports, before any broker is dialled.
    from services.cli import main

    monkeypatch.setenv("SHOUWANG_MONITORING_PORT", "0")
    assert main(["monitoring"]) == 2
    assert capsys.readouterr().err.startswith(
        "shouwang monitoring: SHOUWANG_MONITORING_PORT=0: not a TCP port"
    )


def test_errors_from_modules_imported_late_are_still_reported():
    from services.cli import reported_errors
    from services.platform.postgres.migrate import MigrationError

    assert MigrationError in set(reported_errors())


def test_an_archive_that_is_not_one_is_a_one_line_refusal(tmp_path, capsys):
    from services.cli import main

    (tmp_path / "notes.txt").write_text("not an archive")
    for command in (["replay"], ["explain", "H1", "--as-of", "2020-06-01"], ["actions"]):
        assert main([*command, "--archive", str(tmp_path)]) == 2, command
        err = capsys.readouterr().err
        assert err.startswith(f"shouwang {command[0]}: {tmp_path}: no "), err
        assert "Traceback" not in err
