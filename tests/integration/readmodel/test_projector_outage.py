"""The projector waits out a database that cuts its connection, whatever asyncpg raises for it.

A PostgreSQL shutdown (or `pg_terminate_backend`, or a failover) sends FATAL to every backend,
idle ones included. asyncpg, idle when that message arrives, is left consuming an error, and a
query sent before it sees the socket close fails with `InternalClientError: cannot switch to
state 15; another operation (2) is in progress` (asyncpg issue #784), not a connection error.
The projector did not count that as an outage and exited (found by the db-outage fault
scenario, one run in two). These tests make the real server cut a real connection and check
what the projector's classification and its serve loop do with what comes out.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from services.contract.catalogue import load_catalogue
from services.contract.codec import Codec
from services.platform.postgres.errors import UNREACHABLE
from services.readmodel import projector as projector_module
from services.readmodel.metrics import ProjectorMetrics
from services.readmodel.projector import Projector, ProjectorConfig, serve

pytestmark = pytest.mark.integration


async def cut_while_idle(database_url: str) -> BaseException:
    """What the next query on an idle connection raises once the server has cut it, sent as
    soon as the loop gets to it (the projector's next batch after a fetch that was waiting)."""
    conn = await asyncpg.connect(database_url)
    admin = await asyncpg.connect(database_url)
    try:
        pid = conn.get_server_pid()
        await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        for _ in range(100_000):
            try:
                await conn.execute("SELECT 1")
            except Exception as exc:  # what it raises is the subject
                return exc
            await asyncio.sleep(0)
        raise AssertionError("the server never cut the connection")
    finally:
        conn.terminate()
        await admin.close()


async def internal_client_error(database_url: str, tries: int = 200) -> BaseException:
    """Cut idle connections until one fails the asyncpg#784 way (most do: the query is sent
    before the close is seen); every error on the way must count as the database going away."""
    seen: dict[str, int] = {}
    for _ in range(tries):
        error = await cut_while_idle(database_url)
        assert isinstance(error, UNREACHABLE), f"{type(error).__name__}: {error}"
        seen[type(error).__name__] = seen.get(type(error).__name__, 0) + 1
        if isinstance(error, asyncpg.InternalClientError):
            return error
    raise AssertionError(f"no InternalClientError in {tries} cuts: {seen}")


async def test_a_cut_idle_connection_is_counted_as_the_database_going_away(database_url):
    error = await internal_client_error(database_url)
    assert "another operation" in str(error)


class FailingOnce(Projector):
    def __init__(self, config, error: BaseException):
        super().__init__(config, Codec.default(), ProjectorMetrics(CollectorRegistry()))
        self.error: BaseException | None = error
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        self.stop()


async def test_serve_waits_and_runs_again_after_the_cut(database_url, monkeypatch):
    monkeypatch.setattr(projector_module, "DB_RETRY_FIRST_SECONDS", 0.01)
    error = await internal_client_error(database_url)
    config = ProjectorConfig(bootstrap="127.0.0.1:1", database_url=database_url)
    projector = FailingOnce(config, error)
    await asyncio.wait_for(serve(config, load_catalogue(), CollectorRegistry(), projector), 120)
    assert projector.runs == 2  # not exited: waited, then ran again
