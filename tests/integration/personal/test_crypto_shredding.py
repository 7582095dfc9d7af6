"""Crypto-shredding on the real broker and database: personal data is in the log only sealed,
`personal show` opens it, `personal forget` makes it unreadable for good, and the household's
risk history (explain, replay --verify) reads exactly as before."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import json
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.audit.commands import run_explain_async, run_replay_async
from services.contract.topics import HOUSEHOLD_REGISTRY, TopicLayout
from services.monitoring.adapters.policy_files import load_policies
from services.personal.commands import run_forget, run_show
from services.platform.config import Settings, VisitsSettings
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from services.platform.kafka.log import KafkaLog, LogRecord
from services.platform.personal.keys import CachedKeys, PostgresKeyStore
from services.platform.personal.sealer import PersonalSealer
from services.platform.postgres.migrate import apply_migrations
from tests.integration.audit.test_replay_verify import args as replay_args
from tests.integration.audit.test_replay_verify import produce, project
from tests.integration.visits.conftest import issue, running_app
from tests.seed_households import wu_chickens, zhou_uremia
from tests.unit.audit.emitter import CODEC, emitted
from tests.visits_samples import sample

pytestmark = pytest.mark.integration
POLICIES = load_policies()
# Values the door accepts (ASCII id, a phone number) yet found nowhere else by chance.
ZHOU = {"head_name": "周某勇甲", "citizen_id": "SEALED500231ZHOU", "phone": "+86 139-7312-0001"}
API = {"head_name": "钱某乙丙", "citizen_id": "SEALED500228API", "phone": "+86 139-7312-0002"}
SECRETS = [*ZHOU.values(), *API.values()]


async def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        return {t: len(consumer.partitions_for_topic(t) or ()) for t in topics}
    finally:
        await consumer.stop()


async def raw_record(bootstrap: str, topic: str, partition: int, offset: int) -> LogRecord:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        async with asyncio.timeout(60):
            while True:
                for m in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    if m.offset == offset:
                        return LogRecord(topic, partition, offset, m.timestamp, m.key, m.value)
    finally:
        await consumer.stop()


async def registry_frames(bootstrap: str, prefix: str) -> list[bytes]:
    frames = []
    async for batch in KafkaLog(bootstrap, [HOUSEHOLD_REGISTRY.name]).batches():
        frames += [r.value for r in batch if r.key and r.key.decode().startswith(prefix)]
    return frames


async def cli(run, settings: Settings, **options) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run(argparse.Namespace(**options), settings, out, err)
    return code, out.getvalue(), err.getvalue()


def show_options(household: str, json: bool = False) -> dict:
    return dict(subject_id=household, cadre=False, json=json, actor=None, reason="shredding test")


def explain_options(household: str) -> dict:
    return dict(
        household=household,
        as_of="2021-06-30",
        known_at=None,
        json=True,
        archive=None,
        policy=None,
    )


async def test_forget_shreds_personal_data_and_keeps_the_risk_history(
    kafka_bootstrap, database_url, personal_master_key, caplog
):
    caplog.set_level("DEBUG")
    prefix = f"cs{uuid.uuid4().hex[:6]}-"
    zhou, by_api = prefix + "zhou", prefix + "api"
    with contextlib.suppress(TopicMismatch):
        await ensure_topics(kafka_bootstrap, TopicLayout())
    await apply_migrations(database_url)
    # explain and show find a household's partition from the layout: use the topics' own.
    counts = await partition_counts(kafka_bootstrap, [HOUSEHOLD_REGISTRY.name])
    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "DATABASE_URL": database_url,
            "SHOUWANG_PARTITIONS": str(counts[HOUSEHOLD_REGISTRY.name]),
        }
    )

    # The seed households' registry rows sealed as the imports and the simulation seal them.
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        sealer = PersonalSealer(CachedKeys(PostgresKeyStore(pool, personal_master_key)))
        records = []
        for event_type, record in zhou_uremia(zhou) + wu_chickens(prefix + "wu"):
            full = f"shouwang.events.{event_type}"
            if event_type == "HouseholdRegistryRecorded" and record["household_id"] == zhou:
                record = {**record, "personal": dict(ZHOU)}
            records.append((full, await sealer.seal(full, record)))
    finally:
        await pool.close()
    logged = await produce(kafka_bootstrap, records)

    # One more household through the visits API, read back as it lies in the log.
    async with running_app(kafka_bootstrap, database_url, VisitsSettings()) as (client, api_pool):
        secret = await issue(api_pool, "operator", "op-1")
        body = sample("households", household_id=by_api, personal=dict(API))
        response = await client.post(
            "/v1/households", json=body, headers={"Authorization": f"Bearer {secret}"}
        )
        assert response.status == 202, await response.text()
        answer = await response.json()
    logged.append(
        await raw_record(kafka_bootstrap, answer["topic"], answer["partition"], answer["offset"])
    )
    risk = emitted(logged, POLICIES)
    produced_risk = await produce(
        kafka_bootstrap,
        [("shouwang.events.RiskAssessed", CODEC.decode(r.value).record) for r in risk],
    )
    await project(database_url, logged + produced_risk)

    # No personal value anywhere in the registry topic's bytes for these households.
    frames = await registry_frames(kafka_bootstrap, prefix)
    assert len(frames) == 3  # zhou, wu and the API's household
    for frame in frames:
        for value in SECRETS:
            assert value.encode("utf-8") not in frame

    code, replayed, _ = await cli(run_replay_async, settings, **vars(replay_args(prefix)))
    assert code == 0, replayed
    code, explained, err = await cli(run_explain_async, settings, **explain_options(zhou))
    assert code == 0, err
    assert json.loads(explained)["assessment"]["reasons"], "zhou must have a risk history"

    code, shown, _ = await cli(run_show, settings, **show_options(zhou, json=True))
    assert code == 0
    [event] = json.loads(shown)["events"]
    assert (event["status"], event["personal"]) == ("sealed", ZHOU)
    code, shown, _ = await cli(run_show, settings, **show_options(by_api))
    assert code == 0 and all(value in shown for value in API.values()), shown

    forget = dict(subject_id=zhou, cadre=False, actor="op-9", reason="erasure request 2026-17")
    code, said, err = await cli(run_forget, settings, **forget)
    assert code == 0, err
    assert "op-9" in said
    code, _, err = await cli(run_forget, settings, **forget)
    assert code == 0, "a second forget reports the erasure again"

    code, shown, _ = await cli(run_show, settings, **show_options(zhou))
    assert code == 0
    today = dt.datetime.now(dt.UTC).date()
    assert any(
        f"erased on {day.isoformat()} by op-9" in shown
        for day in (today, today - dt.timedelta(days=1))
    ), shown
    assert not any(value in shown for value in ZHOU.values())
    code, shown, _ = await cli(run_show, settings, **show_options(by_api))
    assert all(value in shown for value in API.values()), "only zhou's key was shredded"

    # The risk history reads exactly as before the erasure.
    code, explained_after, err = await cli(run_explain_async, settings, **explain_options(zhou))
    assert code == 0, err
    assert explained_after == explained
    code, replayed_after, _ = await cli(run_replay_async, settings, **vars(replay_args(prefix)))
    assert code == 0, replayed_after
    assert summary(replayed_after) == summary(replayed)

    for value in SECRETS:
        assert value not in caplog.text


def summary(output: str) -> list[str]:
    """Replay's findings without its timing figures."""
    return [line for line in output.splitlines() if "/s" not in line and " s " not in line]
