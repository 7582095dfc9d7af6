"""Every HTTP surface of the system, as it runs: each route needs a token of its scope (an
auditor's reads what an operator's reads and is refused every other method), and a token
revoked with `shouwang tokens revoke` is refused by every service a second later, also while
PostgreSQL is down.

The services run as deployed (`shouwang visits`, `support-api`, `monitoring`, `support`,
`projector`, child processes with their own environment) against the session's broker and a
PostgreSQL server of this module's own (stopped in the last test). The routes are read from the
routers of the apps the same bootstrap functions build, never from a list kept here; each is
then asked over HTTP of the running process, for every method it accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry
from yarl import URL

from services.contract.codec import Codec
from services.contract.inputs import BY_SLUG
from services.contract.topics import CATALOGUE, HOUSEHOLD_REGISTRY, OPERATOR_ACTIONS, TopicLayout
from services.platform.auth.http import EXEMPT_PATHS
from services.platform.auth.tokens import PostgresTokenStore, Token, hash_secret, new_token
from services.platform.config import Settings
from services.platform.http.docs import ASSET_PATH, ASSETS
from services.platform.http.problems import PROBLEM_JSON, problem_type
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from services.platform.localstack.ports import free_ports
from services.platform.localstack.postgres import LocalPostgres
from services.platform.localstack.processes import stop_child, tail
from services.platform.postgres.migrate import apply_migrations
from services.tools.demo.catch_up import partition_counts
from tests.records import at, registry

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
CODEC = Codec.default()
TOWNSHIP, OTHER = "鹤游镇", "大石乡"
COMMANDS = {  # service -> (shouwang command, the variable naming its port)
    "visits": ("visits", "SHOUWANG_VISITS_PORT"),
    "support-api": ("support-api", "SHOUWANG_SUPPORT_API_PORT"),
    "monitoring": ("monitoring", "SHOUWANG_MONITORING_PORT"),
    "support": ("support", "SHOUWANG_SUPPORT_METRICS_PORT"),
    "projector": ("projector", "SHOUWANG_PROJECTOR_METRICS_PORT"),
}
TOKEN_CHECKING = ("visits", "support-api", "monitoring", "support")


@dataclass
class System:
    """The running services, their environment, and the tokens issued for the checks."""

    env: dict[str, str]
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen]
    logs: Path
    postgres: LocalPostgres
    household: str
    secrets: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(
                    f"{name} exited with {process.returncode}:\n{tail(self.logs / name)}"
                )


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def until(condition, seconds: float, what: str, system: System) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        system.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {seconds:.0f} s")
        await asyncio.sleep(0.5)


async def status(
    http: aiohttp.ClientSession, method: str, url: str, headers: dict | None = None
) -> int:
    async with http.request(method, url, headers=headers or {}, allow_redirects=False) as r:
        await r.read()
        return r.status


def start_services(env: dict[str, str], logs: Path) -> dict[str, subprocess.Popen]:
    processes = {}
    for name, (command, _) in COMMANDS.items():
        with (logs / name).open("wb") as log:  # the child keeps its own descriptor
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", command],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    return processes


@pytest.fixture(scope="module")
def private_postgres(stack_tmp_dir: Path) -> Iterator[LocalPostgres]:
    """A PostgreSQL server of this module's own: the last test stops it."""
    path = Path(tempfile.mkdtemp(prefix="postgres-auth-", dir=stack_tmp_dir))
    path.chmod(0o755)  # entered by the unprivileged server account when tests run as root
    postgres = LocalPostgres(path)
    postgres.start(timeout=120)
    try:
        yield postgres
    finally:
        postgres.stop()


