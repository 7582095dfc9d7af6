"""Replay --verify on the real broker and database: the seed scenarios and a few thousand
generated events, the assessments a monitoring worker emits for them and their projection;
no difference, then exactly the differences of a deliberately corrupted read model; and a
household carried over at the 2021 policy switch, re-derived by replay and explained as of a
date on each side of it."""

from __future__ import annotations

import argparse
import io
import itertools
import json
import re
import time
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.audit.commands import run_explain_async, run_replay_async
from services.contract.inputs import MONITORING_INPUTS
from services.contract.topics import RISK, TopicLayout, topic_for
from services.monitoring.adapters.policy_files import load_policies
from services.platform.config import Settings
from services.platform.kafka.admin import ensure_topics
from services.platform.kafka.log import LogRecord
from services.platform.postgres.migrate import apply_migrations
from services.readmodel.projection import rows_for
from services.readmodel.statements import STATEMENTS
from services.tools.simulation.parameters import SimulationParameters
from services.tools.simulation.stream import generate
from tests.records import at, visit
from tests.seed_households import (
    general_key_2020,
    monitored_then_eliminated,
    wu_chickens,
    zhou_uremia,
)
from tests.unit.audit.emitter import CODEC, emitted

pytestmark = pytest.mark.integration
POLICIES = load_policies()


def contract_records(prefix: str, limit: int = 3000):
    seed = zhou_uremia(prefix + "zhou") + wu_chickens(prefix + "wu")
    seed += monitored_then_eliminated(prefix + "elim")
    # included as GENERAL_KEY in 2020; a visit in 2021 has the worker (event clock) assess it
    # under national-2021, which has no such category: it must be carried over
    seed += [*general_key_2020(prefix + "key"), switch_visit(prefix + "key")]
    out = [(f"shouwang.events.{t}", r) for t, r in seed]
    generated = generate(SimulationParameters(seed=7, scale=0.04))
    for event in itertools.islice((e for e in generated if "household_id" in e.record), limit):
        record = dict(event.record)
        record["household_id"] = prefix + record["household_id"]
        out.append((event.event_type, record))
    return out


def switch_visit(household_id: str):
    return visit(household_id, at("2021-02-03"), visit_id="v-2021", income=5600)


async def produce(bootstrap: str, records) -> list[LogRecord]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sent = []
        for event_type, record in records:
            frame = CODEC.encode(event_type, record)
            topic = RISK.name if event_type == RISK.event_type else topic_for(event_type).name
            key = record["household_id"].encode()
            sent.append((topic, key, frame, await producer.send(topic, frame, key=key)))
        logged = []
        for topic, key, frame, future in sent:
            m = await future
            logged.append(LogRecord(topic, m.partition, m.offset, m.timestamp, key, frame))
        return logged
    finally:
        await producer.stop()


async def project(url: str, logged: list[LogRecord]) -> None:
    """What the projector does with these records (its own row functions and statements)."""
    conn = await asyncpg.connect(url)
    try:
        for r in logged:
            decoded = CODEC.decode(r.value)
            for statement, params in rows_for(r.topic, decoded.event_type, decoded.record):
                if statement in (
                    "household_registry",
                    "household_visit",
                    "household_risk",
                    "assessment",
                ):
                    await conn.execute(STATEMENTS[statement], *params)
    finally:
        await conn.close()


def args(prefix: str, **extra) -> argparse.Namespace:
    base = dict(
        start=None,
        to=None,
        township=None,
        household_prefix=prefix,
        archive=None,
        verify=True,
        no_readmodel=False,
        policy=None,
        processes=1,
    )
    return argparse.Namespace(**{**base, **extra})


async def replay(bootstrap, url, prefix, processes=1):
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": url})
    out, err = io.StringIO(), io.StringIO()
    code = await run_replay_async(args(prefix, processes=processes), settings, out, err)
    return code, out.getvalue() + err.getvalue()


def answer(output: str) -> list[str]:
    """A replay's answer: its output without the rate and the progress lines."""
    return [re.sub(r"\(\d[\d,]* events/s\)", "", line) for line in output.splitlines()
            if not line.startswith("replay:")]  # fmt: skip


async def explained(bootstrap: str, url: str, household: str, as_of: str) -> dict:
    """`shouwang explain HOUSEHOLD --as-of DATE --json`, as the command runs it."""
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": url})
    options = dict(household=household, as_of=as_of, known_at=None, json=True, archive=None,
                   policy=None)  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    code = await run_explain_async(argparse.Namespace(**options), settings, out, err)
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


