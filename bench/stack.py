"""The local stack for one run: a fresh broker (and PostgreSQL) under a temporary directory.

Both are stopped on exit, whatever happened; topics come from the default `TopicLayout()`
unless a layout is given (B8 runs one broker per partition count).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.data import LAYOUT
from services.contract.topics import CATALOGUE, TopicLayout
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.kafka import LocalKafka
from services.platform.localstack.postgres import LocalPostgres


class Stack:
    def __init__(self, root: Path, *, postgres: bool, layout: TopicLayout = LAYOUT):
        self.root = root
        self.layout = layout
        self.kafka = LocalKafka(root / "kafka")
        self.postgres = LocalPostgres(root / "postgres") if postgres else None
        self.bootstrap = ""
        self.database_url = ""

    def __enter__(self) -> Stack:
        try:
            self.bootstrap = self.kafka.start()
            if self.postgres is not None:
                self.database_url = self.postgres.start()
            asyncio.run(ensure_topics(self.bootstrap, self.layout, CATALOGUE))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.postgres is not None and self.postgres.is_running:
            self.postgres.stop()
        if self.kafka.is_running:
            self.kafka.stop()
