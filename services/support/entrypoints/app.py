"""The support faust app: household profiles, and capacity pools owned by one partition each.

Stage 1 (`households`, keyed by household): fold registry rows, risk assessments and measure
steps into the household's profile, `plan` its needs, and send each need to its pool's partition;
forward completions and cancellations there as releases. Stage 2 (`pools`, keyed by pool
instance): `allocate` / `release` / `with_cadre` and emit RECOMMENDED steps. Every emitted event
id is a uuid5 of the measure, so redelivery after a crash re-emits the same events.

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

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import faust

from services.contract.catalogue import Catalogue
from services.contract.codec import Codec
from services.contract.errors import ContractError, UnknownSchema
from services.contract.topics import (
    CADRES,
    DEAD_LETTERS,
    HOUSEHOLD_REGISTRY,
    MEASURES,
    RISK,
    SUPPORT_MEASURES,
    TopicLayout,
)
from services.platform.kafka import clients as kafka_clients
from services.platform.kafka.faust import redelivery as faust_redelivery
from services.platform.kafka.security import KafkaSecurity
from services.support.adapters import avro_translation as avro
from services.support.adapters.table_codec import (
    dump_pool,
    dump_profile,
    load_pool,
    load_profile,
    need_from_json,
    need_to_json,
)
from services.support.domain.matcher import (
    Cadre,
    Need,
    PoolState,
    Recommendation,
    Waiting,
    allocate,
    plan,
    release,
    standing,
    with_cadre,
)
from services.support.domain.profile import MeasureRequested, Profile, apply
from services.support.metrics import SupportMetrics

log = logging.getLogger(__name__)
HOUSEHOLD_INPUTS = (HOUSEHOLD_REGISTRY.name, RISK.name, MEASURES.name)
PROFILES_TABLE = "support-profiles"
POOLS_TABLE = "support-pools"
CHANGELOG_TABLES = (PROFILES_TABLE, POOLS_TABLE)


def pool_commands_topic(app_id: str) -> str:
    return f"{app_id}-pool-commands"


class Outbox(Protocol):
    """Where the app's records go: the broker in a worker, a list in agent tests."""

    async def send(self, source: Any, topic: str, key: bytes, value: bytes) -> None:
        """Send one record on behalf of `source`, the faust event being processed."""


class TopicOutbox:
    """The worker's outbox: raw bytes to a topic through the app's producer."""

    def __init__(self, app: faust.App):
        self.app = app

    async def send(self, source: Any, topic: str, key: bytes, value: bytes) -> None:
        producer = await self.app.maybe_start_producer()
        await producer.send(topic, key, value, None, None, None)


