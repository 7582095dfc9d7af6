"""The local stack (Kafka + PostgreSQL) as background servers that later commands can stop."""

import json
import os
from pathlib import Path

from services.platform.localstack.kafka import LocalKafka
from services.platform.localstack.postgres import LocalPostgres

STATE_FILE = "stack.json"
ENV_FILE = "stack.env"


def default_home() -> Path:
    """`$SHOUWANG_HOME`, else `.shouwang` under the current directory."""
    configured = os.environ.get("SHOUWANG_HOME")
    return Path(configured) if configured else Path.cwd() / ".shouwang"


def stack_dir(home: Path | None = None) -> Path:
    """Where the stack keeps its servers' data, logs and state: `<home>/stack`."""
    return (home or default_home()).resolve() / "stack"


def _servers(home: Path | None) -> tuple[LocalKafka, LocalPostgres]:
    # Both servers find their earlier ports in their data directories, so a second process
    # builds handles on the very servers the first one started.
    root = stack_dir(home)
    return LocalKafka(root / "kafka", detach=True), LocalPostgres(root / "postgres")


def up(home: Path | None = None, timeout: float = 120.0) -> dict[str, str]:
    """Start whichever of Kafka and PostgreSQL is not running; return how to reach them.

    The result has `bootstrap` (for KAFKA_BOOTSTRAP_SERVERS) and `database_url` (for
    DATABASE_URL); both are also written to `<home>/stack/stack.env`. If one server fails to
    start, a server started by this call is stopped again before the error propagates.
    """
    kafka, postgres = _servers(home)
    started = []
    try:
        for server in (postgres, kafka):  # the quicker first: it fails sooner
            if not server.is_running:
                server.start(timeout)
                started.append(server)
    except BaseException:
        for server in started:
            server.stop()
        raise
    urls = {"bootstrap": kafka.bootstrap, "database_url": postgres.database_url}
    root = stack_dir(home)
    state = {
        "kafka": {
            "data_dir": str(kafka.data_dir),
            "port": kafka.port,
            "controller_port": kafka.controller_port,
            "log_file": str(kafka.log_file),
        },
        "postgres": {
            "data_dir": str(postgres.data_dir),
            "port": postgres.port,
            "log_file": str(postgres.log_file),
        },
        **urls,
    }
    (root / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    (root / ENV_FILE).write_text(
        f"KAFKA_BOOTSTRAP_SERVERS={urls['bootstrap']}\nDATABASE_URL={urls['database_url']}\n"
    )
    return urls


def down(home: Path | None = None) -> None:
    """Stop both servers (cleanly, PostgreSQL first); their data stays for the next `up`."""
    root = stack_dir(home)
    if not root.exists():
        return
    kafka, postgres = _servers(home)
    postgres.stop()
    kafka.stop()
    (root / ENV_FILE).unlink(missing_ok=True)


def status(home: Path | None = None) -> dict[str, dict[str, object]]:
    """Whether each server runs, its pid, address and log file (only `running` before any `up`)."""
    if not (stack_dir(home) / STATE_FILE).exists():
        return {"kafka": {"running": False}, "postgres": {"running": False}}
    kafka, postgres = _servers(home)
    return {
        "kafka": {
            "running": kafka.is_running,
            "pid": kafka.pid,
            "bootstrap": kafka.bootstrap,
            "log_file": str(kafka.log_file),
        },
        "postgres": {
            "running": postgres.is_running,
            "pid": postgres.pid,
            "database_url": postgres.database_url,
            "log_file": str(postgres.log_file),
        },
    }
