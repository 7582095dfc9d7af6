"""Every HTTP API as it runs, fuzzed from its own OpenAPI document with every check
Schemathesis has, and its docs page offline, opened as a browser opens it: without a token.

The visits API (`shouwang visits`), the operator API (`shouwang support-api`), the monitoring
worker's household view (`shouwang monitoring`) and the console's sync-down API for field apps
(`shouwang console`) run as processes, configured by environment as deployed, on a private
broker (fuzzed records must not reach other tests' topics) and a private database holding a read
model to page through, an operator token and a cadre's. Schemathesis (CLI, in its own process)
reads each /openapi.json and sends examples, boundary and negative cases, random cases and,
where the document has links, call sequences, with the token the document's security scheme
asks for, and runs `--checks all`: server errors, status code, content type, headers and
response schema conformance, negative data rejected, positive data accepted, ignored auth,
unsupported methods, and the custom checks of services/tools/faults/fuzz_checks.py (every 4xx a
problem+json;
on the visits API, where two built-ins cannot read the documented behaviour, their stand-ins —
see that module). Zero failures. Quick by default (CI): SHOUWANG_FUZZ_EXAMPLES examples per
operation (20) from the fixed seed SHOUWANG_FUZZ_SEED; raise both for a longer hunt;
SHOUWANG_FUZZ_REPORTS names a directory to keep each API's full report in.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from yarl import URL

from services.platform.auth.tokens import PostgresTokenStore, hash_secret, new_secret, new_token
from services.platform.config import Settings
from services.platform.http.problems import PROBLEM_JSON
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.kafka import LocalKafka
from services.platform.localstack.ports import free_port
from services.platform.localstack.processes import stop_child
from services.platform.postgres.migrate import apply_migrations
from services.tools.faults.fuzzing import VISITS_OPERATIONS, fuzz
from services.tools.workers import monitoring_env
from tests.visits_samples import sample

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("SHOUWANG_FUZZ_EXAMPLES") or 20)
SEED = int(os.environ.get("SHOUWANG_FUZZ_SEED") or 20261204)
APIS = ("visits", "operator", "monitoring")
FUZZED = (*APIS, "console")  # the console's document covers its sync-down API only
T0 = dt.datetime(2020, 5, 16, 12, 0, tzinfo=dt.UTC)
OVERDUE = ("[]", '["visit_overdue"]')
HOUSEHOLDS = ("H-500228-0001", "H-500228-0002")  # registered through the visits API
SEEDED_HOUSEHOLDS = tuple(f"h-{i}" for i in range(5))  # rows of the read model
TOWN = "镇-fuzz"


@dataclass
class Running:
    """The APIs' base URLs, the operator token (and the cadre's the console's field-app API
    takes), and where their logs are."""

    urls: dict[str, str]
    token: str
    logs: Path
    processes: dict[str, subprocess.Popen]
    cadre_token: str = ""

    def token_of(self, api: str) -> str:
        return self.cadre_token if api == "console" else self.token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def start(command: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:  # the child keeps its own descriptor; nobody has to read it
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", command],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def until(
    condition: Callable[[], Awaitable[bool]], seconds: float, what: str, process, log: Path
) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        if process.poll() is not None:
            tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-3000:]
            raise AssertionError(f"{what}: exited {process.returncode}\n{tail}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def answers(url: str, headers: dict[str, str]) -> bool:
    try:
        async with aiohttp.ClientSession(headers=headers) as session, session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientConnectionError:
        return False  # not listening yet


async def seed_read_model(url: str) -> None:
    """Rows for the operator API's lists and links: households, a cadre and their measures."""
    conn = await asyncpg.connect(url)
    try:
        town = TOWN
        await conn.executemany(
            """INSERT INTO households (household_id, township, village, category, level,
                   workflow_status, overdue, responsible_cadre_id, assessed_at, reasons)
               VALUES ($1, $2, '水井村', 'UNSTABLE_LIFTED', 'HIGH', $3, $4::jsonb, 'c-1', $5,
                   '[]')""",
            [
                (h, town, ("monitored", "flagged")[i % 2], OVERDUE[i % 2], T0)
                for i, h in enumerate(SEEDED_HOUSEHOLDS)
            ],
        )
        await conn.execute(
            """INSERT INTO cadres (cadre_id, township, village, department, max_households,
                   active) VALUES ('c-1', $1, '水井村', 'town', 5, true)""",
            town,
        )
        await conn.executemany(
            """INSERT INTO measures (measure_id, household_id, type, status, pool, cadre_id,
                   reasons, recommended_at, status_changed_at)
               VALUES ($1, $2, 'PAIRING', 'accepted', $3, 'c-1', '["rule"]', $4, $4)""",
            [(f"m-{i}", f"h-{i}", f"township:{town}:pairing", T0) for i in range(3)],
        )
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def private_database(database_url: str) -> AsyncIterator[str]:
    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    try:
        await apply_migrations(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="module")
