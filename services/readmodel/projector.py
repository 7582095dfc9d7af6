"""The read-model projector: topics → PostgreSQL, idempotent by stored (topic, partition, offset).

Each batch from Kafka is applied in one transaction together with the new positions of its
partitions; records at or below a stored position are skipped, so a crash between the database
commit and the Kafka commit (or a rebalance) never applies an event twice. Rows are COPYed per
statement and batch into temporary tables and written by INSERT ... SELECT (see `_bulk_apply`),
and every upsert is guarded by the event's own time (or lifecycle rank), so the result does not
depend on the order topics are read in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.contract.codec import Codec
from services.contract.errors import ContractError
from services.contract.topics import (
    CADRES,
    HOUSEHOLD_REGISTRY,
    MEASURES,
    OPERATOR_ACTIONS,
    PROBLEMS,
    RISK,
    SUPPORT_MEASURES,
    VISITS,
)
from services.platform.kafka import clients as kafka_clients

log = logging.getLogger(__name__)

# Errors that mean "this record's values cannot be stored", not "the database is down".
_REFUSALS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
# Errors that mean "the database is down or going away": the projector waits and retries.
DATABASE_UNAVAILABLE = (
    OSError,  # refused, reset, timed out
    asyncpg.InterfaceError,  # e.g. "connection is closed"
    asyncpg.exceptions.PostgresConnectionError,  # SQLSTATE class 08, e.g. closed mid-operation
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutdown, cannot connect now
)
DB_RETRY_FIRST_SECONDS = 1.0
DB_RETRY_MAX_SECONDS = 10.0

PROJECTION = "readmodel"
TOPICS = (
    HOUSEHOLD_REGISTRY,
    RISK,
    VISITS,
    MEASURES,
    SUPPORT_MEASURES,
    PROBLEMS,
    CADRES,
    OPERATOR_ACTIONS,
)
_EXPECTED_TYPE = {t.name: t.event_type for t in TOPICS}

_MEASURE_STATUS = {
    "RECOMMENDED": ("recommended", 2),
    "ACCEPTED": ("accepted", 3),
    "DELIVERED": ("delivered", 4),
    "COMPLETED": ("completed", 5),
    "CANCELLED": ("cancelled", 5),
}
_PROBLEM_STATUS = {
    "FOUND": "open",
    "TASK_ASSIGNED": "open",
    "REOPENED": "open",
    "RECTIFIED": "rectified",
}

# One statement per kind of row change; `_rows_for` produces (statement, args) pairs.
STATEMENTS: Mapping[str, str] = {
    "household_registry": """
        INSERT INTO households AS h (household_id, township, village, grp, registration_status,
            members, labourers, weak_labourers, registry_at, events_projected, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, now())
        ON CONFLICT (household_id) DO UPDATE SET
            township = CASE WHEN h.registry_at IS NULL OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.township ELSE h.township END,
            village = CASE WHEN h.registry_at IS NULL OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.village ELSE h.village END,
            grp = CASE WHEN h.registry_at IS NULL OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.grp ELSE h.grp END,
            registration_status = CASE WHEN h.registry_at IS NULL
                OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.registration_status ELSE h.registration_status END,
            members = CASE WHEN h.registry_at IS NULL OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.members ELSE h.members END,
            labourers = CASE WHEN h.registry_at IS NULL OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.labourers ELSE h.labourers END,
            weak_labourers = CASE WHEN h.registry_at IS NULL
                OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.weak_labourers ELSE h.weak_labourers END,
            registry_at = GREATEST(h.registry_at, EXCLUDED.registry_at),
            events_projected = h.events_projected + 1,
            updated_at = now()
    """,
    "household_risk": """
        INSERT INTO households AS h (household_id, category, level, reasons, workflow_status,
            policy_version, assessed_at, overdue, events_projected, updated_at)
        VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8::jsonb, 1, now())
        ON CONFLICT (household_id) DO UPDATE SET
            category = CASE WHEN h.assessed_at IS NULL OR EXCLUDED.assessed_at >= h.assessed_at
                THEN EXCLUDED.category ELSE h.category END,
            level = CASE WHEN h.assessed_at IS NULL OR EXCLUDED.assessed_at >= h.assessed_at
                THEN EXCLUDED.level ELSE h.level END,
            reasons = CASE WHEN h.assessed_at IS NULL OR EXCLUDED.assessed_at >= h.assessed_at
                THEN EXCLUDED.reasons ELSE h.reasons END,
            workflow_status = CASE WHEN h.assessed_at IS NULL
                OR EXCLUDED.assessed_at >= h.assessed_at
                THEN EXCLUDED.workflow_status ELSE h.workflow_status END,
            policy_version = CASE WHEN h.assessed_at IS NULL
                OR EXCLUDED.assessed_at >= h.assessed_at
                THEN EXCLUDED.policy_version ELSE h.policy_version END,
            overdue = CASE WHEN h.assessed_at IS NULL OR EXCLUDED.assessed_at >= h.assessed_at
                THEN EXCLUDED.overdue ELSE h.overdue END,
            assessed_at = GREATEST(h.assessed_at, EXCLUDED.assessed_at),
            events_projected = h.events_projected + 1,
            updated_at = now()
    """,
    "assessment": """
        INSERT INTO assessments (assessment_id, household_id, category, level, reasons,
            policy_version, assessed_at, recorded_at)
        VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)
        ON CONFLICT (assessment_id) DO NOTHING
    """,
    "household_visit": """
        INSERT INTO households AS h (household_id, last_visit_at, events_projected, updated_at)
        VALUES ($1, $2, 1, now())
        ON CONFLICT (household_id) DO UPDATE SET
            last_visit_at = GREATEST(h.last_visit_at, EXCLUDED.last_visit_at),
            events_projected = h.events_projected + 1,
            updated_at = now()
    """,
    "measure_step": """
        INSERT INTO measure_steps (event_id, measure_id, household_id, step, waiting_for,
            source_topic, occurred_at, recorded_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (event_id) DO NOTHING
    """,
    "measure": """
        INSERT INTO measures AS m (measure_id, household_id, type, status, status_rank, pool,
            cadre_id, quantities, reasons, catalogue_id, waiting_for, amount_yuan, term_months,
            recommended_at, status_changed_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13, $14, $15,
            now())
        ON CONFLICT (measure_id) DO UPDATE SET
            status = CASE WHEN (m.status_rank, m.status_changed_at)
                < (EXCLUDED.status_rank, EXCLUDED.status_changed_at) AND m.status_rank < 5
                THEN EXCLUDED.status ELSE m.status END,
            waiting_for = CASE WHEN (m.status_rank, m.status_changed_at)
                < (EXCLUDED.status_rank, EXCLUDED.status_changed_at) AND m.status_rank < 5
                THEN EXCLUDED.waiting_for ELSE m.waiting_for END,
            status_changed_at = CASE WHEN (m.status_rank, m.status_changed_at)
                < (EXCLUDED.status_rank, EXCLUDED.status_changed_at) AND m.status_rank < 5
                THEN EXCLUDED.status_changed_at ELSE m.status_changed_at END,
            status_rank = CASE WHEN m.status_rank < 5
                THEN GREATEST(m.status_rank, EXCLUDED.status_rank) ELSE m.status_rank END,
            pool = coalesce(m.pool, EXCLUDED.pool),
            cadre_id = coalesce(EXCLUDED.cadre_id, m.cadre_id),
            quantities = CASE WHEN EXCLUDED.quantities <> '{}'::jsonb
                THEN EXCLUDED.quantities ELSE m.quantities END,
            reasons = CASE WHEN EXCLUDED.reasons <> '[]'::jsonb
                THEN EXCLUDED.reasons ELSE m.reasons END,
            catalogue_id = coalesce(m.catalogue_id, EXCLUDED.catalogue_id),
            amount_yuan = coalesce(EXCLUDED.amount_yuan, m.amount_yuan),
            term_months = coalesce(EXCLUDED.term_months, m.term_months),
            recommended_at = LEAST(m.recommended_at, EXCLUDED.recommended_at),
            updated_at = now()
    """,
    "problem": """
        INSERT INTO problems AS p (problem_id, household_id, check_item, status, responsible,
            found_at, rectified_at, status_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $6, now())
        ON CONFLICT (problem_id) DO UPDATE SET
            status = CASE WHEN p.status_at IS NULL OR EXCLUDED.status_at >= p.status_at
                THEN EXCLUDED.status ELSE p.status END,
            responsible = coalesce(EXCLUDED.responsible, p.responsible),
            found_at = LEAST(p.found_at, EXCLUDED.found_at),
            rectified_at = CASE WHEN p.status_at IS NULL OR EXCLUDED.status_at >= p.status_at
                THEN EXCLUDED.rectified_at ELSE p.rectified_at END,
            status_at = GREATEST(p.status_at, EXCLUDED.status_at),
            updated_at = now()
    """,
    "cadre": """
        INSERT INTO cadres AS c (cadre_id, township, village, department, max_households,
            active, registry_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, now())
        ON CONFLICT (cadre_id) DO UPDATE SET
            township = EXCLUDED.township, village = EXCLUDED.village,
            department = EXCLUDED.department, max_households = EXCLUDED.max_households,
            active = EXCLUDED.active, registry_at = EXCLUDED.registry_at, updated_at = now()
        WHERE c.registry_at IS NULL OR EXCLUDED.registry_at >= c.registry_at
    """,
    "operator_action": """
        INSERT INTO operator_actions (event_id, subject_id, action, actor, source, occurred_at,
            recorded_at, token_id, token_kind, token_holder, catalogue_id, catalogue_version,
            content_sha256, changes, reason)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15)
        ON CONFLICT (event_id) DO NOTHING
    """,
    "position": """
        INSERT INTO projection_positions (projection, topic, partition, last_offset, updated_at)
        VALUES ($1, $2, $3, $4, now())
        ON CONFLICT (projection, topic, partition) DO UPDATE SET
            last_offset = EXCLUDED.last_offset, updated_at = now()
        WHERE projection_positions.last_offset < EXCLUDED.last_offset
    """,
}
TABLE_OF = {
    "household_registry": "households",
    "household_risk": "households",
    "household_visit": "households",
    "assessment": "assessments",
    "measure_step": "measure_steps",
    "measure": "measures",
    "problem": "problems",
    "cadre": "cadres",
    "operator_action": "operator_actions",
    "position": "projection_positions",
}


def rows_for(topic: str, event_type: str, record: Mapping[str, Any]) -> list[tuple[str, tuple]]:
    """The row changes one decoded event makes: (statement name, arguments) pairs.

    Personal data (`personal` sub-records, names, free-text notes) is never copied.
    """
    name = event_type.rsplit(".", 1)[-1]
    if name == "HouseholdRegistryRecorded":
        m = record["members"]
        return [
            (
                "household_registry",
                (
                    record["household_id"],
                    record["township"],
                    record["village"],
                    record["village_group"],
                    record["registration"].lower(),
                    m["count"],
                    m["labour"],
                    m.get("weak_labour", 0),
                    record["occurred_at"],
                ),
            )
        ]
    if name == "RiskAssessed":
        reasons = json.dumps(
            [{"code": r["code"], "event_ids": list(r["event_ids"])} for r in record["reasons"]]
        )
        return [
            (
                "household_risk",
                (
                    record["household_id"],
                    record["category"],
                    record["level"],
                    reasons,
                    record["workflow"].lower(),
                    record["policy_version"],
                    record["as_of"],
                    json.dumps(list(record["overdue"])),
                ),
            ),
            (
                "assessment",
                (
                    record["event_id"],
                    record["household_id"],
                    record["category"],
                    record["level"],
                    reasons,
                    record["policy_version"],
                    record["as_of"],
                    record["recorded_at"],
                ),
            ),
        ]
    if name == "VisitRecorded":
        return [("household_visit", (record["household_id"], record["occurred_at"]))]
    if name == "MeasureStepRecorded":
        waiting_for = record.get("waiting_for") if record["step"] == "RECOMMENDED" else None
        status, rank = ("waiting", 1) if waiting_for else _MEASURE_STATUS[record["step"]]
        quantities = {q["item"]: q["amount"] for q in record["quantities"]}
        return [
            (
                "measure_step",
                (
                    record["event_id"],
                    record["measure_id"],
                    record["household_id"],
                    record["step"],
                    waiting_for,
                    topic,
                    record["occurred_at"],
                    record["recorded_at"],
                ),
            ),
            (
                "measure",
                (
                    record["measure_id"],
                    record["household_id"],
                    record["measure_type"],
                    status,
                    rank,
                    record["pool"],
                    record["cadre_id"],
                    json.dumps(quantities),
                    json.dumps(list(record["reasons"])),
                    record["catalogue_id"],
                    waiting_for,
                    record["amount_yuan"],
                    record["term_months"],
                    record["occurred_at"] if record["step"] == "RECOMMENDED" else None,
                    record["occurred_at"],
                ),
            ),
        ]
    if name == "ProblemRecorded":
        status = _PROBLEM_STATUS[record["step"]]
        return [
            (
                "problem",
                (
                    record["problem_id"],
                    record["household_id"],
                    record["kind"].lower(),
                    status,
                    record.get("responsible_cadre_id"),
                    record["occurred_at"],
                    record["occurred_at"] if status == "rectified" else None,
                ),
            )
        ]
    if name == "CadreRegistryRecorded":
        return [
            (
                "cadre",
                (
                    record["cadre_id"],
                    record["township"],
                    record.get("village"),
                    record["department"],
                    record["max_households"],
                    record.get("active", True),
                    record["occurred_at"],
                ),
            )
        ]
    if name == "OperatorActionRecorded":
        token = record.get("token") or {}
        catalogue = record.get("catalogue") or {}
        return [
            (
                "operator_action",
                (
                    record["event_id"],
                    record["subject_id"],
                    record["action"],
                    record["actor"],
                    record["source"],
                    record["occurred_at"],
                    record["recorded_at"],
                    token.get("token_id"),
                    token.get("kind"),
                    token.get("holder"),
                    catalogue.get("catalogue_id"),
                    catalogue.get("version"),
                    catalogue.get("content_sha256"),
                    json.dumps(list(catalogue.get("changes", []))),
                    record["reason"],
                ),
            )
        ]
    return []


# Bulk path: a batch's rows of one statement kind are COPYed into a temporary table, then
# written by one INSERT ... SELECT ... ON CONFLICT per "round". ON CONFLICT DO UPDATE cannot
# touch a row twice in one command, so round k holds the k-th row of each conflict key (the
# first argument of every statement) in batch order: each key's rows still apply one after
# another, in order, through the same guards as `execute` would apply them, and keys do not
# interact. Same rows as one `execute` per row, a few round trips per batch instead.
_BULK = {
    name: f"bulk_{name}" for name in STATEMENTS if name != "position"
}  # temporary tables, per connection
_VALUES = re.compile(r"VALUES\s*\((.*?)\)\s*ON CONFLICT", re.DOTALL)
_PARAM = re.compile(r"\$(\d+)")
_bulk_ddl: weakref.WeakKeyDictionary[asyncpg.Connection, str] = weakref.WeakKeyDictionary()


def _bulk_statement(name: str) -> str:
    """STATEMENTS[name] reading round $1 of its temporary table instead of one row's $n."""
    statement = STATEMENTS[name]
    values = _VALUES.search(statement)
    if values is None:
        raise ValueError(f"statement {name!r} has no VALUES (...) ON CONFLICT to rewrite")
    columns = _PARAM.sub(lambda m: f"b.c{m.group(1)}", values.group(1))
    select = f"SELECT {columns} FROM {_BULK[name]} AS b WHERE b.round = $1 ON CONFLICT"
    return statement[: values.start()] + select + statement[values.end() :]