def build_app(
    *,
    app_id: str,
    bootstrap: str,
    catalogue: Catalogue,
    codec: Codec,
    metrics: SupportMetrics,
    layout: TopicLayout,
    store: str = "memory://",
    datadir: Path | None = None,
    web_port: int | None = None,
    web_host: str = "0.0.0.0",
    outbox: Outbox | None = None,
    security: KafkaSecurity | None = None,
) -> faust.App:
    """Wire the app; nothing connects until a worker starts it."""
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
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        web_bind=web_host,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
    )
    faust_redelivery.install(app)  # faust drops re-fetched records otherwise
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}  # fmt: skip
    household_topic = app.topic(*HOUSEHOLD_INPUTS, **raw)
    cadre_topic = app.topic(CADRES.name, **raw)
    pool_topic = app.topic(pool_commands_topic(app_id), partitions=layout.household_partitions,
                           internal=True, **raw)  # fmt: skip
    out: Outbox = outbox or TopicOutbox(app)
    # Table values are our own JSON bytes (table_codec); the app's serializers are raw for them.
    profiles = app.Table(PROFILES_TABLE, partitions=layout.household_partitions,
                         key_type=bytes, value_type=bytes)  # fmt: skip
    pools = app.Table(POOLS_TABLE, partitions=layout.household_partitions,
                      key_type=bytes, value_type=bytes)  # fmt: skip

    def now() -> datetime:
        return datetime.now(UTC)

    async def dead_letter(event: Any, kind: str, error: str) -> None:
        message = event.message
        record = avro.dead_letter_record(
            message.topic,
            message.partition,
            message.offset,
            event.key,
            event.value,
            kind,
            error,
            now(),
        )
        await out.send(event, DEAD_LETTERS.name, message.topic.encode(),
                       codec.encode(avro.DEAD_LETTER, record))  # fmt: skip
        metrics.dead_letters.labels(kind).inc()
        log.warning("dead-lettered %s[%d]@%d: %s: %s", message.topic, message.partition,
                    message.offset, kind, error)  # fmt: skip

    async def decode(event: Any, expected: str) -> dict | None:
        try:
            return codec.decode(event.value, expected=expected).record
        except UnknownSchema as exc:
            await dead_letter(event, "UNKNOWN_SCHEMA", str(exc))
        except ContractError as exc:
            await dead_letter(event, "UNDECODABLE", str(exc))
        return None

    async def to_pool(source: Any, pool: str, command: dict) -> None:
        await out.send(source, pool_topic.get_topic_name(), pool.encode(),
                       json.dumps(command, ensure_ascii=False).encode())  # fmt: skip

    async def emit(source: Any, decision: Recommendation | Waiting | Need) -> None:
        record = avro.recommended_record(decision, now())
        await out.send(source, SUPPORT_MEASURES.name, record["household_id"].encode(),
                       codec.encode(avro.MEASURE_STEP, record))  # fmt: skip
        if not isinstance(decision, Waiting):  # an allocation, or a need without a pool
            measure_type = getattr(decision, "need", decision).measure_type
            metrics.recommendations.labels(measure_type).inc()

    async def guarded(event: Any, handle) -> None:
        """Run `handle(event)`; an unexpected error dead-letters the record (faust would ack
        it and go on, losing it silently) and the stream goes on with the next one."""
        try:
            await handle(event)
        except Exception as exc:
            message = event.message
            log.exception("unexpected error on %s[%d]@%d", message.topic, message.partition,
                          message.offset)  # fmt: skip
            await dead_letter(event, "NOT_APPLICABLE", f"unexpected {type(exc).__name__}: {exc}")

    expected = {HOUSEHOLD_REGISTRY.name: "HouseholdRegistryRecorded", RISK.name: "RiskAssessed",
                MEASURES.name: "MeasureStepRecorded"}  # fmt: skip
    translate = {HOUSEHOLD_REGISTRY.name: avro.registry_from, RISK.name: avro.assessment_from,
                 MEASURES.name: avro.step_from}  # fmt: skip

    async def household_record(event: Any) -> None:
        topic = event.message.topic
        record = await decode(event, expected[topic])
        if record is None:
            return
        try:
            fact = translate[topic](record)
        except (KeyError, TypeError, ValueError) as exc:
            return await dead_letter(event, "INVALID", f"{type(exc).__name__}: {exc}")
        household_id = record["household_id"]
        if event.key != household_id.encode():
            return await dead_letter(event, "NOT_APPLICABLE",
                                     f"key {event.key!r} is not the household id "
                                     f"{household_id!r}: a mis-keyed record lands on another "
                                     "household's partition")  # fmt: skip
        stored = profiles.get(event.key)
        profile = load_profile(stored) if stored else Profile(household_id)
        profile = apply(profile, fact)
        if topic == MEASURES.name and fact.step in ("COMPLETED", "CANCELLED") and fact.pool:
            try:
                measure = catalogue.measure(fact.catalogue_id)
                catalogue.pool_of_instance(fact.pool)
            except KeyError:
                await dead_letter(event, "NOT_APPLICABLE",
                                  f"measure {fact.catalogue_id!r} or pool {fact.pool!r} "
                                  f"is not in catalogue {catalogue.id}")  # fmt: skip
            else:
                if fact.step in measure.releases_on:
                    await to_pool(event, fact.pool,
                                  {"release": fact.measure_id, "step": fact.step})  # fmt: skip
        for need in plan(profile, catalogue):
            profile = apply(profile, MeasureRequested(need.measure_id, need.catalogue_id,
                                                      need.pool))  # fmt: skip
            if need.pool is None:
                await emit(event, need)
            else:
                await to_pool(event, need.pool, {"need": need_to_json(need)})
        profiles[event.key] = dump_profile(profile)

    pairing = next(m.pool for m in catalogue.measures if m.type == "PAIRING")

    async def cadre_record(event: Any) -> None:
        record = await decode(event, "CadreRegistryRecorded")
        if record is None:
            return
        try:
            cadre = avro.cadre_from(record)
        except (KeyError, TypeError, ValueError) as exc:
            return await dead_letter(event, "INVALID", f"{type(exc).__name__}: {exc}")
        instance = catalogue.pools[pairing].instance(cadre.township)
        await to_pool(event, instance, {"cadre": list(vars(cadre).values())})

    async def pool_command(event: Any) -> None:
        instance = event.key.decode()
        command = json.loads(event.value)
        try:
            capacity = catalogue.capacity(instance)
        except KeyError:
            problem = f"pool {instance!r} is not in catalogue {catalogue.id}"
            return await dead_letter(event, "NOT_APPLICABLE", problem)
        stored = pools.get(event.key)
        state = load_pool(stored) if stored else PoolState(instance)
        if "need" in command:
            need = need_from_json(command["need"])
            state, decisions = allocate(state, need, capacity)
            decisions = decisions or standing(state, need)
        elif "release" in command:
            state, decisions = release(state, command["release"], capacity)
            metrics.releases.labels(command["step"]).inc()
        else:
            state, decisions = with_cadre(state, Cadre(*command["cadre"]))
        pools[event.key] = dump_pool(state)
        for decision in decisions:
            await emit(event, decision)
        metrics.pool_used.labels(instance).set(len(state.holders))
        metrics.waiting.labels(instance).set(len(state.waiting))
        metrics.pool_capacity.labels(instance).set(
            capacity if capacity is not None else state.cadre_capacity()
        )

    @app.agent(household_topic)
    async def households(stream):
        async for event in stream.events():
            await guarded(event, household_record)

    @app.agent(cadre_topic)
    async def cadres(stream):
        async for event in stream.events():
            await guarded(event, cadre_record)

    @app.agent(pool_topic)
    async def pool_owner(stream):
        async for event in stream.events():
            await guarded(event, pool_command)

    return app
