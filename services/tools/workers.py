"""Monitoring workers as child processes of tests, benchmarks and the fault harness: the
environment they are given and their start."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def monitoring_env(
    bootstrap: str,
    home: Path,
    app_id: str,
    port: int,
    *,
    rocksdb: bool | None = None,
    base: Mapping[str, str] | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of a `shouwang monitoring` worker of the app (consumer group) `app_id`
    with its web view on `port`.

    The worker runs on the event clock, so its assessments are a function of the log, not of
    the moment it ran. `rocksdb` chooses the table store (None leaves it to `base`); `base` is
    the environment inherited (this process's when None); `extra` adds to or overrides it all.
    """
    env = {
        **(os.environ if base is None else base),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SHOUWANG_HOME": str(home),
        "SHOUWANG_MONITORING_APP_ID": app_id,
        "SHOUWANG_MONITORING_PORT": str(port),
        "SHOUWANG_MONITORING_CLOCK": "event",
    }
    if rocksdb is not None:
        env["SHOUWANG_MONITORING_ROCKSDB"] = "1" if rocksdb else ""
    return {**env, **extra}


def start_monitoring_worker(env: Mapping[str, str], log_path: Path) -> subprocess.Popen:
    """Start `shouwang monitoring` with `env`, its stdout and stderr written to `log_path`;
    stop it with `processes.stop_child`."""
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "monitoring"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def issue_view_token(database_url: str, holder: str = "tools-household-view") -> str:
    """A fresh operator token for reading a worker's household view (every route but /metrics
    needs one), stored in the token table the worker reads (`database_url`, owner's URL).

    Written straight into the table, not through `shouwang tokens issue`: tests, benchmarks and
    the fault harness are not operators, and the command's start-up would dominate what they
    measure. Returns the secret, for `view_headers`.
    """
    import asyncpg

    from services.platform.auth.tokens import PostgresTokenStore, hash_secret, new_secret, new_token
    from services.platform.postgres.migrate import apply_migrations

    await apply_migrations(database_url)
    secret = new_secret()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        await PostgresTokenStore(pool).issue(new_token("operator", holder), hash_secret(secret))
    finally:
        await pool.close()
    return secret


def view_headers(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
