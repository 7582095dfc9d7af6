"""The console as it runs: `shouwang visits` and `shouwang console` as child processes on the
session's broker and PostgreSQL, with households of two fresh townships in the read model and a
token per role (a village committee's too, for one village of town A). Used by the console's
integration tests and its browser tests."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer

from services.contract.catalogue import load_catalogue
from services.contract.codec import Codec
from services.contract.topics import (
    CATALOGUE,
    HOUSEHOLD_REGISTRY,
    OPERATOR_ACTIONS,
    REVIEWS,
    TopicLayout,
)
from services.platform.auth.tokens import PostgresTokenStore, hash_secret, new_token
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from services.platform.localstack.ports import free_ports
from services.platform.localstack.processes import stop_child, tail
from services.platform.postgres.migrate import apply_migrations
from services.readmodel.projector import write_pools
from services.tools.demo.catch_up import partition_counts
from tests.visits_samples import sample

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"visits": "SHOUWANG_VISITS_PORT", "console": "SHOUWANG_CONSOLE_PORT"}


@dataclass
class ConsoleSystem:
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen]
    logs: Path
    bootstrap: str
    town_a: str
    town_b: str
    households: dict[str, str]  # name -> household id
    # the village of town A whose committee holds the "village" token: "later" lives there,
    # the other households of town A in village V1
    village: str = "水井村"
    secrets: dict[str, str] = field(default_factory=dict)
    holders: dict[str, str] = field(default_factory=dict)
    token_ids: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    database_url: str = ""

    def visits_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.ports['visits']}{path}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports['console']}"

    def url(self, path: str) -> str:
        return self.base + path

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(
                    f"{name} exited with {process.returncode}:\n{tail(self.logs / name)}"
                )

    async def registered_household(self, prefix: str) -> dict:
        """A household of town A registered through the visits API with its personal data (the
        API seals it), and its read-model row as the registry projection would leave it; the
        registry record posted."""
        household = f"{prefix}-{uuid.uuid4().hex[:8]}"
        body = sample("households", household_id=household, township=self.town_a)
        connection = await asyncpg.connect(self.database_url)
        try:
            await connection.execute(
                "INSERT INTO households (household_id, township) VALUES ($1, $2)",
                household,
                self.town_a,
            )
        finally:
            await connection.close()
        async with aiohttp.ClientSession() as http:
            async with http.post(
                self.visits_url("/v1/households"),
                json=body,
                headers={"Authorization": f"Bearer {self.secrets['operator']}"},
            ) as response:
                assert response.status == 202, await response.text()
        return body

    async def review_record(self, event_id: str, seconds: float = 60.0) -> dict:
        """The ReviewDecided record with `event_id` on household.reviews (fails after
        `seconds`): proof that a decision reached the log through the visits API."""
        codec = Codec.default()
        consumer = AIOKafkaConsumer(
            REVIEWS.name,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            async with asyncio.timeout(seconds):
                while True:
                    batch = await consumer.getmany(timeout_ms=500)
                    for messages in batch.values():
                        for message in messages:
                            record = codec.decode(message.value).record
                            if str(record["event_id"]) == event_id:
                                return record
        finally:
            await consumer.stop()


async def _seed(pool: asyncpg.Pool, households: dict[str, tuple[str, str, str, int, bool]]) -> None:
    """Households as the projector leaves them: the row and its assessment history. Each value
    is (township, workflow, category, days since the risk cycle began, decision overdue)."""
    now = dt.datetime.now(dt.UTC)
    for household_id, (township, workflow, category, age, overdue) in households.items():
        started = now - dt.timedelta(days=age)
        reasons = json.dumps([{"code": "serious_illness", "event_ids": [str(uuid.uuid4())]}])
        await pool.execute(
            """INSERT INTO households (household_id, township, village, category, level,
                   reasons, workflow_status, policy_version, assessed_at, overdue)
               VALUES ($1, $2, 'V1', $3, 'HIGH', $4::jsonb, $5, 'dianjiang-2020', $6, $7::jsonb)""",
            household_id,
            township,
            category,
            reasons,
            workflow,
            started,
            json.dumps(["decision_overdue"] if overdue else []),
        )
        for offset, (cat, level) in enumerate([(None, "NONE"), (category, "HIGH")]):
            await pool.execute(
                """INSERT INTO assessments (assessment_id, household_id, category, level,
                       reasons, policy_version, assessed_at)
                   VALUES ($1, $2, $3, $4, '[]'::jsonb, 'dianjiang-2020', $5)""",
                uuid.uuid4(),
                household_id,
                cat,
                level,
                started - dt.timedelta(days=30) if offset == 0 else started,
            )


def _start(env: dict[str, str], logs: Path) -> dict[str, subprocess.Popen]:
    processes = {}
    for name in COMMANDS:
        with (logs / name).open("wb") as log:  # the child keeps its own descriptor
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", name],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    return processes


async def _seed_cadre_work(pool: asyncpg.Pool, cadre: str, town: str, ids: dict[str, str]) -> None:
    """A cadre's households (one as responsible person, one by a pairing measure) and its
    problems, stamped an hour ago so a sync since a later cursor sees only what changes."""
    now = dt.datetime.now(dt.UTC)
    hour_ago = now - dt.timedelta(hours=1)
    for name, last_visit, responsible in (
        ("visit_overdue", now - dt.timedelta(days=40), cadre),
        ("visit_later", now - dt.timedelta(days=10), None),
    ):
        await pool.execute(
            """INSERT INTO households (household_id, township, category, level, workflow_status,
                   policy_version, last_visit_at, responsible_cadre_id, updated_at)
               VALUES ($1, $2, 'MARGINAL', 'MEDIUM', 'monitored', 'dianjiang-2020', $3, $4, $5)""",
            ids[name],
            town,
            last_visit,
            responsible,
            hour_ago,
        )
    await pool.execute(
        """INSERT INTO measures (measure_id, household_id, type, status, cadre_id, updated_at)
           VALUES ($1, $2, 'PAIRING', 'accepted', $3, $4)""",
        f"M-{ids['visit_later']}",
        ids["visit_later"],
        cadre,
        hour_ago,
    )
    for problem, status in (("open", "open"), ("done", "rectified")):
        await pool.execute(
            """INSERT INTO problems (problem_id, household_id, check_item, status, responsible,
                   found_at, updated_at)
               VALUES ($1, $2, 'water', $3, $4, $5, $5)""",
            f"P-{ids['visit_overdue']}-{problem}",
            ids["visit_overdue"],
            status,
            cadre,
            hour_ago,
        )


# A township pool and a county pool of the default catalogue, as the measures page shows them.
TOWNSHIP_POOL = "industry-fruit-seedlings"
COUNTY_POOL = "workshop-jobs"


async def _seed_pools(pool: asyncpg.Pool, town_a: str, town_b: str, ids: dict[str, str]) -> None:
    """The catalogue's pools as the projector writes them at start, and measures as support's
    steps leave them: in town A's seedling pool one household holds a place and three wait (in
    the order they were queued: overdue, soon, later); in the county's workshop jobs a household
    of each township waits."""
    async with pool.acquire() as connection:
        await write_pools(connection, load_catalogue())
    now = dt.datetime.now(dt.UTC)
    town_instance = f"township:{town_a}:{TOWNSHIP_POOL}"
    county_instance = f"county:{COUNTY_POOL}"
    waiting = [
        (town_instance, "industry.fruit-seedlings", ids["overdue"]),
        (town_instance, "industry.fruit-seedlings", ids["soon"]),
        (town_instance, "industry.fruit-seedlings", ids["later"]),
        (county_instance, "employment.workshop-job", ids["soon"]),
        (county_instance, "employment.workshop-job", ids["elsewhere"]),
    ]
    for n, (instance, entry, household) in enumerate(waiting):
        measure_id = f"M-{household}-{entry}"
        triggered = await pool.fetchval(
            "SELECT max(assessed_at) FROM assessments WHERE household_id = $1", household
        )
        await pool.execute(
            """INSERT INTO measures (measure_id, household_id, type, status, status_rank, pool,
                   catalogue_id, waiting_for, reasons, recommended_at, status_changed_at)
               VALUES ($1, $2, $3, 'waiting', 1, $4, $5, $4, $6::jsonb, $7, $7)""",
            measure_id,
            household,
            "INDUSTRY" if entry.startswith("industry") else "WORKSHOP_JOB",
            instance,
            entry,
            json.dumps([f"rule for {entry}", f"waiting for capacity in {instance}"]),
            triggered,
        )
        await pool.execute(
            """INSERT INTO measure_steps (event_id, measure_id, household_id, step, waiting_for,
                   source_topic, occurred_at, recorded_at)
               VALUES ($1, $2, $3, 'RECOMMENDED', $4, 'support.measures', $5, $6)""",
            uuid.uuid4(),
            measure_id,
            household,
            instance,
            triggered,
            now - dt.timedelta(hours=10 - n),
        )
    await pool.execute(
        """INSERT INTO measures (measure_id, household_id, type, status, status_rank, pool,
               catalogue_id, recommended_at, status_changed_at)
           VALUES ($1, $2, 'INDUSTRY', 'delivered', 4, $3, 'industry.fruit-seedlings', $4, $4)""",
        f"M-{ids['visit_overdue']}-seedlings",
        ids["visit_overdue"],
        town_instance,
        now - dt.timedelta(days=20),
    )


async def _seed_procedure(pool: asyncpg.Pool, household_id: str) -> None:
    """The household's entry procedure as the projector leaves it: in public notice (two days
    in, four days left), its objection recorded, the township's review due nine days from now;
    the village's deliberation that passed it (its notice step not projected yet); and a
    procedure exception an earlier assessment recorded."""
    today = dt.datetime.now(dt.UTC).date()
    await pool.execute(
        """INSERT INTO household_procedures (household_id, assessed_at, assessment_id,
               direction, awaiting, since, due, notice_start, notice_ends, objections, steps)
           VALUES ($1, now(), $2, 'entry', 'notice_running', now() - interval '2 days', $3, $4,
                   $5, 1, $6::jsonb)""",
        household_id,
        uuid.uuid4(),
        today + dt.timedelta(days=9),
        today - dt.timedelta(days=2),
        today + dt.timedelta(days=4),
        json.dumps([f"{household_id}-deliberation", f"{household_id}-notice"]),
    )
    await pool.execute(
        """INSERT INTO review_steps (event_id, household_id, decision, outcome, body,
               approving_level, actor, occurred_at, recorded_at)
           VALUES ($1, $2, 'VILLAGE_DELIBERATION', 'PASSED', 'VILLAGE', 'VILLAGE',
                   'village-shuijing', now() - interval '3 days', now() - interval '3 days')""",
        f"{household_id}-deliberation",
        household_id,
    )
    await pool.execute(
        """INSERT INTO procedure_exceptions (exception_id, household_id, decision_event_id, code,
               message, event_ids, assessment_id, first_seen_at)
           VALUES ($1, $2, $3, 'procedure_exception', $4, '[]'::jsonb, $5, now())""",
        f"{household_id}/{household_id}-deliberation/procedure_exception",
        household_id,
        f"{household_id}-deliberation",
        "APPLY skipped: START_VERIFICATION by county exception",
        uuid.uuid4(),
    )


@contextlib.asynccontextmanager
async def running_console(
    kafka_bootstrap: str, database_url: str, parent: Path
) -> AsyncIterator[ConsoleSystem]:
    await apply_migrations(database_url)
    with contextlib.suppress(TopicMismatch):
        await ensure_topics(kafka_bootstrap, TopicLayout())
    other = next(t for t in CATALOGUE if not t.household_partitioned and t != OPERATOR_ACTIONS)
    counts = await partition_counts(kafka_bootstrap, [HOUSEHOLD_REGISTRY.name, other.name])
    logs = Path(tempfile.mkdtemp(prefix="console-", dir=parent))
    run = uuid.uuid4().hex[:6]
    town_a, town_b = f"鹤游镇-{run}", f"大石乡-{run}"
    households = {
        "overdue": f"H-con-{run}-1",
        "soon": f"H-con-{run}-2",
        "later": f"H-con-{run}-3",
        "elsewhere": f"H-con-{run}-4",
        "visit_overdue": f"H-con-{run}-5",
        "visit_later": f"H-con-{run}-6",
        # monitored for 200 days, its exit awaiting the county (no last day set), in a township
        # of its own (the other tests' counts of towns A and B stay as they are)
        "exit": f"H-con-{run}-7",
    }
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    system = ConsoleSystem({}, {}, logs, kafka_bootstrap, town_a, town_b, households)
    system.database_url = database_url
    try:
        await _seed(
            pool,
            {
                households["overdue"]: (town_a, "flagged", "MARGINAL", 20, True),
                households["soon"]: (town_a, "flagged", "MARGINAL", 10, False),
                households["later"]: (town_a, "verifying", "UNSTABLE_LIFTED", 3, False),
                households["elsewhere"]: (town_b, "flagged", "MARGINAL", 5, False),
                households["exit"]: (
                    f"{town_a}-exit",
                    "elimination_proposed",
                    "MARGINAL",
                    200,
                    False,
                ),
            },
        )
        await pool.execute(
            """INSERT INTO household_procedures (household_id, assessed_at, assessment_id,
                   direction, awaiting, since)
               VALUES ($1, now(), $2, 'exit', 'county_approval', now() - interval '1 day')""",
            households["exit"],
            uuid.uuid4(),
        )
        await _seed_procedure(pool, households["later"])
        await pool.execute(
            "UPDATE households SET village = $2 WHERE household_id = $1",
            households["later"],
            system.village,
        )
        await _seed_cadre_work(pool, f"cadre-{run}", town_a, households)
        await _seed_pools(pool, town_a, town_b, households)
        store = PostgresTokenStore(pool)
        for role, token in {
            "operator": new_token("operator", f"op-{run}"),
            "reviewer": new_token("cadre", f"review-a-{run}", [town_a], ["ReviewDecided"]),
            "reviewer_b": new_token("cadre", f"review-b-{run}", [town_b], ["ReviewDecided"]),
            "cadre": new_token("cadre", f"cadre-{run}", [town_a]),
            "village": new_token(
                "cadre", f"village-a-{run}", [town_a], ["ReviewDecided"], villages=[system.village]
            ),
            "feed": new_token("feed", f"feed-{run}", [], ["HardshipReported"]),
            "revoked": new_token("operator", f"op-revoked-{run}"),
            "auditor": new_token("auditor", f"audit-{run}"),
            "auditor_b": new_token("auditor", f"audit-b-{run}", [town_b]),
        }.items():
            system.secrets[role] = f"sw_{uuid.uuid4().hex}{uuid.uuid4().hex}"
            system.holders[role] = token.holder
            issued = await store.issue(token, hash_secret(system.secrets[role]))
            system.token_ids[role] = issued.token_id
    finally:
        await pool.close()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "SHOUWANG_HOME": str(logs / "home"),
        "SHOUWANG_PARTITIONS": str(counts[HOUSEHOLD_REGISTRY.name]),
        "SHOUWANG_OTHER_PARTITIONS": str(counts[other.name]),
    }
    for name in ("SHOUWANG_BIND_HOST", "SHOUWANG_CONSOLE_LANGUAGE", "SHOUWANG_CONSOLE_VISITS_URL"):
        env.pop(name, None)  # the defaults a user gets
    system.env = env
    system.ports = dict(zip(COMMANDS, free_ports(len(COMMANDS)), strict=True))
    for name, variable in COMMANDS.items():
        env[variable] = str(system.ports[name])
    try:
        system.processes.update(_start(env, logs))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            deadline = time.monotonic() + 180
            for name in COMMANDS:
                url = f"http://127.0.0.1:{system.ports[name]}/readyz"
                while True:
                    system.check_alive()
                    try:
                        async with http.get(url) as response:
                            if response.status == 200:
                                break
                    except (aiohttp.ClientError, TimeoutError):
                        pass
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{name} ready within 180 s:\n{tail(logs / name)}")
                    await asyncio.sleep(0.3)
        yield system
    finally:
        for process in system.processes.values():
            stop_child(process, timeout=30)
