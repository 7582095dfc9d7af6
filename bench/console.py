"""B9: the console's pages at county scale, p50 and p95 over N requests of a logged-in session.

The read model is filled the way the running system fills it, without its workers' start-up:
the county's events go through monitoring's pure step (`apply_record`, event clock) and support's
(`household_step`, `pool_step`, as `support.entrypoints.app` calls them), and every record
(inputs, assessments, support's recommendations and cancellations) through
`Projector.apply` into a database of its own; the inputs are also produced to Kafka, which the
history page reads. Then `shouwang console` runs as a process (its defaults), a session logs in
as each role through the login form, and each page is fetched sequentially: a few warm-up
requests, then N timed ones (household pages rotate over many households). The baseline is the
same server's `/healthz` (no database, no template): the floor of one request here.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import asyncpg
from prometheus_client import CollectorRegistry

from bench.data import Dataset, Record, preload
from bench.report import Figure
from services.contract.catalogue import load_catalogue
from services.contract.codec import Codec
from services.contract.inputs import MONITORING_EXPECTED, SUPPORT_INPUTS
from services.contract.rejection import Rejected
from services.contract.topics import CADRES, RISK, SUPPORT_MEASURES
from services.monitoring.adapters import avro_translation as monitoring_avro
from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.service import Position, apply_record
from services.platform.auth.tokens import PostgresTokenStore, hash_secret, new_token
from services.platform.kafka.log import KafkaLog
from services.platform.localstack.ports import free_ports
from services.platform.localstack.processes import stop_child, tail
from services.platform.postgres.migrate import apply_migrations
from services.readmodel.metrics import ProjectorMetrics
from services.readmodel.projection import TOPICS
from services.readmodel.projector import Projector, ProjectorConfig, write_pools
from services.support import service as support
from services.support.adapters import avro_translation as support_avro
from services.support.domain.matcher import Need, PoolState

TARGET_MS = 300.0
WARM_UP = 3
BATCH = 2000
DATABASE = "bench_console"
NOW = datetime(2021, 6, 30, tzinfo=UTC)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ROOT = Path(__file__).resolve().parents[1]


def pipeline_records(data: Dataset, codec: Codec) -> tuple[list[Record], dict[str, int]]:
    """Every record the projector reads: the county's inputs, monitoring's assessments and
    support's steps, each made by the services' own pure code in log order."""
    policies = load_policies()
    catalogue = load_catalogue()
    pairing = support.pairing_pool(catalogue)
    support_topics = {t.name for t in SUPPORT_INPUTS}
    rows: dict = {}
    profiles: dict = {}
    pools: dict[str, PoolState] = {}
    out: list[tuple[str, str, dict]] = []  # (topic, key, record) made here
    clock = iter(NOW + timedelta(milliseconds=i) for i in range(10**9))

    def to_pool(instance: str, command) -> None:
        try:
            capacity = support.pool_capacity(catalogue, instance)
        except Rejected:
            return
        state, decisions = support.pool_step(pools.get(instance) or PoolState(instance),
                                             command, capacity)  # fmt: skip
        pools[instance] = state
        for decision in decisions:
            record = support_avro.recommended_record(decision, next(clock))
            out.append((SUPPORT_MEASURES.name, record["household_id"], record))

    def to_support(event_type: str, record: dict) -> None:
        try:
            fact = support.household_fact(event_type, record)
        except Rejected:
            return
        hid = record["household_id"]
        outcome = support.household_step(profiles.get(hid), hid, fact, catalogue)
        profiles[hid] = outcome.profile
        for effect in outcome.effects:
            if isinstance(effect, Need):
                step = support_avro.recommended_record(effect, next(clock))
                out.append((SUPPORT_MEASURES.name, hid, step))
            else:
                to_pool(effect.pool, effect.command)
        for cancellation in outcome.cancellations:
            step = support_avro.cancelled_record(cancellation, next(clock))
            out.append((SUPPORT_MEASURES.name, hid, step))

    for offset, (event, frame) in enumerate(zip(data.events, data.frames, strict=True)):
        topic = event.topic.name
        if topic == CADRES.name:
            sent = support.cadre_step(support.cadre_fact(event.record), catalogue, pairing)
            to_pool(sent.pool, sent.command)
        if topic in support_topics:
            to_support(event.event_type, event.record)
        if topic in MONITORING_EXPECTED:
            fact = monitoring_avro.event_from(event.event_type, event.record)
            hid = fact.household_id
            outcome = apply_record(rows.get(hid), fact, Position(topic, 0, offset), frame,
                                   policies, NOW, event_clock=True)  # fmt: skip
            rows[hid] = outcome.row
            if outcome.emit is not None:
                out.append((RISK.name, hid, outcome.emit))
                to_support(RISK.event_type, outcome.emit)

    records = data.records({t.name for t in TOPICS})
    offsets = Counter(r.topic for r in records)
    for topic, key, record in out:
        frame = codec.encode(codec_type(topic), record)
        ms = int(record["recorded_at"].timestamp() * 1000)
        records.append(Record(topic, 0, offsets[topic], ms, key.encode(), frame))
        offsets[topic] += 1
    made = Counter(topic for topic, _, _ in out)
    waiting = sum(1 for t, _, r in out if t == SUPPORT_MEASURES.name and r["waiting_for"])
    return records, {**made, "waiting steps": waiting}


async def as_produced(bootstrap: str, records: list[Record], inputs: set[str]) -> list[Record]:
    """`records` with those of the `inputs` topics (preloaded) as the broker holds them: their
    real partitions and offsets, which the projector stores (household_records) and the history
    page then fetches."""
    produced = {r.topic for r in records} & inputs
    logged = [
        Record(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value)
        async for batch in KafkaLog(bootstrap, sorted(produced)).batches()
        for r in batch
    ]
    if len(logged) != sum(1 for r in records if r.topic in produced):
        raise RuntimeError("the broker does not hold every input produced")
    return logged + [r for r in records if r.topic not in produced]


def codec_type(topic: str) -> str:
    return RISK.event_type if topic == RISK.name else SUPPORT_MEASURES.event_type


async def fill(database_url: str, bootstrap: str, records: list[Record], codec: Codec) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await apply_migrations(conn)
        await write_pools(conn, load_catalogue())
        config = ProjectorConfig(bootstrap, database_url, batch_size=BATCH)
        projector = Projector(config, codec, ProjectorMetrics(CollectorRegistry()))
        applied = 0
        for i in range(0, len(records), BATCH):
            applied += await projector.apply(conn, records[i : i + BATCH])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    if applied != len(records):
        raise RuntimeError(f"projector applied {applied} of {len(records)} records")


async def own_database(server_url: str) -> str:
    """A database of B9's own on the stack's server (B5 fills the default one)."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{DATABASE}"))