@pytest.fixture(scope="module")
async def system(
    kafka_bootstrap: str, private_postgres: LocalPostgres, stack_tmp_dir: Path
) -> AsyncIterator[System]:
    database_url = private_postgres.database_url
    await apply_migrations(database_url)
    with contextlib.suppress(TopicMismatch):
        await ensure_topics(kafka_bootstrap, TopicLayout())
    # The services must agree with the topics other tests of the session may have made.
    other = next(t for t in CATALOGUE if not t.household_partitioned and t != OPERATOR_ACTIONS)
    counts = await partition_counts(kafka_bootstrap, [HOUSEHOLD_REGISTRY.name, other.name])
    logs = Path(tempfile.mkdtemp(prefix="auth-", dir=stack_tmp_dir))
    run = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "SHOUWANG_HOME": str(logs / "home"),
        "SHOUWANG_PARTITIONS": str(counts[HOUSEHOLD_REGISTRY.name]),
        "SHOUWANG_OTHER_PARTITIONS": str(counts[other.name]),
        "SHOUWANG_MONITORING_APP_ID": f"auth-monitoring-{run}",
        "SHOUWANG_MONITORING_CLOCK": "event",
        "SHOUWANG_SUPPORT_APP_ID": f"auth-support-{run}",
        "SHOUWANG_PROJECTOR_GROUP": f"auth-projector-{run}",
    }
    env.pop("SHOUWANG_BIND_HOST", None)  # the default a user gets: loopback
    ports = dict(zip(COMMANDS, free_ports(len(COMMANDS)), strict=True))
    for name, (_, variable) in COMMANDS.items():
        env[variable] = str(ports[name])
    household = f"H-auth-{run}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        event_type, record = registry(household, at("2020-01-02"), township=TOWNSHIP)
        await producer.send_and_wait(
            HOUSEHOLD_REGISTRY.name,
            key=household.encode(),
            value=CODEC.encode(event_type, record),
        )
    finally:
        await producer.stop()
    processes = start_services(env, logs)
    running = System(env, ports, processes, logs, private_postgres, household)
    try:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
        try:
            store = PostgresTokenStore(pool)
            for role, token in {
                "operator": new_token("operator", "op-auth"),
                "cadre": new_token("cadre", "cadre-auth", [TOWNSHIP]),
                "feed": new_token("feed", "feed-auth", [], ["HardshipReported"]),
                "reviewer": new_token("cadre", "review-auth", [TOWNSHIP], ["ReviewDecided"]),
                "reviewer_elsewhere": new_token("cadre", "review-b", [OTHER], ["ReviewDecided"]),
                "auditor": new_token("auditor", "audit-auth"),
                "auditor_elsewhere": new_token("auditor", "audit-b", [OTHER]),
                # A village service point of the household's village (tests/records.registry's)
                # and one of another village of the same township.
                "service_point": new_token(
                    "cadre", "sp-auth", [TOWNSHIP], villages=["水井村"], service_point=True
                ),
                "service_point_elsewhere": new_token(
                    "cadre", "sp-b", [TOWNSHIP], villages=["白家村"], service_point=True
                ),
            }.items():
                running.secrets[role] = f"sw_{uuid.uuid4().hex}{uuid.uuid4().hex}"
                running.tokens[role] = await store.issue(token, hash_secret(running.secrets[role]))
        finally:
            await pool.close()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:

            async def all_serving() -> bool:
                for name in COMMANDS:
                    path = "/healthz" if name in ("visits", "support-api") else "/metrics"
                    try:
                        if await status(http, "GET", running.url(name, path)) != 200:
                            return False
                    except (aiohttp.ClientError, TimeoutError):
                        return False
                return True

            await until(all_serving, 300, "every service answers its probe", running)
            # Until the monitoring worker owns partitions its table routes answer 503 (faust
            # cannot route a key yet): wait for the household's registry record to be applied.
            view = running.url("monitoring", f"/v1/households/{household}")
            operator = bearer(running.secrets["operator"])

            async def applied() -> bool:
                return await status(http, "GET", view, operator) == 200

            await until(applied, 240, "the household's registry record is applied", running)
        yield running
    finally:
        for process in processes.values():
            stop_child(process, timeout=30)