BULK_STATEMENTS = {name: _bulk_statement(name) for name in _BULK}


async def _ensure_bulk_tables(conn: asyncpg.Connection) -> None:
    # Column types are the statements' own parameter types, asked once per connection. The
    # tables are (re)created inside each batch's transaction: one rolled back takes its
    # CREATE with it, and ON COMMIT DELETE ROWS empties them for the next batch.
    ddl = _bulk_ddl.get(conn)
    if ddl is None:
        tables = []
        for name, table in _BULK.items():
            params = (await conn.prepare(STATEMENTS[name])).get_parameters()
            columns = ", ".join(f"c{i} {p.schema}.{p.name}" for i, p in enumerate(params, start=1))
            tables.append(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} (round int NOT NULL, {columns})"
                " ON COMMIT DELETE ROWS"
            )
        ddl = _bulk_ddl[conn] = ";\n".join(tables)
    await conn.execute(ddl)


async def _bulk_apply(conn: asyncpg.Connection, name: str, rows: list[tuple]) -> None:
    seen: dict[Any, int] = defaultdict(int)
    numbered = []
    for args in rows:
        numbered.append((seen[args[0]], *args))
        seen[args[0]] += 1
    await conn.copy_records_to_table(_BULK[name], records=numbered)
    for round_ in range(max(seen.values(), default=0)):
        await conn.execute(BULK_STATEMENTS[name], round_)


