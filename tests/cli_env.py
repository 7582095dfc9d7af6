"""Servers nobody answers on, for the CLI's tests: a closed port and a listener that counts.

`closed_port()` is a port that was free a moment ago (bound, then released): connecting to it
is refused at once. `CountingListener` accepts TCP connections and counts them, so a test can
show that a command refused its arguments without dialling anything.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CountingListener:
    """A TCP server on 127.0.0.1 that accepts, counts and closes every connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def unreachable_env(home: Path, kafka_port: int, db_port: int) -> dict[str, str]:
    """This process's environment with Kafka, PostgreSQL and the visits API on dead ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SHOUWANG_"))}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{kafka_port}",
        DATABASE_URL=f"postgresql://shouwang:secret@127.0.0.1:{db_port}/shouwang",
        SHOUWANG_HOME=str(home),
        SHOUWANG_VISITS_URL=f"http://127.0.0.1:{kafka_port}",
        SHOUWANG_VISITS_TOKEN="not-a-token",
        SHOUWANG_PERSONAL_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
        SHOUWANG_DB_LOGIN_PASSWORD="a-long-enough-password",
    )
    env.pop("DATABASE_URL_OWNER", None)
    return env


async def register_township(database_url: str, township: str, *villages: str) -> None:
    """Make `township` (and `villages` of it) known to the read model (a cadre of the roster in
    each), as `tokens issue --township/--village` requires: the schema migrated first,
    idempotent."""
    import asyncpg

    from services.platform.postgres.migrate import apply_migrations

    await apply_migrations(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        for village in (None, *villages):
            await conn.execute(
                "INSERT INTO cadres (cadre_id, township, village) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                f"test-cadre-of-{township}" + (f"-{village}" if village else ""),
                township,
                village,
            )
    finally:
        await conn.close()


def run_cli(
    argv: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess:
    """`shouwang ARGV` as a process from the project's root, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *argv],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
