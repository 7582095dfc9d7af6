"""The support faust app: household profiles, and capacity pools owned by one partition each.

Stage 1 (`households`, keyed by household): `service.household_step` folds registry rows, risk
assessments and measure steps into the household's profile and plans its needs; each need goes
to its pool's partition as a typed command, and completions and cancellations as releases. When
the household left the served states, each release is also recorded as a CANCELLED step on
support.measures (after the pool command), so readers see the measure closed and why.
Stage 2 (`pool_owner`, keyed by pool instance): `service.pool_step` allocates, releases or
updates a cadre, and the agent emits RECOMMENDED steps. The agents only adapt (tables, outbox,
metrics); the platform's worker skeleton (`services.platform.kafka.worker`) owns the error
policy. Each agent stores its table row after its sends: a record retried after a broker error
recomputes the same decisions (same ids) from the row as it was, instead of finding its work
done and sending nothing. Every emitted event id is a uuid5 of the measure, so redelivery after
a crash re-emits the same events.

The app runs at-least-once, not faust's exactly-once: in faust 0.15 an exactly-once send
picks the transactional producer of the *destination* partition, which a worker only has when it
also owns that partition, so re-keying needs to pool instances owned by another worker failed
("No transaction producer found") and the agent crashed; and on a rebalance faust abandons open
transactions while the in-memory tables keep their effects, so replayed inputs found nothing
left to do and recommendations were lost. At-least-once sends are durable once flushed (faust
flushes before giving partitions up); a redelivered record is harmless because every emitted id
is deterministic and a pool re-emits its standing decision for a need it already knows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import faust

from services.contract.catalogue import Catalogue
from services.contract.codec import Codec
from services.contract.rejection import NOT_APPLICABLE, UNDECODABLE, Rejected, check_key, decode
from services.contract.topics import CADRES, SUPPORT_MEASURES, TopicLayout
from services.platform.auth.http import guard
from services.platform.auth.tokens import CachedTokens, Token
from services.platform.http.problems import problems_middleware
from services.platform.kafka import clients as kafka_clients
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
from services.support.adapters import avro_translation as avro
from services.support.adapters.pool_codec import CommandFormatError, dump_command, load_command
from services.support.adapters.pool_rows import PoolBatch, PoolRows
from services.support.adapters.table_codec import dump_profile, load_profile
from services.support.domain.following import Cancellation
from services.support.domain.matcher import Waiting
from services.support.domain.pool_commands import AllocateNeed, ReleaseMeasure, measure_of
from services.support.metrics import SupportMetrics
from services.support.service import (
    EXPECTED,
    HOUSEHOLD_INPUTS,
    Decision,
    ToPool,
    cadre_fact,
    cadre_step,
    household_fact,
    household_step,
    pairing_pool,
    pool_capacity,
    pool_step,
)

__all__ = ["CHANGELOG_TABLES", "HOUSEHOLD_INPUTS", "build_app", "pool_commands_topic"]
PROFILES_TABLE = "support-profiles"
POOLS_TABLE = "support-pools"
CHANGELOG_TABLES = (PROFILES_TABLE, POOLS_TABLE)


def pool_commands_topic(app_id: str) -> str:
    return f"{app_id}-pool-commands"


def build_app(
    *,
    app_id: str,
    bootstrap: str,
    catalogue: Catalogue,
    codec: Codec,
    metrics: SupportMetrics,
    layout: TopicLayout,
    clock: Callable[[], datetime],
    store: str = "memory://",
    datadir: Path | None = None,
    web_port: int | None = None,
    web_host: str = "127.0.0.1",
    tokens: CachedTokens | None = None,
    outbox: Outbox | None = None,
    on_fatal: Callable[[BaseException], None] = exit_without_commit,
    retry_delays: Sequence[float] = RETRY_DELAYS,
    security: KafkaSecurity | None = None,
) -> faust.App:
    """Wire the app; nothing connects until a worker starts it. With a `web_port` (metrics),
    `tokens` checks every request but /metrics (faust's own pages are off)."""
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
        processing_guarantee="at_least_once",
        topic_partitions=layout.household_partitions,
        topic_replication_factor=layout.replication_factor,
        **faust_web.web_settings(web_port, web_host),
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        # every error of faust's web server (/metrics, faust's own pages) is problem+json
        web_application_options={"middlewares": [problems_middleware()]},
    )
    faust_redelivery.install(app)  # faust drops re-fetched records otherwise
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}  # fmt: skip
    household_topic = app.topic(*HOUSEHOLD_INPUTS, **raw)
    cadre_topic = app.topic(CADRES.name, **raw)
    pool_topic = app.topic(pool_commands_topic(app_id), partitions=layout.household_partitions,
                           internal=True, **raw)  # fmt: skip
    # Straight through the producer: re-keyed sends go to partitions other workers own.
    out: Outbox = outbox or ProducerOutbox(app)
    # Table values are our own JSON bytes (table_codec, pool_rows); the app's serializers are raw.
    profiles = app.Table(PROFILES_TABLE, partitions=layout.household_partitions,
                         key_type=bytes, value_type=bytes)  # fmt: skip
    pools = app.Table(POOLS_TABLE, partitions=layout.household_partitions,
                      key_type=bytes, value_type=bytes)  # fmt: skip
    dead_letters = DeadLetters(codec, out, clock, avro.ACTOR, avro.DEAD_LETTER_NAMESPACE,
                               metrics.dead_letters, labels=("kind",))  # fmt: skip
    worker = Worker(dead_letters, on_fatal=on_fatal, retry_delays=retry_delays)
    pairing = pairing_pool(catalogue)
    pool_rows = PoolRows(pools)

    async def to_pool(send: ToPool) -> None:
        await out.send(pool_topic.get_topic_name(), send.pool.encode(), dump_command(send.command))

    async def emit(decision: Decision) -> None:
        record = avro.recommended_record(decision, clock())
        await out.send(SUPPORT_MEASURES.name, record["household_id"].encode(),
                       codec.encode(avro.MEASURE_STEP, record))  # fmt: skip
        if not isinstance(decision, Waiting):  # an allocation, or a need without a pool
            measure_type = getattr(decision, "need", decision).measure_type
            metrics.recommendations.labels(measure_type).inc()

    async def record_cancellation(c: Cancellation) -> None:
        record = avro.cancelled_record(c, clock())
        await out.send(SUPPORT_MEASURES.name, c.household_id.encode(),
                       codec.encode(avro.MEASURE_STEP, record))  # fmt: skip
        metrics.cancellations.labels(c.measure_type).inc()

    async def household_record(event: Any) -> None:
        decoded = decode(codec, event.value, EXPECTED.get(event.message.topic))
        record = decoded.record
        fact = household_fact(decoded.event_type, record)
        key = check_key(event.key, record["household_id"])
        stored = profiles.get(key)
        outcome = household_step(
            stored_row(load_profile, stored, "profile"), record["household_id"], fact, catalogue
        )
        if outcome.problem is not None:
            await worker.dead_letter(event, NOT_APPLICABLE, outcome.problem)
        for effect in outcome.effects:
            await (to_pool(effect) if isinstance(effect, ToPool) else emit(effect))
        for cancellation in outcome.cancellations:  # once the pools have been told
            await record_cancellation(cancellation)
        profiles[key] = dump_profile(outcome.profile)

    async def cadre_record(event: Any) -> None:
        record = decode(codec, event.value, CADRES.event_type).record
        await to_pool(cadre_step(cadre_fact(record), catalogue, pairing))

    async def pool_command(event: Any, batch: PoolBatch) -> None:
        instance, command = read_command(event.key, event.value)
        capacity = pool_capacity(catalogue, instance)
        state = readable("pool", lambda: batch.state_for(instance, measure_of(command)))
        state, decisions = pool_step(state, command, capacity)
        for decision in decisions:
            await emit(decision)
        batch.advance(state)
        if isinstance(command, ReleaseMeasure):
            metrics.releases.labels(command.step).inc()
        metrics.pool_used.labels(instance).set(len(state.holders))
        metrics.waiting.labels(instance).set(len(state.waiting))
        metrics.pool_capacity.labels(instance).set(
            capacity if capacity is not None else state.cadre_capacity()
        )

    async def pool_commands(events: list[Any]) -> None:
        """A batch's commands pool by pool, in order, each under the worker's error policy; each
        pool's rows written once, after its last command's sends (`PoolBatch`): a pool's row
        is rewritten per write, so at a province's size a write per command was most of the
        changelog's bytes."""
        pools: dict[Any, list[Any]] = {}
        for event in events:
            pools.setdefault(event.key, []).append(event)
        for key, items in pools.items():
            # Every table write of this pool (a row spread the first time it is read, the
            # batch's writes) goes to the changelog partition of the pool's records, the same
            # for all of them (keyed by pool instance).
            faust_redelivery.set_current_event(items[-1])
            batch = PoolBatch(pool_rows, key)
            for event in items:
                await worker.process(event, partial(pool_command, batch=batch))
            batch.store()

    @app.agent(household_topic)
    async def households(stream):
        await worker.consume(stream, household_record)

    @app.agent(cadre_topic)
    async def cadres(stream):
        await worker.consume(stream, cadre_record)

    @app.agent(pool_topic)
    async def pool_owner(stream):
        await worker.consume_batches(stream, pool_commands)

    if web_port is not None:
        assert tokens is not None
        faust_web.guard_web(app, guard(tokens, operators_only))
    return app