class ProjectorMetrics:
    """The projector's Prometheus metrics, registered on the registry passed in."""

    def __init__(self, registry: CollectorRegistry):
        self.events = Counter(
            "shouwang_projector_events_total",
            "Events applied to the read model, by topic",
            ["topic"],
            registry=registry,
        )
        self.skipped = Counter(
            "shouwang_projector_skipped_total",
            "Records skipped: already applied (redelivered) or undecodable",
            ["reason"],
            registry=registry,
        )
        self.rows = Counter(
            "shouwang_projector_rows_written_total",
            "Row statements executed, by table",
            ["table"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "shouwang_projector_batch_seconds",
            "Time to apply one batch (one transaction)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.lag_events = Gauge(
            "shouwang_projector_lag_events",
            "Records behind the partition high-water mark, by topic",
            ["topic"],
            registry=registry,
        )
        self.lag_seconds = Gauge(
            "shouwang_projector_lag_seconds",
            "Age of the newest applied record's Kafka timestamp",
            ["topic"],
            registry=registry,
        )


@dataclass(frozen=True)
class ProjectorConfig:
    bootstrap: str
    database_url: str
    group_id: str = "shouwang-readmodel"
    batch_size: int = 2000
    poll_timeout_ms: int = 200
    topics: tuple[str, ...] = tuple(t.name for t in TOPICS)
    # True when database_url is the owner's: start-up applies migrations. Otherwise (the
    # projector role, which may not change the schema) it checks that they are applied.
    migrate: bool = True


class Projector:
    """Consumes the read model's topics and applies them in batched transactions."""

    def __init__(self, config: ProjectorConfig, codec: Codec, metrics: ProjectorMetrics):
        self.config = config
        self.codec = codec
        self.metrics = metrics
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def pause(self, seconds: float) -> None:
        """Wait `seconds`, or less if `stop()` is called meanwhile."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def run(self) -> None:
        """Apply batches until `stop()`; positions come from the database, not the group."""
        conn = await asyncpg.connect(self.config.database_url)
        consumer = kafka_clients.consumer(
            bootstrap=self.config.bootstrap,
            group_id=self.config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.config.batch_size,
        )
        consumer.subscribe(list(self.config.topics), listener=_SeekToStored(consumer, conn))
        await kafka_clients.start(consumer, self.config.bootstrap)
        hint = _CommitHint(consumer)
        try:
            while not self._stopping.is_set():
                batch = await consumer.getmany(
                    timeout_ms=self.config.poll_timeout_ms, max_records=self.config.batch_size
                )
                records = [r for part in batch.values() for r in part]
                if records:
                    await self.apply(conn, records)
                    hint.add({tp: msgs[-1].offset + 1 for tp, msgs in batch.items()})
                hint.send()
                await self._observe_lag(consumer)
        finally:
            await hint.flush()
            await consumer.stop()
            if not conn.is_closed():
                try:
                    await asyncio.wait_for(conn.close(), 5)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    conn.terminate()  # the server went away: nothing to close politely

    async def apply(self, conn: asyncpg.Connection, records: Sequence[Any]) -> int:
        """Apply `records` (ConsumerRecords) in one transaction; return how many were new.

        A record the database refuses (a value impossible in the domain that passed the Avro
        contract, e.g. negative labour) would fail the whole batch forever; the batch is then
        applied again one record at a time, and each refused record is kept in
        `projection_rejects` with the database's reason, in the same transaction as its position.
        """
        started = time.perf_counter()
        try:
            applied = await self._apply(conn, records, isolate=False)
        except _REFUSALS as exc:
            log.warning("batch refused (%s); applying record by record", type(exc).__name__)
            applied = await self._apply(conn, records, isolate=True)
        for topic, count in applied.items():
            self.metrics.events.labels(topic).inc(count)
        for record in records:
            self.metrics.lag_seconds.labels(record.topic).set(
                max(0.0, time.time() - record.timestamp / 1000)
            )
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return sum(applied.values())

    async def _apply(
        self, conn: asyncpg.Connection, records: Sequence[Any], isolate: bool
    ) -> dict[str, int]:
        async with conn.transaction():
            positions = await _positions_for_update(conn, {(r.topic, r.partition) for r in records})
            changes_of: list[tuple[Any, list[tuple[str, tuple]]]] = []
            newest: dict[tuple[str, int], int] = {}
            for record in records:
                key = (record.topic, record.partition)
                if record.offset <= max(positions.get(key, -1), newest.get(key, -1)):
                    self.metrics.skipped.labels("redelivered").inc()
                    continue
                newest[key] = record.offset
                try:
                    # A frame of another type than its topic carries (a visit on the registry
                    # topic) is refused, as monitoring refuses it: the read model must not
                    # apply what the monitoring state never saw.
                    decoded = self.codec.decode(
                        record.value, expected=_EXPECTED_TYPE.get(record.topic)
                    )
                    changes = rows_for(record.topic, decoded.event_type, decoded.record)
                except (ContractError, KeyError, TypeError) as exc:
                    # The services dead-letter what they cannot decode; the projector records
                    # the position and moves on, so one bad record never stalls the read model.
                    log.warning(
                        "skipping %s[%d]@%d: %s",
                        record.topic,
                        record.partition,
                        record.offset,
                        type(exc).__name__,
                    )
                    self.metrics.skipped.labels("undecodable").inc()
                    continue
                changes_of.append((record, changes))
            applied: dict[str, int] = defaultdict(int)
            if isolate:
                for record, changes in changes_of:
                    if await self._apply_one(conn, record, changes):
                        applied[record.topic] += 1
            else:
                statements: dict[str, list[tuple]] = defaultdict(list)
                for record, changes in changes_of:
                    for statement, args in changes:
                        statements[statement].append(args)
                    applied[record.topic] += 1
                await _ensure_bulk_tables(conn)
                for statement, rows in statements.items():
                    await _bulk_apply(conn, statement, rows)
                    self.metrics.rows.labels(TABLE_OF[statement]).inc(len(rows))
            await conn.executemany(
                STATEMENTS["position"],
                [(PROJECTION, t, p, offset) for (t, p), offset in newest.items()],
            )
            self.metrics.rows.labels(TABLE_OF["position"]).inc(len(newest))
        return applied

    async def _apply_one(
        self, conn: asyncpg.Connection, record: Any, changes: list[tuple[str, tuple]]
    ) -> bool:
        try:
            async with conn.transaction():  # a savepoint: a refusal undoes only this record
                for statement, args in changes:
                    await conn.execute(STATEMENTS[statement], *args)
                    self.metrics.rows.labels(TABLE_OF[statement]).inc()
            return True
        except _REFUSALS as exc:
            log.warning(
                "read model refused %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                type(exc).__name__,
            )
            await conn.execute(
                "INSERT INTO projection_rejects (projection, topic, partition, kafka_offset,"
                " error) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                PROJECTION,
                record.topic,
                record.partition,
                record.offset,
                f"{type(exc).__name__}: {exc}"[:2000],
            )
            self.metrics.skipped.labels("refused").inc()
            return False

    async def _observe_lag(self, consumer: AIOKafkaConsumer) -> None:
        behind: dict[str, int] = defaultdict(int)
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                behind[tp.topic] += max(0, highwater - await consumer.position(tp))
        for topic, count in behind.items():
            self.metrics.lag_events.labels(topic).set(count)


class _CommitHint:
    """The group's committed offsets: only a hint for lag tools (the database holds the real
    positions), so they are committed beside the loop, not in it. Awaiting the commit after
    every batch put a coordinator round trip between each small batch and the next, which is
    most of a record's wait at a few hundred events/s. One commit is in flight at a time (so
    offsets never go backwards); what arrives meanwhile is committed next, and on the way out."""

    def __init__(self, consumer: AIOKafkaConsumer):
        self.consumer = consumer
        self.pending: dict[Any, int] = {}
        self.committing: asyncio.Task | None = None

    def add(self, offsets: dict[Any, int]) -> None:
        self.pending.update(offsets)

    def send(self) -> None:
        if not self.pending or (self.committing is not None and not self.committing.done()):
            return
        self._settle()
        offsets, self.pending = self.pending, {}
        self.committing = asyncio.create_task(self.consumer.commit(offsets))

    async def flush(self, seconds: float = 5.0) -> None:
        """Commit what is pending before leaving; bounded, as the broker may be the reason."""
        if self.committing is not None:
            await asyncio.wait([self.committing], timeout=seconds)
            if not self.committing.done():
                self.committing.cancel()
            self._settle()
        if self.pending:
            try:
                await asyncio.wait_for(self.consumer.commit(self.pending), seconds)
            except (KafkaError, TimeoutError) as exc:  # the next start reads the database
                log.warning("final offset commit failed: %s", exc)

    def _settle(self) -> None:
        task, self.committing = self.committing, None
        if task is None or task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, KafkaError):  # e.g. a rebalance: the next commit carries newer ones
            log.warning("offset commit failed: %s", exc)
        elif exc is not None:
            raise exc


async def _positions_for_update(
    conn: asyncpg.Connection, keys: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    # Lock the rows so a second projector that got the partitions in a rebalance waits, then
    # sees the new positions, instead of applying the same records concurrently.
    keys = sorted(keys)
    for topic, partition in keys:
        await conn.execute(
            "INSERT INTO projection_positions (projection, topic, partition, last_offset) "
            "VALUES ($1, $2, $3, -1) ON CONFLICT DO NOTHING",
            PROJECTION,
            topic,
            partition,
        )
    rows = await conn.fetch(
        "SELECT topic, partition, last_offset FROM projection_positions WHERE projection = $1 "
        "AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::int[])) "
        "ORDER BY topic, partition FOR UPDATE",
        PROJECTION,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["topic"], r["partition"]): r["last_offset"] for r in rows}


class _SeekToStored(ConsumerRebalanceListener):
    """On assignment, start each partition after the offset the database has applied."""

    def __init__(self, consumer: AIOKafkaConsumer, conn: asyncpg.Connection):
        self.consumer = consumer
        self.conn = conn

    async def on_partitions_revoked(self, revoked) -> None:
        return None

    async def on_partitions_assigned(self, assigned) -> None:
        rows = await self.conn.fetch(
            "SELECT topic, partition, last_offset FROM projection_positions WHERE projection = $1",
            PROJECTION,
        )
        stored = {(r["topic"], r["partition"]): r["last_offset"] for r in rows}
        for tp in assigned:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None or offset < 0:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset + 1)


async def write_pools(conn: asyncpg.Connection, catalogue) -> None:
    """Record the catalogue's pools (configuration) so queries can compare use with capacity."""
    await conn.executemany(
        "INSERT INTO pools (pool, scope, kind, capacity, unit, catalogue, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (pool) DO UPDATE SET "
        "scope = EXCLUDED.scope, kind = EXCLUDED.kind, capacity = EXCLUDED.capacity, "
        "unit = EXCLUDED.unit, catalogue = EXCLUDED.catalogue, updated_at = now()",
        [
            (p.id, p.scope, p.kind, p.capacity, p.unit, catalogue.id)
            for p in catalogue.pools.values()
        ],
    )


