"""`replay --processes N` fails as one process fails, and its shares do not outlive it."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.audit.replay_run import ParentGone, _SharedProgress
from tests.cli_env import ROOT, closed_port, run_cli, unreachable_env

DEADLINE_SECONDS = 120


def _replay(processes: int, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_cli(["replay", "--processes", str(processes)], env, DEADLINE_SECONDS)


def test_shares_that_cannot_reach_kafka_say_it_as_one_process_does(tmp_path):
    env = unreachable_env(tmp_path / "home", closed_port(), closed_port())
    alone, shared = _replay(1, env), _replay(2, env)
    assert (alone.returncode, shared.returncode) == (3, 3), shared.stderr[-2000:]
    assert "Traceback" not in shared.stderr
    last = alone.stderr.splitlines()[-1]
    assert last.startswith("shouwang replay: cannot reach Kafka at 127.0.0.1:"), last
    assert shared.stderr.splitlines()[-1] == last


def _share(ready, done: str, parent: int) -> None:
    """A share's loop: told of a batch now and then until its parent is gone."""
    count, total = multiprocessing.Value("q", 0), multiprocessing.Value("q", 0)
    progress = _SharedProgress(count, total, parent)
    ready.send(os.getpid())
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while time.monotonic() < deadline:
            progress(count.value + 1)
            time.sleep(0.05)  # a batch's work; the test waits on the file, not on this
    except ParentGone:
        # whole or not at all: the test reads it as soon as it exists
        Path(done + ".partial").write_text("parent gone")
        os.replace(done + ".partial", done)


def _parent(done: str) -> None:
    """The replay's process: starts one share, says its pid, then waits to be killed."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_share, args=(sender, done, os.getpid()), daemon=True)
    child.start()
    print(receiver.recv(), flush=True)
    time.sleep(DEADLINE_SECONDS)


@pytest.mark.skipif(sys.platform != "linux", reason="re-parenting as Linux does it")
def test_a_share_stops_when_its_replay_is_killed(tmp_path):
    done = tmp_path / "done"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from tests.unit.audit.test_replay_shares import _parent; _parent(sys.argv[2])"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code, str(ROOT), str(done)], stdout=subprocess.PIPE, text=True
    )
    try:
        share_pid = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)  # no clean-up runs: the share must notice itself
        parent.wait(timeout=DEADLINE_SECONDS)
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done.read_text() == "parent gone"
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + DEADLINE_SECONDS
    while _alive(share_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(share_pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