async def routes_of(system: System) -> dict[str, set[tuple[str, str]]]:
    """(method, path template) of every route of every service, from the routers of the apps
    the services' own bootstrap functions build."""
    from services.monitoring.bootstrap import parts, worker_app
    from services.readmodel.api import build_api
    from services.readmodel.bootstrap import api_dependencies, projector_app
    from services.support.bootstrap import support_worker
    from services.visits.bootstrap import wired
    from services.visits.entrypoints.http import build_app

    settings = Settings.from_env(system.env)

    def listed(router) -> set[tuple[str, str]]:
        return {(r.method, r.resource.canonical) for r in router.routes()}

    def faust_routes(app) -> set[tuple[str, str]]:
        app.web.init_server()  # what the worker does when its web server starts
        return listed(app.web.web_app.router)

    found = {}
    async with wired(
        system.env["KAFKA_BOOTSTRAP_SERVERS"], system.env["DATABASE_URL"], settings.visits
    ) as visits:
        found["visits"] = listed(build_app(visits.dependencies).router)
    async with api_dependencies(settings) as deps:
        found["support-api"] = listed(build_api(deps).router)
    found["monitoring"] = faust_routes(worker_app(parts(settings, system.env)))
    app_id = system.env["SHOUWANG_SUPPORT_APP_ID"]
    support = await asyncio.to_thread(support_worker, settings, app_id)  # it runs its own loop
    found["support"] = faust_routes(support.app)
    found["projector"] = listed(projector_app(CollectorRegistry(), {}).router)
    assert set(found) == set(COMMANDS)
    return found


def concrete(template: str, household: str) -> str:
    def value(parameter: str) -> str:
        if "household" in parameter:
            return household
        return ASSETS[0] if parameter == "{name}" else "x"  # a file the docs page names

    return re.sub(r"\{[^}]+\}", lambda m: value(m.group()), template)


READING = ("GET", "HEAD")
AUDITORS = ["auditor", "auditor_elsewhere"]


def wrong_scope(system: System, service: str, path: str, method: str) -> list[str]:
    """The issued tokens outside `path`'s scope on `service` for `method` (DOMAIN.md roles,
    tokens.py): an auditor's token reads what an operator's reads and is refused anything else."""
    if service == "visits" and path == "/v1/applications":
        # A village's: a service point's token or a village-level one (none other is issued).
        return [r for r, t in system.tokens.items() if t.villages is None]
    if service == "visits" and path.startswith("/v1/"):
        kind = BY_SLUG[path.removeprefix("/v1/").removesuffix(":batch")]
        return [r for r, t in system.tokens.items() if not t.permits_type(kind.event_type)]
    writing = [] if method in READING else AUDITORS
    points = ["service_point", "service_point_elsewhere"]  # they read nothing
    if service == "monitoring" and path.startswith("/v1/households/"):
        return ["cadre", "feed", "reviewer_elsewhere", *points, *(writing or ["auditor_elsewhere"])]
    if service == "support-api":  # its answers span every township: county-wide auditors only
        return ["cadre", "feed", "reviewer", *points, *(writing or ["auditor_elsewhere"])]
    return ["cadre", "feed", "reviewer", *points, *writing]


