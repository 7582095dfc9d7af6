"""The harness's private stack: a broker and a PostgreSQL server of its own, under a run directory.

Every scenario runs against these servers, never the developer's stack or the test session's
shared servers, because it stops and kills them. Services get the environment a deployment would
give them (`PrivateStack.env`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from services.contract.topics import TopicLayout
from services.platform.localstack.kafka import QUICK_RESTART_CONFIG, LocalKafka
from services.platform.localstack.postgres import LocalPostgres
from services.platform.personal.keys import personal_master_key_env

ROOT = Path(__file__).resolve().parents[3]
# Few partitions: the workers start and rebalance faster on a shared 2-core machine, and every
# fault still lands on a multi-partition topic.
LAYOUT = TopicLayout(household_partitions=4, other_partitions=2)


class PrivateStack:
    """A broker and a PostgreSQL server of the harness's own, under `run_dir`."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        run_dir.chmod(0o755)  # PostgreSQL runs unprivileged when started as root
        self.kafka = LocalKafka(run_dir / "kafka", extra_config=QUICK_RESTART_CONFIG)
        self.postgres = LocalPostgres(run_dir / "postgres")

    def start(self) -> None:
        self.kafka.start(timeout=180)
        self.postgres.start(timeout=120)

    def stop(self) -> None:
        for stop in (self.kafka.stop, self.postgres.stop):
            try:
                stop()
            except Exception as exc:  # stop the other one anyway
                print(f"warning: stopping {stop.__self__}: {exc}", file=sys.stderr)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def database_url(self) -> str:
        return self.postgres.database_url

    @property
    def home(self) -> Path:
        return self.run_dir / "home"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a service of this stack gets (12-factor)."""
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.database_url,
            "SHOUWANG_HOME": str(self.home),
            "SHOUWANG_PARTITIONS": str(LAYOUT.household_partitions),
            "SHOUWANG_OTHER_PARTITIONS": str(LAYOUT.other_partitions),
            **personal_master_key_env(self.run_dir),
            **extra,
        }
