"""`shouwang demo --workers N`: what is refused, and where, before anything starts.

The runs themselves (two processes of each worker service sharing each group) are in
tests/e2e/test_demo.py; here only the refusals, which start nothing.
"""

from __future__ import annotations

import dataclasses

import pytest

from services.cli import build_parser
from services.platform.config import Settings
from services.tools.demo.errors import DemoError
from services.tools.demo.orchestrator import DemoOptions, run_demo


def test_the_default_is_one_process_of_each():
    args = build_parser().parse_args(["demo"])
    assert args.workers == 1 and DemoOptions().workers == 1


@pytest.mark.parametrize(
    ("value", "message"), [("0", "must be at least 1"), ("two", "'two' is not a whole number")]
)
def test_a_bad_count_is_refused_by_the_parser(value, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["demo", "--workers", value])
    assert exit_.value.code == 2
    assert f"--workers: {message}" in capsys.readouterr().err


def test_more_workers_than_partitions_is_refused_before_anything_starts(tmp_path):
    settings = dataclasses.replace(Settings.from_env({"SHOUWANG_PARTITIONS": "4"}), home=tmp_path)
    lines: list[str] = []
    with pytest.raises(DemoError, match=r"workers: 5 asked, from 1 to 4 \(the household topics"):
        run_demo(DemoOptions(workers=5, keep=False), settings, lines.append)
    assert lines == [] and list(tmp_path.iterdir()) == []  # no server, no directory
