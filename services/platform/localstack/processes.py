"""Inspecting and signalling local server processes, and reading the tails of their logs."""

import os
import signal
import subprocess
import time
from collections import deque
from pathlib import Path

POLL_SECONDS = 0.1


def pid_alive(pid: int) -> bool:
    """True when `pid` names a live process (a zombie awaiting its parent counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists but belongs to another user
    stat = Path(f"/proc/{pid}/stat")
    try:
        # The state letter follows the parenthesised command name, which may contain spaces.
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no procfs (not Linux): trust the signal check
    return state not in ("Z", "X")


def command_line(pid: int) -> str | None:
    """The process's command line joined by spaces, or None when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file, or None when the file is missing or empty."""
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for `pid` to exit; True when it did."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM `pid`, wait up to `timeout` seconds, then SIGKILL it if it is still there."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_for_exit(pid, timeout):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_for_exit(pid, 10.0)


def stop_child(process: subprocess.Popen, timeout: float = 60.0) -> None:
    """SIGTERM a child we started, wait up to `timeout` seconds for a clean stop (a faust
    worker commits and flushes on the way out), then SIGKILL it; reaped either way."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a text file, or a note that it does not exist."""
    try:
        with path.open(errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip()
    except OSError:
        return f"({path} does not exist)"
