"""The demo's service processes: each in its own process group, logged to a file, stopped in order.

Each service is a separate `python -m services.cli <command>` process started in a new session,
so a Ctrl-C at the terminal reaches only the demo, which then stops the services itself (SIGTERM
to the whole group, SIGKILL after a grace period). Their pids are written to a file so that a
demo killed with SIGKILL leaves something the next run can clean up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.platform.localstack.processes import command_line, pid_alive, tail, wait_for_exit


class ServiceDied(RuntimeError):
    """A service process exited while the demo needed it; carries its log's tail."""


@dataclass
class Service:
    """One running service process."""

    name: str
    process: subprocess.Popen
    log_file: Path
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid


class Supervisor:
    """Starts services as separate process groups and stops every one it started."""

    def __init__(self, run_dir: Path, env: Mapping[str, str]):
        self.run_dir = run_dir
        self.log_dir = run_dir / "logs"
        self.pid_file = run_dir / "services.pids"
        self.env = dict(env)
        self.services: list[Service] = []

    def start(
        self, name: str, argv: list[str], env: Mapping[str, str], urls: dict[str, str]
    ) -> Service:
        """Start `shouwang <argv>` with `env` added to the demo's environment."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.log_dir / f"{name}.log"
        # cwd is the run directory: faust keeps its `<app id>-data` directories there.
        with log_file.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", *argv],
                cwd=self.run_dir,
                env={**self.env, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = Service(name, process, log_file, urls)
        self.services.append(service)
        with self.pid_file.open("a") as pids:
            pids.write(f"{process.pid} {name}\n")
        return service

    def check(self) -> None:
        """Raise ServiceDied if any service has exited."""
        for service in self.services:
            code = service.process.poll()
            if code is not None:
                raise ServiceDied(
                    f"service `{service.name}` (pid {service.pid}) exited with status {code}; "
                    f"last lines of {service.log_file}:\n{tail(service.log_file, 30)}"
                )

    def stop_all(self, timeout: float = 30.0) -> None:
        """SIGTERM every service's process group (newest first), then SIGKILL stragglers."""
        for service in reversed(self.services):
            _signal_group(service.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for service in reversed(self.services):
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(service.pid, signal.SIGKILL)
                service.process.wait(10)
            # Children the service left in its group (none expected) go too.
            _signal_group(service.pid, signal.SIGKILL)
        self.services.clear()
        self.pid_file.unlink(missing_ok=True)


def stop_leftovers(run_dir: Path) -> list[int]:
    """Stop services a previous demo in `run_dir` left running (it was killed); return pids."""
    pid_file = run_dir / "services.pids"
    stopped = []
    with contextlib.suppress(OSError):
        for line in pid_file.read_text().splitlines():
            pid = int(line.split()[0]) if line.split() and line.split()[0].isdigit() else None
            if pid is None or not pid_alive(pid):
                continue
            # Only our own services: a recycled pid would not be running services.cli.
            if "services.cli" not in (command_line(pid) or ""):
                continue
            _signal_group(pid, signal.SIGTERM)
            if not wait_for_exit(pid, 20.0):
                _signal_group(pid, signal.SIGKILL)
                wait_for_exit(pid, 10.0)
            stopped.append(pid)
    pid_file.unlink(missing_ok=True)
    return stopped


def _signal_group(pid: int, signum: int) -> None:
    # Each service leads its own session, so its process group id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
