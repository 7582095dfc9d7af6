"""The monitoring faust app: household rows in a table, assessments out, dead letters aside.

The agent only adapts, a batch at a time (what the stream has at hand, `Worker.consume_batches`):
`service.read_input` each record (decode, translate, key check; the same function audit's
replay calls), then per household of the batch: look the row up, `service.apply_records` (fold
its records, assess once), store the row once, send the assessment if it changed; the
platform's worker skeleton (`services.platform.kafka.worker`) dead-letters what cannot be
decoded or applied, retries broker errors and stops on anything else. A timer sends a tick for
every household whose next deadline has come, through an internal topic keyed by household, so
the owning partition re-assesses it and emits if overdue signals changed. The web view is routed
to the worker owning the household's partition; it answers operators and reviewers of the
household's township (every route but /metrics behind a token: platform/kafka/faust/web.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import faust
from aiokafka.partitioner import murmur2

from services.contract.codec import Codec
from services.contract.inputs import MONITORING_EXPECTED, MONITORING_INPUTS
from services.contract.rejection import NOT_APPLICABLE, Rejected
from services.contract.topics import (
    RISK,
    VISITS,
    TopicLayout,
)
from services.monitoring.adapters import avro_translation as avro
from services.monitoring.adapters.table_codec import (
    RowCache,
    RowFormatError,
    dump_summary,
    load_row,
    load_summary,
)
from services.monitoring.domain.fold import NotApplicable
from services.monitoring.domain.policy import PolicyBook
from services.monitoring.domain.view import household_document
from services.monitoring.metrics import MonitoringMetrics
from services.monitoring.service import (
    Input,
    Outcome,
    Position,
    Refusal,
    apply_record,
    apply_records,
    read_input,
    reassess,
)
from services.platform.auth.http import TOKEN_KEY, guard
from services.platform.auth.tokens import CachedTokens, Token
from services.platform.clock import wall_clock
from services.platform.http.docs import ASSET_PATH, DOCS_PATH
from services.platform.http.docs import handlers as docs_handlers
from services.platform.http.problems import problem, problems_middleware
from services.platform.kafka import clients as kafka_clients
from services.platform.kafka import table_writes
from services.platform.kafka.faust import recovery as faust_recovery
from services.platform.kafka.faust import redelivery as faust_redelivery
from services.platform.kafka.faust import web as faust_web
from services.platform.kafka.security import KafkaSecurity
from services.platform.kafka.worker import (
    RETRY_DELAYS,
    DeadLetters,
    Outbox,
    ProducerOutbox,
    Worker,
    exit_without_commit,
)

log = logging.getLogger(__name__)
INPUT_TOPICS = MONITORING_INPUTS  # declared in the contract (replay reads the same)
EXPECTED = MONITORING_EXPECTED
OPENAPI_PATH = Path(__file__).resolve().parents[1] / "openapi.json"
TABLES = ("monitoring-households", "monitoring-summaries")


def ticks_topic(app_id: str) -> str:
    return f"{app_id}-deadline-ticks"


def changelog_topics(app_id: str) -> tuple[str, ...]:
    """The tables' changelog topics (faust's naming), created before the worker starts."""
    return tuple(f"{app_id}-{table}-changelog" for table in TABLES)


def build_app(
    *,
    app_id: str,
    bootstrap: str,
    codec: Codec,
    policies: PolicyBook,
    metrics: MonitoringMetrics,
    layout: TopicLayout,
    store: str = "memory://",
    datadir: Path | None = None,
    web_port: int | None = None,
    web_host: str = "127.0.0.1",
    tokens: CachedTokens | None = None,
    pinned_policy: str | None = None,
    sweep_seconds: float = 60.0,
    processing_guarantee: str = "at_least_once",
    clock: Callable[[], datetime] = wall_clock,
    outbox: Outbox | None = None,
    event_clock: bool = False,
    on_fatal: Callable[[BaseException], None] = exit_without_commit,
    retry_delays: Sequence[float] = RETRY_DELAYS,
    security: KafkaSecurity | None = None,
) -> faust.App:
    """Wire the app; nothing connects until a worker starts it. With a `web_port`, `tokens`
    checks every request (the caller keeps their revocation feed running)."""
    if web_port is not None and tokens is None:
        raise ValueError("a web server needs tokens: every route but /metrics is behind one")
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        # SASL/TLS from KAFKA_SECURITY_* unless given; faust applies them to every client it makes
        **kafka_clients.faust_settings(security),
        store=store,
        # faust's data (and RocksDB tables) under the service's home, not the working directory
        **({"datadir": str(datadir)} if datadir else {}),
        processing_guarantee=processing_guarantee,
        topic_partitions=layout.household_partitions,
        topic_replication_factor=layout.replication_factor,
        **faust_web.web_settings(web_port, web_host),
        consumer_auto_offset_reset="earliest",
        producer_linger_ms=5,
        # A batch of households writes ~2 changelog records of a few KB each per household: in
        # faust's default 16 KB batches that is a produce batch every few records. 256 KB
        # batches cut the worker's CPU per record by ~10% (B2, issue 19). The broker's limit
        # (message.max.bytes, 1 MB by default) is per batch, so this stays well under it.
        producer_max_batch_size=256 * 1024,
        stream_buffer_maxsize=1000,
        key_serializer="raw",
        value_serializer="raw",
        # every error of the web view (and of faust's own pages) is a problem+json answer
        web_application_options={"middlewares": [problems_middleware()]},
    )
    faust_redelivery.install(app)  # faust drops re-fetched records otherwise
    faust_recovery.install(app)  # faust restores tables one record at a time otherwise (B7)
    raw = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    inputs = app.topic(*(t.name for t in INPUT_TOPICS), **raw)
    ticks = app.topic(
        ticks_topic(app_id), partitions=layout.household_partitions, internal=True, **raw
    )
    out: Outbox = outbox or ProducerOutbox(app)
    cache = RowCache()
    # Values are table_codec's bytes (rows in Avro, summaries JSON); keys household ids, UTF-8.
    rows, summaries = (
        app.Table(name, partitions=layout.household_partitions, key_type=bytes, value_type=bytes)
        for name in TABLES
    )

    # The dead-letter counter keeps its `topic` label: the dashboards were built with it.
    dead_letters = DeadLetters(codec, out, clock, avro.ACTOR, avro.DEAD_LETTER_NAMESPACE,
                               metrics.dead_letters, labels=("kind", "topic"))  # fmt: skip
    worker = Worker(dead_letters, on_fatal=on_fatal, retry_delays=retry_delays)

    def load(key: bytes) -> Any:
        stored = rows.data.get(key)
        return cache.load(key, stored) if stored is not None else None

    async def store(key: bytes, outcome: Outcome) -> None:
        # Both tables are written only here, through `table_writes` (why: there); an unchanged
        # row or summary (a redelivered record, a quiet re-assessment) is not written again.
        raw = cache.dump(key, outcome.row)
        if rows.data.get(key) != raw:
            await table_writes.write(rows, out, key, raw)
        summary = dump_summary(outcome.summary)
        if summaries.data.get(key) != summary:
            await table_writes.write(summaries, out, key, summary)
        if outcome.emit is not None:
            await out.send(RISK.name, key, codec.encode(avro.RISK_ASSESSED, outcome.emit))
            if not outcome.duplicate:
                metrics.assessments_changed.labels(outcome.assessment.workflow).inc()

    def count(read: Input, outcome: Outcome, duplicate: bool, now: datetime, tally: Tally) -> None:
        """One applied record in the metrics; its type's counter is added up in `tally`."""
        domain_event = read.event
        event_type = read.decoded.event_type
        tally[(event_type, duplicate)] += 1
        if not duplicate and event_type.endswith(".ReviewDecided"):
            for reason in outcome.assessment.reasons:
                if domain_event.event_id in reason.event_ids and reason.code in (
                    "policy_exception",
                    "invalid_transition",
                ):
                    metrics.policy_exceptions.labels(reason.code).inc()
        metrics.latency.observe(max(0.0, (now - domain_event.recorded_at).total_seconds()))

    def counted(tally: Tally) -> None:
        for (event_type, duplicate), n in tally.items():
            counter = metrics.duplicates if duplicate else metrics.events_applied
            counter.labels(event_type.rsplit(".", 1)[-1]).inc(n)

    def position(event: Any) -> Position:
        message = event.message
        return Position(message.topic, message.partition, message.offset)

    async def apply_one(event: Any, read: Input, now: datetime, tally: Tally) -> None:
        """One record alone: the path a household's batch falls back to (see apply_household)."""
        key = read.event.household_id.encode()
        try:
            outcome = apply_record(load(key), read.event, position(event), bytes(event.value),
                                   policies, now, pinned_policy, event_clock)  # fmt: skip
        except (NotApplicable, RowFormatError, LookupError) as exc:
            raise Rejected(NOT_APPLICABLE, f"{type(exc).__name__}: {exc}") from exc
        await store(key, outcome)
        count(read, outcome, outcome.duplicate, now, tally)

    async def apply_household(
        key: bytes, items: list[tuple[Any, Input]], now: datetime, tally: Tally
    ) -> None:
        """A household's records of one batch: folded together, assessed once, stored once."""
        last = items[-1][0]
        # faust writes a table key to the changelog partition of the event being processed
        # (`Table.partition_for_key` reads the stream's current event), and under exactly-once
        # sends in that partition's transaction: here, the household's own last record.
        faust_redelivery.set_current_event(last)
        try:
            row = load(key)
        except RowFormatError as exc:
            for event, _ in items:
                await worker.reject(event, NOT_APPLICABLE, f"RowFormatError: {exc}")
            return
        records = [(read.event, position(event), bytes(event.value)) for event, read in items]
        try:
            folded = apply_records(row, records, policies, now, pinned_policy, event_clock)
        except LookupError:
            # no policy in force for the assessment's date: each record on its own, as before
            # batches (each refused or applied by itself)
            for event, read in items:
                await worker.process(event, partial(apply_one, read=read, now=now, tally=tally))
            return
        for (event, _), refused in zip(items, folded.refused, strict=True):
            if refused is not None:
                await worker.reject(event, NOT_APPLICABLE, f"{type(refused).__name__}: {refused}")
        outcome = folded.outcome
        if outcome is None:
            return

        async def stored(_: Any) -> None:
            await store(key, outcome)

        await worker.process(last, stored)
        for (_, read), refused, duplicate in zip(
            items, folded.refused, folded.duplicates, strict=True
        ):
            if refused is None:
                count(read, outcome, duplicate, now, tally)

    async def handle_batch(events: list[Any]) -> None:
        """Read every record (a refusal is dead-lettered alone), then each household once."""
        started = time.perf_counter()
        tally: Tally = Tally()
        households: dict[bytes, list[tuple[Any, Input]]] = {}
        for event in events:
            read = read_input(codec, event.message.topic, event.key, event.value)
            if isinstance(read, Refusal):
                await worker.reject(event, read.kind, read.error)
                continue
            households.setdefault(read.event.household_id.encode(), []).append((event, read))
        # the clock read per household, not per batch: a batch of thousands takes seconds, and
        # an assessment's recorded_at and wall-clock deadlines are judged from this moment
        for key, items in households.items():
            await apply_household(key, items, clock(), tally)
        counted(tally)
        spent = (time.perf_counter() - started) / len(events)
        for _ in events:
            metrics.apply_seconds.observe(spent)

    @app.agent(inputs)
    async def households(stream):
        await worker.consume_batches(stream, handle_batch)

    @app.agent(ticks)
    async def deadline_ticks(stream):
        async for event in stream.events():
            row = load(event.key)
            if row is None:
                continue
            try:
                outcome = reassess(row, policies, clock(), pinned_policy, event_clock)
            except LookupError as exc:  # no policy in force: nothing to assess against
                log.error("cannot re-assess %s: %s", event.key, exc)
                continue
            await store(event.key, outcome)

    def owned(key: bytes) -> bool:
        actives = {
            tp.partition for tp in app.assignor.assigned_actives() if tp.topic == VISITS.name
        }
        return (murmur2(key) & 0x7FFFFFFF) % layout.household_partitions in actives

    @app.timer(sweep_seconds)
    async def sweep() -> None:
        """Tick households whose next deadline has come; refresh the household gauges."""
        today: date = clock().date()
        mine = []
        for key, raw_summary in list(summaries.items()):
            if not owned(key):
                continue
            summary = load_summary(raw_summary)
            mine.append(summary)
            if summary.next_check is not None and summary.next_check <= today:
                await out.send(ticks.get_topic_name(), key, b"tick")
        metrics.set_households(mine)

    @app.page(HOUSEHOLD_ROUTE)
    @app.table_route(table=rows, match_info="household_id")
    async def household(web, request, household_id: str):
        token: Token = request[TOKEN_KEY]
        stored = rows.get(household_id.encode())
        if stored is None:
            if not token.may_read_household(None):
                # A reviewer learns nothing of households outside its townships, not even
                # whether one exists.
                return _forbidden_household(household_id)
            return problem(404, None, f"household {household_id} not found", code="not_found")
        row = load_row(stored)
        outcome = reassess(row, policies, clock(), pinned_policy, event_clock)
        document = household_document(row.state, outcome.assessment, outcome.policy)
        township = (document.get("registry") or {}).get("township")
        if not token.may_read_household(township):
            return _forbidden_household(household_id)
        return web.json(document)

    add_docs_pages(app)
    if web_port is not None:
        assert tokens is not None
        faust_web.guard_web(app, guard(tokens, web_permits))
    return app