async def serve(config: ProjectorConfig, catalogue, registry: CollectorRegistry) -> None:
    """Migrate (or check the schema), record the catalogue's pools, then project until
    SIGTERM or SIGINT."""
    from services.platform.postgres.migrate import apply_migrations, check_schema

    projector = Projector(config, Codec.default(), ProjectorMetrics(registry))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, projector.stop)
    prepared = False
    delay = DB_RETRY_FIRST_SECONDS
    # The database may go away (restart, failover, outage) at any moment: wait for it and go
    # on. Positions live in the database, so a batch cut off mid-transaction is rolled back and
    # read again from the stored positions when the projector rejoins the group.
    while not projector.stopping:
        try:
            if not prepared:
                conn = await asyncpg.connect(config.database_url)
                try:
                    if config.migrate:
                        applied = await apply_migrations(conn)
                        if applied:
                            log.info("applied migrations %s", ", ".join(applied))
                    else:
                        await check_schema(conn)
                    await write_pools(conn, catalogue)
                finally:
                    await conn.close()
                prepared = True
            log.info("projecting %s into the read model", ", ".join(config.topics))
            await projector.run()
            return
        except DATABASE_UNAVAILABLE as exc:
            log.warning(
                "database unavailable (%s: %s); retrying in %.0f s",
                type(exc).__name__,
                exc,
                delay,
            )
            await projector.pause(delay)
            delay = min(delay * 2, DB_RETRY_MAX_SECONDS)