async def test_every_route_of_every_service_needs_a_token_of_its_scope(system: System):
    routes = await routes_of(system)
    refusals = []
    audited = {"read": 0, "refused": 0}  # guarded routes the auditor was checked on, by outcome
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        for service, found in sorted(routes.items()):
            assert found, f"{service}: no routes found"
            for method, template in sorted(found):
                url = system.url(service, concrete(template, system.household))
                anonymous = await status(http, method, url)
                if template in EXEMPT_PATHS:
                    # Served without a token; /readyz may say "not yet" (503), never 401/403.
                    ready = template == "/readyz" and anonymous == 503
                    assert anonymous == 200 or ready, (service, method, template, anonymous)
                    continue
                if anonymous != 401:
                    refusals.append(f"{service} {method} {template}: {anonymous} without a token")
                    continue
                wrong = wrong_scope(system, service, template, method)
                if not wrong:
                    refusals.append(f"{service} {method} {template}: no token is refused")
                for role in wrong:
                    got = await status(http, method, url, bearer(system.secrets[role]))
                    if got != 403:
                        refusals.append(f"{service} {method} {template}: {got} with {role}")
                if "auditor" in wrong:
                    audited["refused"] += 1
                else:  # a read an operator may make: the county-wide auditor makes it too
                    audited["read"] += 1
                    got = await status(http, method, url, bearer(system.secrets["auditor"]))
                    if got in (401, 403):
                        refusals.append(f"{service} {method} {template}: {got} with auditor")
    assert not refusals, "\n".join(refusals)
    assert audited["read"] > 0 and audited["refused"] > 0, audited
    # The ones found are the ones the processes serve (an unknown path is a 404, not a 401).
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        for service in routes:
            assert await status(http, "GET", system.url(service, "/no-such-route")) == 404
    # Every API describes itself without a token, and a browser opens its docs page.
    documented = {s for s, found in routes.items() if ("GET", "/openapi.json") in found}
    assert documented == {"visits", "support-api", "monitoring"}
    assert all(("GET", ASSET_PATH) in routes[s] for s in documented)


async def test_every_route_of_every_service_answers_unusable_bytes_and_routing_with_problems(
    system: System,
):
    """A NUL or bytes that are not UTF-8, percent-encoded in a path or a query, are a 400
    problem on every route of every service (never a 500, never a lookup of a mangled value);
    an unknown route (404) and a method a route does not take (405, with Allow) are problems
    too, on every service, also the workers' and the projector's web servers."""
    routes = await routes_of(system)
    operator = bearer(system.secrets["operator"])
    wrong = []

    async def ask(http, method: str, url: str, expected: int, service: str) -> None:
        async with http.request(method, URL(url, encoded=True), headers=operator) as r:
            body = await r.read()
            problem = r.content_type == PROBLEM_JSON and b'"status":%d' % expected in body
            if r.status != expected or not problem:
                wrong.append(f"{service} {method} {url}: {r.status} {r.content_type} {body[:80]}")
            if expected == 405 and "Allow" not in r.headers:
                wrong.append(f"{service} {method} {url}: 405 without Allow")

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        for service, found in sorted(routes.items()):
            for method, template in sorted(found):
                if method == "HEAD":
                    continue
                path = concrete(template, system.household)
                for query in ("?q=%00", "?q=%FF", "?%C3=1", "?limit=%ED%A0%80"):
                    await ask(http, method, system.url(service, path + query), 400, service)
                if "{" in template:  # a path parameter holding bad bytes
                    for bad in ("%00", "%FF%FE"):
                        bad_path = re.sub(r"\{[^}]+\}", bad, template)
                        await ask(http, method, system.url(service, bad_path), 400, service)
            await ask(http, "GET", system.url(service, "/no-such-route"), 404, service)
            await ask(http, "DELETE", system.url(service, "/metrics"), 405, service)
    assert not wrong, "\n".join(wrong)