def add_docs_pages(app: faust.App) -> None:
    """GET /openapi.json (the view's document) and /docs (its page), as faust pages; the guard
    lets them through without a token (platform/auth/http.py EXEMPT_PATHS)."""
    document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    docs, asset = docs_handlers(document["info"]["title"])

    @app.page("/openapi.json")
    async def openapi(web, request):
        return web.json(document)

    @app.page(DOCS_PATH)
    async def docs_page(web, request):
        return await docs(request)

    @app.page(ASSET_PATH)
    async def docs_asset(web, request, name: str):
        return await asset(request)


HOUSEHOLD_ROUTE = "/v1/households/{household_id}"


def web_permits(route: str, token: Token) -> str | None:
    """Who may call a route of the worker's web server (the guard's `permits`; the exempt
    routes never reach it): the household view, operators, auditors and reviewers (the view's
    handler then checks the township); anything else, operators and auditors. None: permitted;
    else why not."""
    if route == HOUSEHOLD_ROUTE:
        if token.may_read_households:
            return None
        return (
            "households are read with an operator's, an auditor's or a reviewer's "
            "(ReviewDecided) token"
        )
    if token.oversees:  # an auditor's token reads only: the guard refuses it other methods
        return None
    return "this page needs an operator's or an auditor's token"


def _forbidden_household(household_id: str) -> Any:
    return problem(
        403, None, f"household {household_id} is not in this token's townships", code="forbidden"
    )
