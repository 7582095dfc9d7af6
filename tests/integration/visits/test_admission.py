"""Fair admission and client disconnects against the real `shouwang visits` process (issue 21).

The service runs as deployed (`python -m services.cli visits`, its own port and home) on the
session's broker and PostgreSQL, with its default admission settings except a short body
deadline (SHOUWANG_VISITS_BODY_TIMEOUT_SECONDS=6, so a test waits 6 s, not 30). Token limits
come from the tokens' own records (`shouwang tokens issue --max-concurrent/--rate/--burst`).
A second process, whose broker never answers, shows the operator reserve: writes hold their
broker slots there until the request timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.platform.auth.tokens import PostgresTokenStore, hash_secret, new_secret, new_token
from services.platform.http.problems import problem_type
from services.platform.localstack.ports import free_ports
from services.platform.localstack.processes import stop_child
from services.platform.postgres.migrate import apply_migrations
from services.platform.quotas import NO_OVERRIDE, QuotaOverride
from tests.integration.visits.conftest import prepare_topics
from tests.visits_samples import sample

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
BODY_TIMEOUT = 6


@dataclass
class Visits:
    """A running `shouwang visits` process: its URL, port and log."""

    base: str
    port: int
    log: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _start(env: dict[str, str], directory: Path, port: int) -> Visits:
    log = directory / "visits.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "visits"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Visits(f"http://127.0.0.1:{port}", port, log, process)


async def _until(condition, seconds: float, what: str, visits: Visits | None = None) -> None:
    deadline = time.monotonic() + seconds
    while True:
        answer = condition()
        if asyncio.iscoroutine(answer):
            answer = await answer
        if answer:
            return
        if visits is not None and visits.process.poll() is not None:
            raise AssertionError(f"visits exited while waiting for {what}:\n{visits.log_text()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def _healthy(base: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as answer:
            return answer.status == 200
    except aiohttp.ClientError:
        return False


@contextlib.asynccontextmanager
async def running(env_extra: dict[str, str], tmp: Path) -> AsyncIterator[Visits]:
    (port,) = free_ports(1)
    directory = Path(tempfile.mkdtemp(prefix="visits-admission-", dir=tmp))
    env = {
        **os.environ,
        "SHOUWANG_HOME": str(directory / "home"),
        "SHOUWANG_VISITS_PORT": str(port),
        **env_extra,
    }
    visits = _start(env, directory, port)
    try:
        await _until(lambda: _healthy(visits.base), 120, "visits to answer /healthz", visits)
        yield visits
    finally:
        stop_child(visits.process, timeout=30)


@pytest.fixture(scope="module")
async def visits(kafka_bootstrap: str, database_url: str, stack_tmp_dir: Path):
    await prepare_topics(kafka_bootstrap)
    await apply_migrations(database_url)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "SHOUWANG_VISITS_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    }
    async with running(env, stack_tmp_dir) as service:
        yield service


async def issue(database_url: str, kind: str, quota: QuotaOverride = NO_OVERRIDE) -> str:
    secret = new_secret()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        token = new_token(kind, f"{kind}-{uuid.uuid4().hex[:8]}", (), _types(kind), quota=quota)
        await PostgresTokenStore(pool).issue(token, hash_secret(secret))
    finally:
        await pool.close()
    return secret


def _types(kind: str) -> tuple[str, ...]:
    return ("HardshipReported",) if kind == "feed" else ()


def hardship() -> dict:
    return {**sample("hardships"), "event_id": str(uuid.uuid4())}


async def post(base: str, secret: str, body: dict | None = None) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        async with http.post(
            f"{base}/v1/hardships",
            json=body or hardship(),
            headers={"Authorization": f"Bearer {secret}"},
        ) as answer:
            await answer.read()
            return answer


async def problem(answer: aiohttp.ClientResponse) -> dict:
    assert answer.content_type == "application/problem+json"
    return await answer.json(content_type=None)


async def metric(base: str, name: str, **labels: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as answer:
        text = await answer.text()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample_ in family.samples:
            if sample_.name == name and all(sample_.labels.get(k) == v for k, v in labels.items()):
                total += sample_.value
    return total


@contextlib.asynccontextmanager
async def slow_body(port: int, secret: str) -> AsyncIterator[asyncio.StreamReader]:
    """A write whose headers are sent and whose body never completes (a few bytes of 4096)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            "POST /v1/hardships HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {secret}\r\n"
            "Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n  "
        ).encode()
    )
    await writer.drain()
    try:
        yield reader
    finally:
        writer.close()


async def test_a_body_not_sent_in_time_is_answered_408_and_frees_the_token(visits, database_url):
    secret = await issue(database_url, "feed", QuotaOverride(concurrency=1))
    before = await metric(visits.base, "shouwang_visits_body_timeouts_total", token_kind="feed")
    async with slow_body(visits.port, secret) as reader:
        async with asyncio.timeout(BODY_TIMEOUT + 20):
            status = await reader.readline()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
            body = await reader.readexactly(length)
    assert status.split()[1] == b"408", status
    assert b"application/problem+json" in head
    assert b'"urn:shouwang:problem:body_timeout"' in body and b"nothing was written" in body
    after = await metric(visits.base, "shouwang_visits_body_timeouts_total", token_kind="feed")
    assert after == before + 1
    # The token's one slot came back with the answer.
    assert (await post(visits.base, secret)).status == 202