async def running(stack_tmp_dir: Path, database_url: str) -> AsyncIterator[Running]:
    home = Path(tempfile_dir(stack_tmp_dir))
    kafka = LocalKafka(home / "kafka")
    processes: dict[str, subprocess.Popen] = {}
    try:
        bootstrap = await asyncio.to_thread(kafka.start, 120)
        async with private_database(database_url) as url:
            await ensure_topics(bootstrap, Settings.from_env().layout)
            await seed_read_model(url)
            pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
            token = new_secret()
            await PostgresTokenStore(pool).issue(
                new_token("operator", "op-fuzz"), hash_secret(token)
            )
            cadre_token = new_secret()  # c-1's, whose work list is seeded
            await PostgresTokenStore(pool).issue(
                new_token("cadre", "c-1", [TOWN]), hash_secret(cadre_token)
            )
            door_token = new_secret()  # the visits API's own, to read the household view
            await PostgresTokenStore(pool).issue(
                new_token("auditor", "visits-door"), hash_secret(door_token)
            )
            await pool.close()
            ports = {api: free_port() for api in FUZZED}
            base = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": url,
                    "SHOUWANG_HOME": str(home)}  # fmt: skip
            commands = {
                # As composed: the door checks a review decision's procedure order against
                # the monitoring worker's view (services/visits/README.md).
                "visits": ("visits", {**base, "SHOUWANG_VISITS_PORT": str(ports["visits"]),
                           "SHOUWANG_VISITS_MONITORING_URL": f"http://127.0.0.1:{ports['monitoring']}",
                           "SHOUWANG_VISITS_MONITORING_TOKEN": door_token}),
                "operator": (
                    "support-api",
                    {**base, "SHOUWANG_SUPPORT_API_PORT": str(ports["operator"])},
                ),
                "monitoring": (
                    "monitoring",
                    monitoring_env(bootstrap, home, "fuzz-app", ports["monitoring"], base=base),
                ),
                "console": (
                    "console",
                    {**base, "SHOUWANG_CONSOLE_PORT": str(ports["console"]),
                     "SHOUWANG_CONSOLE_VISITS_URL": f"http://127.0.0.1:{ports['visits']}"},
                ),
            }  # fmt: skip
            urls = {api: f"http://127.0.0.1:{ports[api]}" for api in FUZZED}
            auth = {"Authorization": f"Bearer {token}"}  # all but probes, metrics, docs
            for api, (command, env) in commands.items():
                log = home / f"{api}.log"
                process = start(command, env, log)
                processes[api] = process
                await until(lambda a=api: answers(f"{urls[a]}/openapi.json", auth), 180, api,
                            process, log)  # fmt: skip
            running = Running(urls, token, home, processes, cadre_token)
            await register_households(running, processes["monitoring"], home / "monitoring.log")
            yield running
    finally:
        for process in processes.values():
            stop_child(process)
        await asyncio.to_thread(kafka.stop)


def tempfile_dir(parent: Path) -> str:
    path = Path(tempfile.mkdtemp(prefix="fuzz-", dir=parent))
    path.chmod(0o755)  # PostgreSQL and the broker may run as another account
    return str(path)


async def register_households(running: Running, worker, log: Path) -> None:
    """Households written through the visits API, as a field app would, until the monitoring
    worker's view has them: the fuzzer then also reaches the view's answer, not only 404."""
    async with aiohttp.ClientSession(headers=running.auth) as http:
        for household_id in HOUSEHOLDS:
            body = sample("households", household_id=household_id)
            async with http.post(f"{running.urls['visits']}/v1/households", json=body) as r:
                assert r.status == 202, await r.text()

        async def viewed() -> bool:
            for household_id in HOUSEHOLDS:
                url = f"{running.urls['monitoring']}/v1/households/{household_id}"
                async with http.get(url) as response:
                    if response.status != 200:
                        return False
            return True

        await until(viewed, 180, "the monitoring view of the registered households", worker, log)


