"""The services as child processes the harness may kill: `shouwang monitoring` / `projector` /
`support` / `visits` workers, and `shouwang replay --verify` run against the private stack."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.platform.localstack.ports import free_ports
from services.tools.faults.stack import ROOT, PrivateStack
from services.tools.workers import monitoring_env


class Worker:
    """A `shouwang <command>` child process that can be killed (-9) and started again."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def start(self) -> None:
        if self.running:
            return
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", *self.command],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of the worker's log, indented, for a FAIL message: the run directory
        may be gone by the time anyone reads it (CI deletes its temporary directory)."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"      | {line[:300]}" for line in text[-lines:])

    def kill9(self) -> None:
        """SIGKILL, as a crash (or the OOM killer) would."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
            self.kills += 1

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self.process = None


def monitoring_worker(
    stack: PrivateStack,
    app_id: str,
    port: int | None = None,
    name: str = "monitoring",
    **extra: str,
) -> tuple[Worker, int]:
    """A monitoring worker (exactly-once, event clock so the output is a function of the log)
    and its web port (a free one when None); `extra` adds to or overrides the stack's
    environment."""
    if port is None:
        (port,) = free_ports(1)
    env = monitoring_env(stack.bootstrap, stack.home, app_id, port, base=stack.env(), **extra)
    return Worker(name, ["monitoring"], env, stack.run_dir), port


def projector_worker(stack: PrivateStack, group: str) -> Worker:
    return Worker(
        "projector", ["projector"], stack.env(SHOUWANG_PROJECTOR_GROUP=group), stack.run_dir
    )


def visits_worker(stack: PrivateStack, port: int, name: str = "visits", **extra: str) -> Worker:
    """The visits API on 127.0.0.1:`port`, telling refused clients to retry after one second
    (the scenarios' clients wait as told); `extra` adds to or overrides the stack's environment."""
    env = stack.env(
        SHOUWANG_VISITS_PORT=str(port),
        SHOUWANG_VISITS_HOST="127.0.0.1",
        SHOUWANG_VISITS_RETRY_AFTER_SECONDS="1",
        **extra,
    )
    return Worker(name, ["visits"], env, stack.run_dir)


def support_worker(stack: PrivateStack, app_id: str, name: str = "support", **extra: str) -> Worker:
    """A support (matching) worker with the shipped catalogue; `extra` adds to or overrides the
    stack's environment."""
    env = stack.env(SHOUWANG_SUPPORT_APP_ID=app_id, **extra)
    return Worker(name, ["support"], env, stack.run_dir)


async def run_replay_verify(
    stack: PrivateStack, household_prefix: str, seconds: float = 300
) -> tuple[int, str]:
    """`shouwang replay --verify` against the private stack for the households whose id starts
    with `household_prefix`: its exit code and last lines."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "replay",
        "--verify",
        "--household-prefix",
        household_prefix,
        cwd=ROOT,
        env=stack.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, f"replay --verify took over {seconds:.0f} s"
    text = output.decode(errors="replace").strip().splitlines()
    return process.returncode or 0, "\n".join(text[-8:])