async def test_a_token_beyond_its_concurrency_is_answered_429(visits, database_url):
    secret = await issue(database_url, "feed", QuotaOverride(concurrency=2))
    other = await issue(database_url, "feed")
    # A first write puts the token in the service's cache, so the slow requests below are
    # admitted as soon as their headers are in (no token look-up for a later request to race).
    assert (await post(visits.base, secret)).status == 202
    async with slow_body(visits.port, secret) as one, slow_body(visits.port, secret) as two:
        await _until(lambda: _in_flight_at_least(visits.base, 2), 20, "both slow requests admitted")
        shed = await post(visits.base, secret)
        answered = (bytes(one._buffer[:60]), bytes(two._buffer[:60]))
        assert shed.status == 429, f"{shed.status}; the slow requests were answered {answered}"
        assert shed.headers["Retry-After"] == "1"
        body = await problem(shed)
        assert (
            body["type"] == problem_type("token_concurrency")
            and "2 requests open" in body["detail"]
        )
        # Another token of the same kind is not affected.
        assert (await post(visits.base, other)).status == 202
    shed_count = await metric(
        visits.base,
        "shouwang_visits_shed_requests_total",
        token_kind="feed",
        reason="token_concurrency",
    )
    assert shed_count >= 1
    # Once the held requests are gone (their connections closed), the token writes again.
    await _until(lambda: _status_is(visits.base, secret, 202), 30, "the token's slots to come back")


async def _in_flight_at_least(base: str, n: int) -> bool:
    # The gauge counts the /metrics request reading it too.
    return await metric(base, "shouwang_visits_requests_in_flight") >= n + 1


async def _status_is(base: str, secret: str, status: int) -> bool:
    return (await post(base, secret)).status == status


async def test_a_token_beyond_its_rate_is_answered_429_with_when_to_retry(visits, database_url):
    operator = await issue(database_url, "operator", QuotaOverride(rate_per_second=0.2, burst=2))
    answers = [await post(visits.base, operator) for _ in range(3)]
    assert [a.status for a in answers[:2]] == [202, 202]
    shed = answers[2]
    assert shed.status == 429
    body = await problem(shed)
    assert (
        body["type"] == problem_type("token_rate") and "0.2 requests per second" in body["detail"]
    )
    assert 1 <= int(shed.headers["Retry-After"]) <= 5  # one request's worth: 5 s at 0.2/s
    other = await issue(database_url, "operator", QuotaOverride(rate_per_second=0.2, burst=2))
    assert (await post(visits.base, other)).status == 202  # each token has its own bucket
    assert (
        await metric(
            visits.base,
            "shouwang_visits_shed_requests_total",
            token_kind="operator",
            reason="token_rate",
        )
        >= 1
    )


async def test_a_client_that_resets_is_counted_499_and_logged_without_traceback(
    visits, database_url
):
    secret = await issue(database_url, "feed")
    labels = {"route": "/v1/hardships", "method": "POST"}
    before = await metric(visits.base, "shouwang_visits_requests_total", status="499", **labels)
    errors = await metric(visits.base, "shouwang_visits_requests_total", status="500", **labels)
    sock = socket.create_connection(("127.0.0.1", visits.port))
    try:
        sock.sendall(
            (
                "POST /v1/hardships HTTP/1.1\r\n"
                f"Host: x\r\nAuthorization: Bearer {secret}\r\n"
                "Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{"
            ).encode()
        )

        async def admitted() -> bool:  # the request is being read: the token holds a slot
            return (
                await metric(visits.base, "shouwang_visits_requests_in_flight") >= 2
            )  # this one and /metrics itself

        await _until(admitted, 20, "the request to be in flight")
    finally:
        # SO_LINGER 0: close with a reset, as a phone losing its network does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    async def counted() -> bool:
        return (
            await metric(visits.base, "shouwang_visits_requests_total", status="499", **labels)
            == before + 1
        )

    await _until(counted, 20, "the reset request to be counted 499")
    assert (
        await metric(visits.base, "shouwang_visits_requests_total", status="500", **labels)
        == errors
    )
    log = visits.log_text()
    assert "client closed the connection before its answer: POST /v1/hardships" in log
    assert "Traceback" not in log


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A bootstrap address that accepts connections and never answers: a broker that cannot
    acknowledge, without freezing the session's broker other tests use."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


async def test_operators_keep_a_reserved_share_of_the_broker_slots(
    silent_broker, database_url, stack_tmp_dir
):
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": silent_broker,
        "DATABASE_URL": database_url,
        "SHOUWANG_VISITS_MAX_IN_FLIGHT": "4",  # the default reserve, 0.25: one is operators'
        "SHOUWANG_VISITS_REQUEST_TIMEOUT_SECONDS": "15",
    }
    await apply_migrations(database_url)
    feed = await issue(database_url, "feed")
    operator = await issue(database_url, "operator")
    async with running(env, stack_tmp_dir) as silent:
        held = [asyncio.create_task(post(silent.base, feed)) for _ in range(3)]
        await _until(
            lambda: _slots_taken(silent.base, 3), 20, "three feed writes to hold broker slots"
        )
        shed = await post(silent.base, feed)
        assert shed.status == 429 and shed.headers["Retry-After"]
        body = await problem(shed)
        assert (
            body["type"] == problem_type("overloaded")
            and "kept for operator tokens" in body["detail"]
        )
        # The operator's write is admitted to the reserved slot: it waits for the broker
        # (and, the broker being silent, is answered 503 when the request timeout passes).
        operator_write = asyncio.create_task(post(silent.base, operator))
        await _until(lambda: _slots_taken(silent.base, 4), 20, "the operator's write admitted")
        assert (await post(silent.base, operator)).status == 429  # every slot is taken now
        answers = await asyncio.gather(*held, operator_write)
        assert {a.status for a in answers} == {503}
        shed_feed = await metric(
            silent.base,
            "shouwang_visits_shed_requests_total",
            token_kind="feed",
            reason="overloaded",
        )
        assert shed_feed == 1


async def _slots_taken(base: str, n: int) -> bool:
    return await metric(base, "shouwang_visits_broker_slots_in_use") == n
