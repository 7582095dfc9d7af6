"""The compose test's own machinery can fail: a port nothing would listen on and a variable
nothing reads are both caught (no servers needed; the processes test uses the same code)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.deploy import compose_stack as stack

MEASURED_BEFORE = {  # monitoring as deploy/ shipped it before issue 15
    "environment": {"SHOUWANG_MONITORING_METRICS_PORT": "9101"},
    "healthcheck": {
        "test": [
            "CMD", "python", "-c",
            "import urllib.request; "
            "urllib.request.urlopen('http://localhost:9101/metrics', timeout=3)",
        ]
    },
}  # fmt: skip


def test_a_port_that_no_variable_of_the_service_sets_is_refused(tmp_path: Path):
    """Monitoring's healthcheck as shipped before, on the environment without the variable:
    no process could be told to listen on 9101."""
    compose = copy.deepcopy(stack.load_compose())
    monitoring = compose["services"]["monitoring"]
    monitoring["environment"] = dict(compose["x-shouwang"]["environment"])
    monitoring["healthcheck"] = MEASURED_BEFORE["healthcheck"]
    with pytest.raises(stack.Unmappable, match="monitoring: the healthcheck uses port 9101"):
        stack.plan(
            compose,
            stack.DOCKERFILE.read_text("utf-8"),
            kafka_bootstrap="127.0.0.1:1",
            database_url="postgresql://postgres@127.0.0.1:1/shouwang",
            work=tmp_path,
        )


def test_envtrace_records_the_variables_the_code_reads_and_not_the_others(tmp_path: Path):
    """The variable deploy/ shipped for monitoring's port is not read by any code: the
    processes test fails on it (and on its port, where nothing listens)."""
    record = tmp_path / "read.txt"
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(stack.ROOT),
        "SHOUWANG_HOME": str(tmp_path / "home"),
        "SHOUWANG_PARTITIONS": "12",
        "SHOUWANG_MONITORING_METRICS_PORT": "9101",
    }
    done = subprocess.run(
        [sys.executable, str(stack.ENVTRACE), str(record), "schemas"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    read = set(record.read_text("utf-8").split())
    assert {"SHOUWANG_PARTITIONS", "SHOUWANG_HOME", "KAFKA_SECURITY_PROTOCOL"} <= read
    assert "SHOUWANG_MONITORING_METRICS_PORT" not in read
    assert "PATH" not in read  # read by the interpreter, not by Shouwang's code
