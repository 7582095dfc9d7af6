"""The demo's private stack: a clean slate, Kafka and PostgreSQL started side by side, and the
environment the services are started with."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from services.platform.config import Settings
from services.platform.localstack.kafka import LocalKafka
from services.platform.localstack.postgres import LocalPostgres
from services.platform.personal.keys import personal_master_key_env
from services.tools.demo.errors import DemoError
from services.tools.demo.supervisor import stop_leftovers


@dataclass
class Endpoints:
    """Where the demo's servers and services listen."""

    bootstrap: str = ""
    database_url: str = ""
    visits_port: int = 0
    monitoring_port: int = 0
    support_metrics_port: int = 0
    projector_metrics_port: int = 0
    console_port: int = 0


def clean_slate(run_dir: Path, say: Callable[[str], None]) -> None:
    """Stop whatever a killed earlier run left, and delete its data."""
    if not run_dir.exists():
        return
    leftovers = stop_leftovers(run_dir)
    kafka = LocalKafka(run_dir / "stack" / "kafka", detach=True)
    postgres = LocalPostgres(run_dir / "stack" / "postgres")
    if kafka.is_running or postgres.is_running or leftovers:
        say(f"stopping what an earlier demo left running under {run_dir}")
    postgres.stop()
    kafka.stop()
    for name in ("stack", "logs"):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    for data in run_dir.glob("*-data"):  # faust's table directories
        shutil.rmtree(data, ignore_errors=True)


def start_servers(kafka: LocalKafka, postgres: LocalPostgres) -> None:
    """Start both servers; a failure of either is a `DemoError`."""
    # Side by side: the broker's JVM start dominates; PostgreSQL is ready well before it.
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(postgres.start), pool.submit(kafka.start, 180.0)]
        errors = [f.exception() for f in futures]
    failed = [e for e in errors if e is not None]
    if failed:
        raise DemoError(f"the local stack did not start: {failed[0]}") from failed[0]


def child_env(settings: Settings, ends: Endpoints) -> dict[str, str]:
    """The services' environment: this stack's servers, the caller's home and master key."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": ends.bootstrap,
        "DATABASE_URL": ends.database_url,
        "SHOUWANG_HOME": str(settings.home),
        "PYTHONUNBUFFERED": "1",
        **personal_master_key_env(settings.home),
    }
    # The services' own defaults apply; a stray setting from the caller's shell must not send
    # them to other groups or ports than the demo watches.
    for name in (
        "SHOUWANG_MONITORING_APP_ID",
        "SHOUWANG_SUPPORT_APP_ID",
        "SHOUWANG_PROJECTOR_GROUP",
        "SHOUWANG_VISITS_MONITORING_URL",  # set for the visits API: this stack's worker
        "SHOUWANG_VISITS_MONITORING_TOKEN",
        "SHOUWANG_VISITS_MONITORING_TOKEN_FILE",
    ):
        env.pop(name, None)
    return env