def schemathesis_config(path: Path, api: str) -> Path:
    """Known ids, drawn half the time, so that the fuzzed reads find something to answer."""
    quoted = ", ".join(f'"{h}"' for h in (*HOUSEHOLDS, *SEEDED_HOUSEHOLDS))
    path.write_text(
        f"""[dictionaries.households]
values = [{quoted}]

[dictionaries.cadres]
values = ["c-1"]

[parameters]
"path.household_id" = {{ dictionary = "households", probability = 0.5 }}
"path.cadre_id" = {{ dictionary = "cadres", probability = 0.5 }}
"""
        + (VISITS_OPERATIONS if api == "visits" else ""),
        encoding="utf-8",
    )
    return path


class Assets(HTMLParser):
    """Every URL the page names (stylesheets, icons, scripts)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls.extend(v for k, v in attrs if k in ("src", "href") and v)


@pytest.mark.parametrize("api", APIS)
async def test_the_docs_page_and_every_file_it_names_are_served_by_the_api(
    running: Running, api: str
):
    base = running.urls[api]
    # As a browser opens it: no Authorization header, for the page, its files and the document.
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/docs") as page:
            assert page.status == 200 and page.content_type == "text/html"
            html = await page.text()
        parser = Assets()
        parser.feed(html)
        assert {u.rsplit("/", 1)[-1] for u in parser.urls} >= {
            "swagger-ui.css",
            "swagger-ui-bundle.js",
            "swagger-ui-standalone-preset.js",
            "init.js",
        }
        named = [urljoin(f"{base}/docs", u) for u in parser.urls]
        async with http.get(f"{base}/docs/static/init.js") as init:
            script = await init.text()
        named.append(urljoin(f"{base}/docs", script.split('url: "', 1)[1].split('"', 1)[0]))
        for url in named:
            assert url.startswith(f"{base}/"), url  # served here, nothing from a CDN
            async with http.get(url) as response:
                assert response.status == 200, url
                assert await response.read(), url
        async with http.get(f"{base}/openapi.json") as document:
            described = await document.json()
        assert f"<title>{described['info']['title']}</title>" in html
        # Calling the API from the page takes a token: the page's Authorize button offers the
        # document's bearer scheme, kept in memory only.
        assert described["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert "persistAuthorization: false" in script
        path, operations = next((p, o) for p, o in described["paths"].items() if "/v1/" in p)
        method, operation = next(iter(operations.items()))
        assert operation["security"] == [{"bearer": []}]
        url = f"{base}{path}".replace("{household_id}", HOUSEHOLDS[0]).replace("{cadre_id}", "c-1")
        async with http.request(method, url, json={} if method == "post" else None) as refused:
            assert refused.status == 401 and refused.content_type == PROBLEM_JSON
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("api", APIS)
async def test_the_routers_own_refusals_are_problems(running: Running, api: str):
    base = running.urls[api]
    async with aiohttp.ClientSession(headers=running.auth) as http:
        for method, path, status in (
            ("GET", "/no/such/route", 404),
            ("DELETE", "/openapi.json", 405),
            ("GET", "/openapi.json?x=%00", 400),
        ):
            async with http.request(method, URL(f"{base}{path}", encoded=True)) as response:
                assert response.status == status, (path, await response.text())
                assert response.content_type == PROBLEM_JSON, path
                body: dict[str, Any] = await response.json()
                assert body["status"] == status and body["title"] and body["type"], body


@pytest.mark.parametrize("api", FUZZED)
async def test_fuzzing_the_api_from_its_document_finds_no_5xx_and_only_problems(
    running: Running, api: str
):
    report = running.logs / f"fuzz-{api}.txt"
    config = schemathesis_config(running.logs / f"schemathesis-{api}.toml", api)
    url, token = f"{running.urls[api]}/openapi.json", running.token_of(api)
    code, text = await fuzz(
        url, token, config, report, visits=api == "visits", examples=EXAMPLES, seed=SEED
    )
    if keep := os.environ.get("SHOUWANG_FUZZ_REPORTS"):  # a directory to keep the full reports in
        await asyncio.to_thread(Path(keep, report.name).write_text, text, encoding="utf-8")
    print(text[-2500:])  # the run summary, shown with -s
    assert code == 0, f"schemathesis exited {code} on the {api} API:\n{text[-6000:]}"
    # what the visits API accepted went on to the monitoring worker: it is still there
    for name, process in running.processes.items():
        assert process.poll() is None, f"{name} exited {process.returncode}; see {running.logs}"
