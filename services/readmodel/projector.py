"""The read-model projector: topics → PostgreSQL, idempotent by stored (topic, partition, offset).

Each batch from Kafka is applied in one transaction together with the new positions of its
partitions; records at or below a stored position are skipped, so a crash between the database
commit and the Kafka commit (or a rebalance) never applies an event twice. What a record writes
is `projection.rows_for`'s; the SQL is `statements.py`'s; a batch's rows are written through
staging tables (`bulk.py`). Kafka's committed offsets are only hints for lag tools.

Long because the consuming loop, its rebalance listener and its observers (lag, readiness, the
HTTP port for /metrics and the probes) share the consumer's positions and are one life.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from services.contract.codec import Codec
from services.contract.errors import ContractError
from services.platform.kafka import clients as kafka_clients
from services.platform.postgres.errors import UNREACHABLE
from services.readmodel.bulk import apply_bulk, ensure_staging_tables, staging_committed
from services.readmodel.metrics import ProjectorMetrics
from services.readmodel.projection import (
    EXPECTED_TYPE,
    TOPICS,
    Change,
    position_row,
    rows_for,
)
from services.readmodel.rectification import RectificationPeriods
from services.readmodel.statements import (
    CATALOGUE_MEASURES,
    CLOSE_SECURED,
    ENSURE_POSITIONS,
    POOLS,
    POSITIONS_FOR_UPDATE,
    PROJECTION,
    REJECT,
    STATEMENTS,
    STORED_POSITIONS,
    SWEEP_EXCEPTIONS,
    TABLE_OF,
)

log = logging.getLogger(__name__)

# Errors that mean "this record's values cannot be stored", not "the database is down".
_REFUSALS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
# The database is down or going away: the projector waits and retries.
DATABASE_UNAVAILABLE = UNREACHABLE
DB_RETRY_FIRST_SECONDS = 1.0
DB_RETRY_MAX_SECONDS = 10.0


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
    # Rectification periods that date problems (SHOUWANG_POLICY_DIR's policies; see
    # rectification.py); None: the shipped policies'.
    periods: RectificationPeriods | None = None


class Projector:
    """Consumes the read model's topics and applies them in batched transactions."""

    def __init__(self, config: ProjectorConfig, codec: Codec, metrics: ProjectorMetrics):
        self.config = config
        self.codec = codec
        self.metrics = metrics
        self._stopping = asyncio.Event()
        # For /readyz: the consumer once the group assigned it partitions, and the next offset
        # to apply per partition (None: from the log's start).
        self.consumer: AIOKafkaConsumer | None = None
        self.positions: dict[Any, int | None] = {}

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
        try:  # the rebalance listener's own connection (see _SeekToStored)
            listener_conn = await asyncpg.connect(self.config.database_url)
        except BaseException:
            conn.terminate()
            raise
        consumer = kafka_clients.consumer(
            bootstrap=self.config.bootstrap,
            group_id=self.config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.config.batch_size,
        )
        listener = _SeekToStored(self, consumer, listener_conn)
        consumer.subscribe(list(self.config.topics), listener=listener)
        hint = _CommitHint(consumer)
        try:
            await kafka_clients.start(consumer, self.config.bootstrap)
            while not self._stopping.is_set():
                batch = await consumer.getmany(
                    timeout_ms=self.config.poll_timeout_ms, max_records=self.config.batch_size
                )
                listener.check()
                for tp, msgs in batch.items():
                    if msgs:
                        self.metrics.unapplied.fetched(tp.topic, tp.partition, msgs[0].timestamp)
                records = [r for part in batch.values() for r in part]
                if records:
                    await self.apply(conn, records)
                    hint.add({tp: msgs[-1].offset + 1 for tp, msgs in batch.items()})
                    # A rebalance during the batch's transaction may have given some of its
                    # partitions away: their lag and position are the new owner's to report.
                    assigned = consumer.assignment()
                    for tp, msgs in batch.items():
                        if msgs and tp in assigned:
                            highwater = consumer.highwater(tp)
                            behind = highwater is None or msgs[-1].offset + 1 < highwater
                            self.metrics.unapplied.applied(
                                tp.topic, tp.partition, msgs[-1].timestamp, behind
                            )
                            self.positions[tp] = msgs[-1].offset + 1
                hint.send()
                await self._observe_lag(consumer)
        finally:
            self.consumer = None
            await hint.flush()
            await consumer.stop()
            for each in (conn, listener_conn):
                if not each.is_closed():
                    try:
                        await asyncio.wait_for(each.close(), 5)
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                        each.terminate()  # the server went away: nothing to close politely

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
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return sum(applied.values())

    async def _apply(
        self, conn: asyncpg.Connection, records: Sequence[Any], isolate: bool
    ) -> dict[str, int]:
        async with conn.transaction():
            positions = await _positions_for_update(conn, {(r.topic, r.partition) for r in records})
            changes_of: list[tuple[Any, list[Change]]] = []
            newest: dict[tuple[str, int], int] = {}
            redelivered = 0
            for record in records:
                key = (record.topic, record.partition)
                if record.offset <= max(positions.get(key, -1), newest.get(key, -1)):
                    redelivered += 1  # counted once below: a replayed batch is all of them
                    continue
                newest[key] = record.offset
                try:
                    # A frame of another type than its topic carries (a visit on the registry
                    # topic) is refused, as monitoring refuses it: the read model must not
                    # apply what the monitoring state never saw.
                    decoded = self.codec.decode(
                        record.value, expected=EXPECTED_TYPE.get(record.topic)
                    )
                    changes = rows_for(
                        record.topic, decoded.event_type, decoded.record, self.config.periods
                    )
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
                # records built by hand (tests, the bench) may carry no key: then no position
                key = getattr(record, "key", None)
                where = position_row(record.topic, record.partition, record.offset, key)
                changes_of.append((record, changes if where is None else [*changes, where]))
            if redelivered:
                self.metrics.skipped.labels("redelivered").inc(redelivered)
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
                await ensure_staging_tables(conn)
                for statement, rows in statements.items():
                    await apply_bulk(conn, statement, rows)
                    self.metrics.rows.labels(TABLE_OF[statement]).inc(len(rows))
            touched = {
                args[1] if statement == "problem" else args[0]
                for _record, changes in changes_of
                for statement, args in changes
                if statement in ("problem", "secured_check")
            }
            if touched:
                await conn.execute(CLOSE_SECURED, sorted(touched))
            assessed = {
                args[0]
                for _record, changes in changes_of
                for statement, args in changes
                if statement == "household_procedure"
            }
            # Every household assessed in the batch: whether the sweep can delete anything
            # depends on which assessment won the upsert and on the rows stored before, which
            # the batch does not know. It costs ~1.5 ms a batch of 2000 (index probes).
            if assessed:
                await conn.execute(SWEEP_EXCEPTIONS, sorted(assessed))
            await conn.executemany(
                STATEMENTS["position"],
                [(PROJECTION, t, p, offset) for (t, p), offset in newest.items()],
            )
            self.metrics.rows.labels(TABLE_OF["position"]).inc(len(newest))
        if not isolate:  # this transaction created the staging tables if they were missing
            staging_committed(conn)
        return applied

    async def _apply_one(
        self, conn: asyncpg.Connection, record: Any, changes: list[Change]
    ) -> bool:
        try:
            async with conn.transaction():  # a savepoint: a refusal undoes only this record
                for statement, args in changes:
                    await conn.execute(STATEMENTS[statement], *args)
                    self.metrics.rows.labels(TABLE_OF[statement]).inc()
            return True
        except _REFUSALS as exc:
            log.warning("read model refused %s[%d]@%d: %s", record.topic, record.partition,
                        record.offset, type(exc).__name__)  # fmt: skip
            await conn.execute(
                REJECT,
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
        assigned = consumer.assignment()
        self.metrics.unapplied.forget({(tp.topic, tp.partition) for tp in assigned})
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is not None:
                count = max(0, highwater - await consumer.position(tp))
                behind[tp.topic] += count
                if count == 0:
                    self.metrics.unapplied.caught_up(tp.topic, tp.partition)
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
    topics, partitions = [k[0] for k in keys], [k[1] for k in keys]
    # One round trip for all of the batch's partitions (a batch spans dozens of them).
    await conn.execute(ENSURE_POSITIONS, PROJECTION, topics, partitions)
    rows = await conn.fetch(POSITIONS_FOR_UPDATE, PROJECTION, topics, partitions)
    return {(r["topic"], r["partition"]): r["last_offset"] for r in rows}


class _SeekToStored(ConsumerRebalanceListener):
    """On assignment, start each partition after the offset the database has applied.

    Its own connection (`conn`): aiokafka calls it from its coordinator task, maybe while the
    loop is in a batch's transaction on the loop's ("another operation is in progress"). The
    positions read then predate the batch, whose records come back and are skipped: the seek
    may be early, never late. aiokafka logs and swallows a listener's error, leaving the group's
    offsets (hints, past the database after a rebuild): `check` raises it in the loop instead.
    """

    def __init__(self, projector: Projector, consumer: AIOKafkaConsumer, conn: asyncpg.Connection):
        self.projector = projector
        self.consumer = consumer
        self.conn = conn
        self.failure: BaseException | None = None

    def check(self) -> None:
        """Raise the failure of the last assignment, if it failed."""
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure

    async def on_partitions_revoked(self, revoked) -> None:
        return None

    async def on_partitions_assigned(self, assigned) -> None:
        try:
            rows = await self.conn.fetch(STORED_POSITIONS, PROJECTION)
        except Exception as exc:
            self.failure = exc
            raise
        stored = {(r["topic"], r["partition"]): r["last_offset"] for r in rows}
        positions = self.projector.positions
        positions.clear()
        for tp in assigned:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None or offset < 0:
                await self.consumer.seek_to_beginning(tp)
                positions[tp] = None
            else:
                self.consumer.seek(tp, offset + 1)
                positions[tp] = offset + 1
        self.projector.consumer = self.consumer


async def write_pools(conn: asyncpg.Connection, catalogue) -> None:
    """Record the catalogue's pools and its entries' priorities (configuration), so queries can
    compare use with capacity and list a pool's queue in the order support serves it."""
    await conn.executemany(
        POOLS,
        [
            (
                p.id,
                p.scope,
                p.kind,
                p.capacity,
                p.unit,
                catalogue.id,
                json.dumps(dict(p.capacity_by_township)),
            )
            for p in catalogue.pools.values()
        ],
    )
    await conn.executemany(
        CATALOGUE_MEASURES,
        [(m.id, m.type, m.pool, m.priority, catalogue.id) for m in catalogue.measures],
    )


async def serve(
    config: ProjectorConfig,
    catalogue,
    registry: CollectorRegistry,
    projector: Projector | None = None,
) -> None:
    """Migrate (or check the schema), record the catalogue's pools, then project until
    SIGTERM or SIGINT."""
    from services.platform.postgres.migrate import apply_migrations, check_schema

    projector = projector or Projector(config, Codec.default(), ProjectorMetrics(registry))
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
            log.warning("database unavailable (%s: %s); retrying in %.0f s",
                        type(exc).__name__, exc, delay)  # fmt: skip
            await projector.pause(delay)
            delay = min(delay * 2, DB_RETRY_MAX_SECONDS)
