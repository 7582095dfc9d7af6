"""The support faust app: household profiles, and capacity pools owned by one partition each.

Stage 1 (`households`, keyed by household): fold registry rows, risk assessments and measure
steps into the household's profile, `plan` its needs, and send each need to its pool's partition;
forward completions and cancellations there as releases. Stage 2 (`pools`, keyed by pool
instance): `allocate` / `release` / `with_cadre` and emit RECOMMENDED steps. Every emitted event
id is a uuid5 of the measure, so redelivery after a crash re-emits the same events.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import faust

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

from . import avro_translation as avro
from .catalogue import Catalogue
from .matcher import Cadre, PoolState, Recommendation, Waiting, allocate, plan, release, with_cadre
from .metrics import SupportMetrics
from .profile import MeasureRequested, Profile, apply
from .table_codec import (
    dump_pool,
    dump_profile,
    load_pool,
    load_profile,
    need_from_json,
    need_to_json,
)

HOUSEHOLD_INPUTS = (HOUSEHOLD_REGISTRY.name, RISK.name, MEASURES.name)


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
    store: str = "memory://",
    web_port: int | None = None,
) -> faust.App:
    """Wire the app; nothing connects until a worker starts it."""
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store=store,
        processing_guarantee="exactly_once",
        topic_partitions=layout.household_partitions,
        topic_replication_factor=layout.replication_factor,
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
    )
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}  # fmt: skip
    household_topic = app.topic(*HOUSEHOLD_INPUTS, **raw)
    cadre_topic = app.topic(CADRES.name, **raw)
    pool_topic = app.topic(pool_commands_topic(app_id), partitions=layout.household_partitions,
                           internal=True, **raw)  # fmt: skip
    out_topic = app.topic(SUPPORT_MEASURES.name, **raw)
    dead_topic = app.topic(DEAD_LETTERS.name, **raw)
    # Table values are our own JSON bytes (table_codec); the app's serializers are raw for them.
    profiles = app.Table("support-profiles", partitions=layout.household_partitions,
                         key_type=bytes, value_type=bytes)  # fmt: skip
    pools = app.Table("support-pools", partitions=layout.household_partitions,
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
        await dead_topic.send(key=message.topic.encode(),
                              value=codec.encode(avro.DEAD_LETTER, record))  # fmt: skip
        metrics.dead_letters.labels(kind).inc()

    async def decode(event: Any, expected: str) -> dict | None:
        try:
            return codec.decode(event.value, expected=expected).record
        except UnknownSchema as exc:
            await dead_letter(event, "UNKNOWN_SCHEMA", str(exc))
        except ContractError as exc:
            await dead_letter(event, "UNDECODABLE", str(exc))
        return None

    async def to_pool(pool: str, command: dict) -> None:
        await pool_topic.send(key=pool.encode(), value=json.dumps(command).encode())

    async def emit(decision) -> None:
        record = avro.recommended_record(decision, now())
        await out_topic.send(key=record["household_id"].encode(),
                             value=codec.encode(avro.MEASURE_STEP, record))  # fmt: skip
        if isinstance(decision, Recommendation) or not isinstance(decision, Waiting):
            measure_type = getattr(decision, "need", decision).measure_type
            metrics.recommendations.labels(measure_type).inc()

    expected = {HOUSEHOLD_REGISTRY.name: "HouseholdRegistryRecorded", RISK.name: "RiskAssessed",
                MEASURES.name: "MeasureStepRecorded"}  # fmt: skip
    translate = {HOUSEHOLD_REGISTRY.name: avro.registry_from, RISK.name: avro.assessment_from,
                 MEASURES.name: avro.step_from}  # fmt: skip

    @app.agent(household_topic)
    async def households(stream):
        async for event in stream.events():
            topic = event.message.topic
            record = await decode(event, expected[topic])
            if record is None:
                continue
            try:
                fact = translate[topic](record)
            except (KeyError, TypeError, ValueError) as exc:
                await dead_letter(event, "INVALID", f"{type(exc).__name__}: {exc}")
                continue
            household_id = record["household_id"]
            stored = profiles.get(household_id.encode())
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
                        await to_pool(fact.pool, {"release": fact.measure_id, "step": fact.step})
            for need in plan(profile, catalogue):
                profile = apply(profile, MeasureRequested(need.measure_id, need.catalogue_id,
                                                          need.pool))  # fmt: skip
                if need.pool is None:
                    await emit(need)
                else:
                    await to_pool(need.pool, {"need": need_to_json(need)})
            profiles[household_id.encode()] = dump_profile(profile)

    @app.agent(cadre_topic)
    async def cadres(stream):
        pairing = next(m.pool for m in catalogue.measures if m.type == "PAIRING")
        async for event in stream.events():
            record = await decode(event, "CadreRegistryRecorded")
            if record is None:
                continue
            cadre = avro.cadre_from(record)
            instance = catalogue.pools[pairing].instance(cadre.township)
            await to_pool(instance, {"cadre": list(vars(cadre).values())})

    @app.agent(pool_topic)
    async def pool_owner(stream):
        async for event in stream.events():
            instance = event.key.decode()
            command = json.loads(event.value)
            stored = pools.get(event.key)
            state = load_pool(stored) if stored else PoolState(instance)
            try:
                capacity = catalogue.capacity(instance)
            except KeyError:
                await dead_letter(
                    event, "NOT_APPLICABLE", f"pool {instance!r} is not in catalogue {catalogue.id}"
                )
                continue
            if "need" in command:
                state, decisions = allocate(state, need_from_json(command["need"]), capacity)
            elif "release" in command:
                state, decisions = release(state, command["release"], capacity)
                metrics.releases.labels(command["step"]).inc()
            else:
                state, decisions = with_cadre(state, Cadre(*command["cadre"]))
            pools[event.key] = dump_pool(state)
            for decision in decisions:
                await emit(decision)
            metrics.pool_used.labels(instance).set(len(state.holders))
            metrics.waiting.labels(instance).set(len(state.waiting))
            metrics.pool_capacity.labels(instance).set(
                capacity if capacity is not None else state.cadre_capacity()
            )

    return app
