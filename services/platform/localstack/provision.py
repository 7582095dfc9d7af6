"""Choose the servers to use: the ones the environment names, else local ones started here.

`KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` win; without them a LocalKafka or LocalPostgres is
started under a work directory and stopped when the context ends. Tests and the demo use these.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from services.platform.localstack.kafka import LocalKafka
from services.platform.localstack.postgres import LocalPostgres

KAFKA_ENV = "KAFKA_BOOTSTRAP_SERVERS"
DATABASE_ENV = "DATABASE_URL"


@dataclass(frozen=True)
class Provisioned:
    """How to reach a server, and the local server behind it when we started one (else None)."""

    url: str
    server: LocalKafka | LocalPostgres | None


@contextmanager
def provide_kafka(
    work_dir: Path, env: Mapping[str, str] = os.environ, timeout: float = 120.0
) -> Iterator[Provisioned]:
    """Yield `$KAFKA_BOOTSTRAP_SERVERS` if set, else a LocalKafka started in `work_dir/kafka`."""
    configured = env.get(KAFKA_ENV, "").strip()
    if configured:
        yield Provisioned(configured, None)
        return
    kafka = LocalKafka(work_dir / "kafka")
    try:
        yield Provisioned(kafka.start(timeout), kafka)
    finally:
        kafka.stop()


@contextmanager
def provide_database(
    work_dir: Path, env: Mapping[str, str] = os.environ, timeout: float = 60.0
) -> Iterator[Provisioned]:
    """Yield `$DATABASE_URL` if set, else a LocalPostgres started in `work_dir/postgres`."""
    configured = env.get(DATABASE_ENV, "").strip()
    if configured:
        yield Provisioned(configured, None)
        return
    postgres = LocalPostgres(work_dir / "postgres")
    try:
        yield Provisioned(postgres.start(timeout), postgres)
    finally:
        postgres.stop()