async def raw_read_rate(bootstrap: str) -> float:
    """Events/second of a bare aiokafka read of the same topics (no decoding, no filter)."""
    topics = [t.name for t in MONITORING_INPUTS] + [RISK.name]
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None)
    started, count = time.monotonic(), 0  # as replay's rate: connecting included
    await consumer.start()
    try:
        consumer.unsubscribe()
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            fetched = await consumer.getmany(timeout_ms=500, max_records=5000)
            count += sum(len(v) for v in fetched.values())
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return count / (time.monotonic() - started)
    finally:
        await consumer.stop()


async def test_replay_verify_finds_nothing_then_exactly_the_corruptions(
    kafka_bootstrap, database_url
):
    prefix = f"au{uuid.uuid4().hex[:6]}-"
    await ensure_topics(kafka_bootstrap, TopicLayout())
    await apply_migrations(database_url)
    logged = await produce(kafka_bootstrap, contract_records(prefix))
    risk_records = emitted(logged, POLICIES)
    produced_risk = await produce(
        kafka_bootstrap,
        [("shouwang.events.RiskAssessed", CODEC.decode(r.value).record) for r in risk_records],
    )
    await project(database_url, logged + produced_risk)

    code, output = await replay(kafka_bootstrap, database_url, prefix)
    assert code == 0, output
    assert f"{len(produced_risk)} emitted assessments re-derived" in output
    # In three processes, each a share of the partitions (and its own read-model queries):
    # the same answer, line for line.
    code, in_shares = await replay(kafka_bootstrap, database_url, prefix, processes=3)
    assert code == 0 and answer(in_shares) == answer(output), in_shares
    print(
        output.splitlines()[0],
        f"raw aiokafka read: {await raw_read_rate(kafka_bootstrap):,.0f} events/s",
    )

    # The carried-over assessment was emitted, re-derived above, and explain tells both sides.
    key = prefix + "key"
    switched = [
        a for r in risk_records if (a := CODEC.decode(r.value).record)["household_id"] == key
    ][-1]
    assert (switched["policy_version"], switched["workflow"], switched["category"]) == (
        "national-2021",
        "MONITORED",
        "MARGINAL",
    )
    assert "policy_transition" in {x["code"] for x in switched["reasons"]}
    before = await explained(kafka_bootstrap, database_url, key, "2020-12-31")
    after = await explained(kafka_bootstrap, database_url, key, "2021-07-01")
    assert (before["assessment"]["policy_version"], before["workflow"]["status"]) == (
        "dianjiang-2020",
        "MONITORED",
    )
    assert before["assessment"]["category"] == "GENERAL_KEY"
    assert (after["assessment"]["policy_version"], after["workflow"]["status"]) == (
        "national-2021",
        "MONITORED",
    )
    assert after["assessment"]["category"] == "MARGINAL"
    (transition,) = [r for r in after["assessment"]["reasons"] if r["code"] == "policy_transition"]
    assert transition["message"].startswith("dianjiang-2020 → national-2021 on 2021-01-01")
    assert after["workflow"]["decision_due"] == "2021-01-16"
    assert "decision_overdue" in after["assessment"]["overdue"]

    conn = await asyncpg.connect(database_url)
    try:
        victim = await conn.fetchrow(
            "SELECT assessment_id, household_id FROM assessments WHERE household_id LIKE $1 "
            "ORDER BY assessment_id LIMIT 1",
            prefix + "%",
        )
        await conn.execute("DELETE FROM assessments WHERE assessment_id = $1", victim[0])
        await conn.execute(
            "UPDATE households SET category = 'SUDDEN_HARDSHIP' WHERE household_id = $1",
            prefix + "elim",
        )
    finally:
        await conn.close()
    code, output = await replay(kafka_bootstrap, database_url, prefix)
    assert code == 1
    code, in_shares = await replay(kafka_bootstrap, database_url, prefix, processes=2)
    assert code == 1 and answer(in_shares) == answer(output), in_shares
    lines = [line for line in output.splitlines() if line.startswith(prefix)]
    assert len(lines) == 2, output
    assert any(
        f'{victim[1]}  assessments row: expected "{victim[0]}", found "missing"' in line
        for line in lines
    ), lines
    assert any(
        line.startswith(f"{prefix}elim  category:") and "SUDDEN_HARDSHIP" in line for line in lines
    ), lines