def beyond_maximum(document: dict, schema: dict, value, where: str = "") -> list[str]:
    """Where an answer holds more items than its document's schema allows (maxItems)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return beyond_maximum(document, document["components"]["schemas"][name], value, where)
    found = []
    for branch in schema.get("anyOf", ()) + schema.get("allOf", ()):
        found += beyond_maximum(document, branch, value, where)
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            found.append(f"{where}: {len(value)} items > {schema['maxItems']}")
        for index, item in enumerate(value):
            found += beyond_maximum(document, schema.get("items", {}), item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                found += beyond_maximum(document, sub, value[name], f"{where}.{name}")
    return found


async def test_every_answer_of_every_documented_route_is_within_its_maximum(system: System):
    """Bounded answers: each GET route of each API, asked as an operator (also with the
    largest page its document allows), answers no list longer than its document's maxItems
    (the unit test of the documents checks that every list has one)."""
    wrong = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        for service in ("visits", "support-api", "monitoring"):
            async with http.get(system.url(service, "/openapi.json")) as r:
                document = await r.json()
            for template, operations in document["paths"].items():
                operation = operations.get("get")
                if operation is None or not template.startswith("/v1/"):
                    continue
                names = {p["name"] for p in operation.get("parameters", ())}
                query = "?limit=1000" if "limit" in names else ""
                url = system.url(service, concrete(template, system.household) + query)
                async with http.get(url, headers=bearer(system.secrets["operator"])) as r:
                    if r.status != 200:
                        continue  # a 404 of a made-up id is a problem, bounded by its schema
                    answer = await r.json()
                content = operation["responses"]["200"]["content"]["application/json"]
                wrong += beyond_maximum(document, content["schema"], answer, f"{service}{template}")
    assert not wrong, wrong


async def test_the_docs_files_route_opens_only_the_bundles_files(system: System):
    """The exemption is the route /docs/static/{name}, whose handler serves the files the page
    names: any other name, also one that climbs out of the bundle, is a 404 problem."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        for service in ("visits", "support-api", "monitoring"):
            for name in ("swagger-editor.js", "..%2F__init__.py", "..%2F..%2F..%2Fpyproject.toml"):
                url = URL(system.url(service, f"/docs/static/{name}"), encoded=True)
                async with http.get(url, allow_redirects=False) as response:
                    assert response.status == 404, (service, name, response.status)
                    assert response.content_type == PROBLEM_JSON, (service, name)
                    body = await response.json(content_type=None)
                    assert body["type"] == problem_type("not_found"), (service, name, body)


async def test_a_household_applies_at_its_villages_service_point_only(system: System):
    """The self-report route with a body: 202 from the household's village's service point
    (once the projector has its registry record), 403 naming household_id from another
    village's, 403 for an operator, 401 without a token."""
    url = system.url("visits", "/v1/applications")

    def application() -> dict:
        return {
            "event_id": str(uuid.uuid4()),
            "household_id": system.household,
            "occurred_at": "2020-05-16T09:00:00+08:00",
            "reason": "因病支出大，申请纳入监测",
        }

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:

        async def post(role: str | None) -> tuple[int, dict]:
            headers = bearer(system.secrets[role]) if role else {}
            async with http.post(url, json=application(), headers=headers) as r:
                return r.status, await r.json(content_type=None)

        async def accepted() -> bool:
            return (await post("service_point"))[0] == 202

        await until(accepted, 60, "the service point's application accepted", system)
        status_, answer = await post("service_point_elsewhere")
        assert status_ == 403 and answer["errors"][0]["field"] == "household_id", answer
        assert "'水井村'" in answer["errors"][0]["message"]
        assert (await post("operator"))[0] == 403
        assert (await post(None))[0] == 401


async def test_a_household_is_read_by_operators_auditors_and_the_reviewers_of_its_township(
    system,
):
    url = system.url("monitoring", f"/v1/households/{system.household}")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        assert await status(http, "GET", url, bearer(system.secrets["operator"])) == 200
        async with http.get(url, headers=bearer(system.secrets["reviewer"])) as r:
            assert r.status == 200 and (await r.json())["registry"]["township"] == TOWNSHIP
        assert await status(http, "GET", url, bearer(system.secrets["auditor"])) == 200
        for role in ("reviewer_elsewhere", "auditor_elsewhere", "cadre", "feed"):
            assert await status(http, "GET", url, bearer(system.secrets[role])) == 403, role
        # A reviewer does not learn whether a household exists outside its townships.
        missing = system.url("monitoring", "/v1/households/H-nowhere")
        assert await status(http, "GET", missing, bearer(system.secrets["reviewer"])) == 403
        assert await status(http, "GET", missing, bearer(system.secrets["operator"])) == 404
        assert await status(http, "GET", missing, bearer(system.secrets["auditor"])) == 404
        narrowed = bearer(system.secrets["auditor_elsewhere"])
        assert await status(http, "GET", missing, narrowed) == 403