async def tokens(database_url: str, township: str, cadre: str) -> dict[str, str]:
    """A secret per role, issued into the token table as `shouwang tokens issue` does."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    secrets = {}
    try:
        store = PostgresTokenStore(pool)
        for role, token in {
            "operator": new_token("operator", "bench-operator"),
            "reviewer": new_token("cadre", "bench-reviewer", [township], ["ReviewDecided"]),
            "cadre": new_token("cadre", cadre, [township]),
        }.items():
            secrets[role] = f"sw_{uuid.uuid4().hex}{uuid.uuid4().hex}"
            await store.issue(token, hash_secret(secrets[role]))
    finally:
        await pool.close()
    return secrets


async def page_choices(database_url: str, sample: int) -> dict:
    """What the timed pages ask for: the busiest township, queue households, the pool with the
    longest queue, the cadre answering for the most households."""
    conn = await asyncpg.connect(database_url)
    try:
        township = await conn.fetchval(
            "SELECT township FROM households GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        )
        flagged = [
            r["household_id"]
            for r in await conn.fetch(
                """SELECT household_id FROM households
                WHERE workflow_status IN ('flagged', 'verifying', 'monitored')
                ORDER BY md5(household_id) LIMIT $1""",
                sample,
            )
        ]
        pool = (
            await conn.fetchval(
                """SELECT waiting_for FROM measures WHERE status = 'waiting'
            GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"""
            )
            or "county:public-welfare-jobs"
        )
        cadre = await conn.fetchval(
            """SELECT responsible_cadre_id FROM households WHERE responsible_cadre_id IS NOT NULL
            GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"""
        ) or await conn.fetchval(
            "SELECT cadre_id FROM measures WHERE cadre_id IS NOT NULL "
            "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        )
        counts = {
            "households": await conn.fetchval("SELECT count(*) FROM households"),
            "assessments": await conn.fetchval("SELECT count(*) FROM assessments"),
            "measures": await conn.fetchval("SELECT count(*) FROM measures"),
            "waiting": await conn.fetchval("SELECT count(*) FROM measures WHERE status='waiting'"),
            "problems": await conn.fetchval("SELECT count(*) FROM problems"),
        }
    finally:
        await conn.close()
    return {"township": township, "households": flagged, "pool": pool, "cadre": cadre,
            "counts": counts}  # fmt: skip


def start_console(env: dict[str, str], logs: Path) -> subprocess.Popen:
    with (logs / "console").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "console"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def ready(base: str, process: subprocess.Popen, logs: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"console exited {process.returncode}:\n{tail(logs / 'console')}"
                )
            try:
                async with http.get(base + "/readyz") as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"console not ready in {seconds:.0f} s")
            await asyncio.sleep(0.3)


async def logged_in(base: str, secret: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=60)
    )
    async with http.get(base + "/login") as response:
        csrf = CSRF.search(await response.text()).group(1)
    async with http.post(
        base + "/login", data={"token": secret, "csrf_token": csrf}, allow_redirects=False
    ) as response:
        if response.status != 303:
            await http.close()
            raise RuntimeError(f"login answered {response.status}")
    return http


async def timed(
    http: aiohttp.ClientSession, base: str, paths: Iterable[str], n: int, headers=None
) -> list[float]:
    """Milliseconds of each of `n` requests (after WARM_UP more), cycling through `paths`;
    every answer must be 200 and is read to its end."""
    cycle = list(paths)
    times = []
    for i in range(WARM_UP + n):
        path = cycle[i % len(cycle)]
        started = time.perf_counter()
        async with http.get(base + path, headers=headers, allow_redirects=False) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status}")
        if i >= WARM_UP:
            times.append((time.perf_counter() - started) * 1000)
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(root: Path, data: Dataset, codec: Codec, requests: int) -> list[Figure]:
    """B9 on a broker and PostgreSQL of its own under `root` (stopped on the way out)."""
    from bench.stack import Stack

    records, made = pipeline_records(data, codec)
    with Stack(root, postgres=True) as stack:
        return asyncio.run(_measure(stack, root, data, codec, requests, records, made))


async def _measure(stack, root, data, codec, requests, records, made) -> list[Figure]:
    await preload(stack.bootstrap, data, codec)  # the history page reads the inputs
    records = await as_produced(stack.bootstrap, records, {e.topic.name for e in data.events})
    database_url = await own_database(stack.database_url)
    started = time.perf_counter()
    await fill(database_url, stack.bootstrap, records, codec)
    fill_s = time.perf_counter() - started
    choices = await page_choices(database_url, sample=max(requests, 20))
    secrets = await tokens(database_url, choices["township"], choices["cadre"])
    logs = Path(tempfile.mkdtemp(prefix="console-", dir=root))
    (port,) = free_ports(1)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SHOUWANG_CONSOLE_", "SHOUWANG_PERSONAL_MASTER"))
    }
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=stack.bootstrap,
        DATABASE_URL=database_url,
        SHOUWANG_HOME=str(logs / "home"),
        SHOUWANG_CONSOLE_PORT=str(port),
    )
    base = f"http://127.0.0.1:{port}"
    process = start_console(env, logs)
    try:
        await ready(base, process, logs)
        return await pages(base, choices, secrets, requests, made, fill_s, len(records))
    finally:
        stop_child(process, timeout=30)


async def pages(base, choices, secrets, n, made, fill_s, projected) -> list[Figure]:
    town = quote(choices["township"])
    households = choices["households"]
    pool = quote(choices["pool"], safe="")
    operator = await logged_in(base, secrets["operator"])
    reviewer = await logged_in(base, secrets["reviewer"])
    cadre = await logged_in(base, secrets["cadre"])
    bearer = {"Authorization": f"Bearer {secrets['cadre']}"}
    try:
        floor = await timed(operator, base, ["/healthz"], n)
        runs = [
            ("county overview (operator)", operator, ["/overview"]),
            ("overview of one township", operator, [f"/overview?township={town}"]),
            ("review queue (operator, whole county)", operator, ["/queue"]),
            ("review queue (township reviewer)", reviewer, ["/queue"]),
            ("household page", operator, [f"/households/{h}" for h in households]),
            ("household history as of a day (reads Kafka)", operator,
             [f"/households/{h}/history?as_of=2021-01-31" for h in households]),
            ("measures and pools", operator, ["/pools"]),
            ("a pool's queue (the longest)", operator, [f"/pools/{pool}"]),
            ("cadre work list", cadre, ["/work"]),
        ]  # fmt: skip
        figures = []
        for what, http, paths in runs:
            times = await timed(http, base, paths, n)
            figures.append(figure(what, times, floor))
        times = await timed(cadre, base, ["/api/v1/worklist"], n, headers=bearer)
        figures.append(figure("sync-down work list (cadre, JSON)", times, floor))
    finally:
        for http in (operator, reviewer, cadre):
            await http.close()
    counts = ", ".join(f"{k} {v:,}" for k, v in choices["counts"].items())
    figures[0].note = (
        f"read model: {counts}; filled in {fill_s:.0f} s from {projected:,} records "
        f"(assessments {made.get(RISK.name, 0):,}, support steps "
        f"{made.get(SUPPORT_MEASURES.name, 0):,}); " + figures[0].note
    )
    return figures


def figure(what: str, times: list[float], floor: list[float]) -> Figure:
    p50, p95 = statistics.median(times), percentile(times, 0.95)
    return Figure(
        "B9",
        f"console: {what}: p50 {p50:.0f} ms, p95",
        p95,
        "ms",
        "the same server's /healthz, p95",
        percentile(floor, 0.95),
        f"p95 <= {TARGET_MS:.0f} ms",
        p95 <= TARGET_MS,
        len(times),
        sum(times) / 1000,
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(times):.0f} ms",
    )
