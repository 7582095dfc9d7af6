"""`shouwang projector` and `shouwang support-api` as deployed: built by bootstrap from the
environment, serving /metrics, and leaving with exit 0 on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from services.contract.catalogue import load_catalogue
from services.contract.topics import TopicLayout
from services.platform.config import Settings
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from services.platform.localstack.ports import free_port
from tests.integration.readmodel.test_projector import (
    ROOT,
    fresh_database,  # noqa: F401  (fixture)
    wait_for,
)

pytestmark = pytest.mark.integration


class Command:
    """A `shouwang` command in its own process, its log in a file (a pipe nobody reads would
    fill up and block it)."""

    def __init__(self, command: str, env: dict[str, str], log: Path):
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", command],
                cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    async def until(self, condition: Callable[[], Awaitable[Any]], seconds: float, what: str):
        async def running_and() -> Any:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise AssertionError(f"exited {self.process.returncode}: {tail}")
            return await condition()

        return await wait_for(running_and, seconds, what)

    def stop(self) -> int:
        """SIGTERM, and the exit code (killed after a minute)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(10)


async def fetch(url: str) -> tuple[int, str] | None:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()
    except aiohttp.ClientConnectionError:
        return None  # not listening yet


async def test_the_projector_command_records_the_pools_and_serves_its_metrics(
    kafka_bootstrap: str,
    fresh_database: str,  # noqa: F811
    tmp_path: Path,
):
    with contextlib.suppress(TopicMismatch):  # an earlier test made them with another layout
        await ensure_topics(kafka_bootstrap, TopicLayout())
    port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": fresh_database,
        "SHOUWANG_PROJECTOR_GROUP": f"test-commands-{port}",
        "SHOUWANG_PROJECTOR_METRICS_PORT": str(port),
    }
    projector = Command("projector", env, tmp_path / "projector.log")
    conn = await asyncpg.connect(fresh_database)
    try:
        catalogue = load_catalogue(Settings.from_env().catalogue_path)
        expected = {p.id for p in catalogue.pools.values()}

        async def pools() -> bool:
            return {r["pool"] for r in await conn.fetch("SELECT pool FROM pools")} == expected

        await projector.until(pools, 120, "the catalogue's pools")
        url = f"http://127.0.0.1:{port}/metrics"
        status, body = await projector.until(lambda: fetch(url), 60, "/metrics")
        assert status == 200
        assert "shouwang_projector_batch_seconds_bucket" in body
        assert projector.stop() == 0
    finally:
        await conn.close()
        if projector.process.poll() is None:
            projector.stop()


async def test_the_support_api_command_serves_operators_only_until_sigterm(
    fresh_database: str,  # noqa: F811
    kafka_bootstrap: str,
    tmp_path: Path,
):
    port = free_port()
    # The broker too: the API follows revocations on operator.actions (platform/auth).
    env = {
        "DATABASE_URL": fresh_database,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SHOUWANG_SUPPORT_API_PORT": str(port),
    }
    api = Command("support-api", env, tmp_path / "support-api.log")
    try:
        base = f"http://127.0.0.1:{port}"
        status, _ = await api.until(lambda: fetch(f"{base}/v1/measures"), 60, "the API")
        assert status == 401  # no bearer token
        status, body = await fetch(f"{base}/metrics")
        assert status == 200
        assert (
            'shouwang_support_api_requests_total{method="GET",route="/v1/measures",status="401"}'
            in body
        )
        assert api.stop() == 0
    finally:
        if api.process.poll() is None:
            api.stop()