def shouwang(system: System, *argv: str) -> subprocess.CompletedProcess:
    """The real CLI, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *argv],
        cwd=ROOT,
        env=system.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def issued(system: System, holder: str) -> tuple[str, str]:
    done = await asyncio.to_thread(
        shouwang, system, "tokens", "issue", "--kind", "operator", "--holder", holder
    )
    assert done.returncode == 0, done.stderr
    secret = re.search(r"^token \(shown once[^:]*: (\S+)$", done.stdout, re.M).group(1)
    return done.stdout.split()[0], secret


def uses(system: System) -> dict[str, tuple[str, str]]:
    """One request per token-checking service: a write on the visits API (a hardship report),
    reads elsewhere."""
    return {
        "visits": ("POST", system.url("visits", "/v1/hardships")),
        "support-api": ("GET", system.url("support-api", "/v1/measures/counts")),
        "monitoring": ("GET", system.url("monitoring", f"/v1/households/{system.household}")),
        "support": ("GET", system.url("support", "/")),
    }


async def answers(system: System, http: aiohttp.ClientSession, secret: str) -> dict[str, int]:
    from tests.visits_samples import sample

    async def ask(method: str, url: str) -> int:
        body = sample("hardships", household_id=system.household) if method == "POST" else None
        async with http.request(method, url, json=body, headers=bearer(secret)) as r:
            await r.read()
            return r.status

    requests = uses(system)
    statuses = await asyncio.gather(*(ask(m, u) for m, u in requests.values()))
    return dict(zip(requests, statuses, strict=True))


async def test_a_revoked_token_is_refused_by_every_service_a_second_later(system):
    token_id, secret = await issued(system, f"op-revoke-{uuid.uuid4().hex[:6]}")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        before = await answers(system, http, secret)  # now cached by every service
        assert all(s not in (401, 403, 503) for s in before.values()), before
        done = await asyncio.to_thread(
            shouwang, system, "tokens", "revoke", token_id, "--reason", "phone lost"
        )
        assert done.returncode == 0, done.stderr
        await asyncio.sleep(1.0)  # the promise under test: one second after the command
        after = await answers(system, http, secret)
    assert after == dict.fromkeys(TOKEN_CHECKING, 401), after


async def test_revocation_holds_while_postgresql_is_down_and_unknown_tokens_fail_closed(system):
    token_id, secret = await issued(system, f"op-outage-{uuid.uuid4().hex[:6]}")
    kept, kept_secret = system.tokens["operator"], system.secrets["operator"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        before = await answers(system, http, secret)
        assert all(s not in (401, 403, 503) for s in before.values()), before
        await answers(system, http, kept_secret)  # cached too
        system.postgres.stop()
        done = await asyncio.to_thread(
            shouwang, system, "tokens", "revoke", token_id, "--reason", "phone lost"
        )
        assert done.returncode == 4, done.stderr  # in force; the table is behind
        assert "revoked on operator.actions" in done.stderr
        await asyncio.sleep(1.0)  # the promise under test: one second after the command
        after = await answers(system, http, secret)
        assert after == dict.fromkeys(TOKEN_CHECKING, 401), after
        # A token not revoked still works where the answer needs no database...
        view = system.url("monitoring", f"/v1/households/{system.household}")
        assert await status(http, "GET", view, bearer(kept_secret)) == 200, kept.token_id
        # ...and one never seen cannot be checked: refused (503), never waved through.
        stranger = f"sw_{uuid.uuid4().hex}"
        assert await status(http, "GET", view, bearer(stranger)) == 503