def operators_only(route: str, token: Token) -> str | None:
    """Who may call a route of the worker's web server other than /metrics: operators, and
    auditors (reads only: the guard refuses them any other method)."""
    return None if token.oversees else "this page needs an operator's or an auditor's token"


def read_command(key: Any, value: Any) -> tuple[str, Any]:
    """The pool instance a command is keyed by and the command; Rejected for a record that is
    neither (a bad record is dead-lettered, not retried forever by a worker that stops on it)."""
    try:
        instance = key.decode()
    except (AttributeError, UnicodeDecodeError) as exc:
        raise Rejected(NOT_APPLICABLE, f"pool command key {key!r} names no pool") from exc
    try:
        command = load_command(value)
    except CommandFormatError as exc:
        raise Rejected(UNDECODABLE, str(exc)) from exc
    if isinstance(command, AllocateNeed) and command.need.pool != instance:
        raise Rejected(
            NOT_APPLICABLE, f"a need for pool {command.need.pool} sent to pool {instance}"
        )
    return instance, command


def stored_row(load: Callable[[bytes], Any], stored: bytes | None, what: str) -> Any:
    """A table row read back, None when there is none; Rejected(NOT_APPLICABLE) when this code
    cannot read it, as monitoring does with its rows."""
    return readable(what, lambda: load(stored)) if stored else None


def readable(what: str, read: Callable[[], Any]) -> Any:
    """What `read` reads from a table; Rejected(NOT_APPLICABLE) naming `what` when this code
    cannot read the stored rows (dead-lettered, not retried forever)."""
    try:
        return read()
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Rejected(
            NOT_APPLICABLE, f"stored {what} unreadable: {type(exc).__name__}: {exc}"
        ) from exc
