"""Personal-data access is audited, against the real broker and PostgreSQL, through the CLI.

`shouwang personal show` records who opened whose data and why on operator.actions before it
prints anything, and prints nothing when the broker does not acknowledge that record;
`personal forget` is an event there too, written before the key is deleted (and the key is kept
when it cannot be written); `shouwang actions --subject` lists both. A record sealed in the
format before AES-SIV (a fixture the old code wrote) still opens end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import NewTopic

from services.cli import main
from services.contract.codec import Codec
from services.contract.personal import FORMAT_GCM_V1, DataKey, Subject, master_key_id, wrap_key
from services.contract.topics import CADRES, HOUSEHOLD_REGISTRY, OPERATOR_ACTIONS, TopicLayout
from services.platform.actions.log import read_actions
from services.platform.kafka import clients as kafka_clients
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from services.platform.kafka.producer import KafkaSink
from services.platform.personal.keys import CachedKeys, PostgresKeyStore
from services.platform.personal.sealer import PersonalSealer
from services.platform.postgres.migrate import apply_migrations
from tests import records
from tests.integration.personal.test_crypto_shredding import partition_counts

pytestmark = pytest.mark.integration
CODEC = Codec.default()
HOUSEHOLDS = HOUSEHOLD_REGISTRY.event_type
SEALED_V1 = json.loads(
    (Path(__file__).resolve().parents[2] / "unit" / "contract" / "sealed_v1.json").read_text(
        encoding="utf-8"
    )
)
PERSONAL = {"head_name": "审计某甲", "citizen_id": "AUDIT-500228-0001", "phone": "AUDIT-PHONE"}


def environment(monkeypatch, bootstrap: str, database_url: str, partition_count: int) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SHOUWANG_PARTITIONS", str(partition_count))


async def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`shouwang ARGV` as a user runs it (parser, settings from the environment, exit code),
    off this event loop: the CLI runs its own."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def seal_and_produce(
    bootstrap: str, database_url: str, master: bytes, household: str
) -> dict:
    _, record = records.registry(household, records.at("2021-03-01"), personal=dict(PERSONAL))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        sealer = PersonalSealer(CachedKeys(PostgresKeyStore(pool, master)))
        sealed = await sealer.seal(HOUSEHOLDS, record)
    finally:
        await pool.close()
    sink = KafkaSink(bootstrap, timeout=60, client_id="test-access-audit")
    try:
        await sink.send(
            HOUSEHOLD_REGISTRY.name, household.encode(), CODEC.encode(HOUSEHOLDS, sealed)
        )
    finally:
        await sink.close()
    return sealed


async def personal_actions(bootstrap: str, subject: str) -> list[dict]:
    return [
        a
        for a in await read_actions(bootstrap, CODEC, subject)
        if a["action"].startswith("PERSONAL_DATA_")
    ]


async def test_show_and_forget_are_recorded_first_and_listed_by_subject(
    kafka_bootstrap, database_url, personal_master_key, monkeypatch, capsys
):
    # Another test may have made them with its own layout: the count is read from the broker.
    with contextlib.suppress(TopicMismatch):
        await ensure_topics(kafka_bootstrap, TopicLayout(), (HOUSEHOLD_REGISTRY, CADRES))
    await apply_migrations(database_url)
    count = (await partition_counts(kafka_bootstrap, [HOUSEHOLD_REGISTRY.name]))[
        HOUSEHOLD_REGISTRY.name
    ]
    environment(monkeypatch, kafka_bootstrap, database_url, count)
    household = f"audit-{uuid.uuid4().hex[:8]}"
    subject = f"household:{household}"
    sealed = await seal_and_produce(kafka_bootstrap, database_url, personal_master_key, household)

    # Bad input is refused by name before anything is read or recorded.
    code, out, err = await cli(capsys, "personal", "show", household, "--reason", "  ")
    assert code == 2 and "--reason: required" in err and out == ""
    code, out, err = await cli(
        capsys, "personal", "show", household, "--reason", "x", "--actor", "two words"
    )
    assert code == 2 and "--actor: no spaces" in err
    assert await personal_actions(kafka_bootstrap, subject) == []

    code, out, err = await cli(
        capsys, "personal", "show", household, "--reason", "appeal 2026-31", "--json"
    )
    assert code == 0, err
    shown = json.loads(out)
    assert [e["personal"] for e in shown["events"]] == [PERSONAL]
    [opened] = await personal_actions(kafka_bootstrap, subject)
    assert str(opened["event_id"]) == shown["access_event_id"] and shown["access_event_id"] in err
    assert opened["action"] == "PERSONAL_DATA_OPENED"
    assert opened["actor"] == f"operator:{getpass.getuser()}"
    assert opened["reason"] == "appeal 2026-31" and opened["source"] == "OPERATOR"
    assert opened["personal"] == {
        "subject_kind": "HOUSEHOLD",
        "subject_id": household,
        "event_ids": [str(sealed["event_id"])],
        "key_id": None,
    }
    frame = json.dumps(opened, default=str, ensure_ascii=False)
    assert not any(value in frame for value in PERSONAL.values())

    # A second opening is a second event, by whoever ran it.
    code, out, _ = await cli(
        capsys, "personal", "show", household, "--reason", "callback", "--actor", "operator:wang"
    )
    assert code == 0 and PERSONAL["citizen_id"] in out

    code, out, err = await cli(
        capsys, "personal", "forget", household, "--actor", "operator:li", "--reason", "ruling 9"
    )
    assert code == 0, err
    code, _, err = await cli(
        capsys, "personal", "forget", household, "--actor", "operator:li", "--reason", "ruling 9"
    )
    assert code == 0, "a second forget reports the erasure again and records nothing new"
    actions = await personal_actions(kafka_bootstrap, subject)
    assert [(a["action"], a["actor"]) for a in actions] == [
        ("PERSONAL_DATA_OPENED", f"operator:{getpass.getuser()}"),
        ("PERSONAL_DATA_OPENED", "operator:wang"),
        ("PERSONAL_DATA_FORGOTTEN", "operator:li"),
    ]
    forgotten = actions[-1]
    assert forgotten["personal"]["key_id"] == sealed["personal_sealed"]["key_id"]
    assert forgotten["reason"] == "ruling 9"

    # Erased data shown is no data: the opening is still recorded, with no event ids.
    code, out, _ = await cli(capsys, "personal", "show", household, "--reason", "check erasure")
    assert code == 0 and "erased on" in out and PERSONAL["head_name"] not in out
    after = await personal_actions(kafka_bootstrap, subject)
    assert (
        after[-1]["action"] == "PERSONAL_DATA_OPENED" and after[-1]["personal"]["event_ids"] == []
    )

    # The auditor's view, by the recorded subject or by the bare household id.
    for name in (subject, household):
        code, out, err = await cli(capsys, "actions", "--subject", name)
        assert code == 0, err
        lines = out.splitlines()
        assert len(lines) == 4, out
        assert "PERSONAL_DATA_OPENED" in lines[0] and "reason: appeal 2026-31" in lines[0]
        assert "1 registry event(s) shown" in lines[0]
        assert "PERSONAL_DATA_FORGOTTEN" in lines[2] and "by operator:li" in lines[2]
        assert f"key {forgotten['personal']['key_id']} deleted" in lines[2]


async def test_a_record_sealed_in_the_old_format_opens_through_personal_show(
    kafka_bootstrap, database_url, personal_master_key, monkeypatch, capsys
):
    with contextlib.suppress(TopicMismatch):
        await ensure_topics(kafka_bootstrap, TopicLayout(), (HOUSEHOLD_REGISTRY, CADRES))
    await apply_migrations(database_url)
    count = (await partition_counts(kafka_bootstrap, [HOUSEHOLD_REGISTRY.name]))[
        HOUSEHOLD_REGISTRY.name
    ]
    environment(monkeypatch, kafka_bootstrap, database_url, count)
    fixture = SEALED_V1["records"][0]
    frame = bytes.fromhex(fixture["frame_hex"])
    record = CODEC.decode(frame).record
    household = record["household_id"]
    assert record["personal_sealed"]["algorithm"] == FORMAT_GCM_V1
    # The fixture's data key, stored as the key store stores keys (wrapped by this master key).
    key = DataKey(SEALED_V1["key_id"], bytes.fromhex(SEALED_V1["key_hex"]))
    subject = Subject("household", household)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO personal_keys (subject_kind, subject_id, key_id, master_key_id, "
            "wrapped_key) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            subject.kind,
            household,
            uuid.UUID(key.key_id),
            master_key_id(personal_master_key),
            wrap_key(personal_master_key, subject, key, os.urandom(12)),
        )
    finally:
        await conn.close()
    sink = KafkaSink(kafka_bootstrap, timeout=60, client_id="test-access-audit")
    try:
        await sink.send(HOUSEHOLD_REGISTRY.name, household.encode(), frame)
    finally:
        await sink.close()

    code, out, err = await cli(
        capsys, "personal", "show", household, "--reason", "old format", "--json"
    )
    assert code == 0, err
    events = json.loads(out)["events"]
    assert {"status": "sealed", "personal": fixture["personal"]}.items() <= events[-1].items()


async def test_nothing_is_shown_or_erased_when_the_access_cannot_be_recorded(
    local_kafka_factory, database_url, personal_master_key, monkeypatch, capsys
):
    # A broker that takes registry records but refuses every operator action: its
    # operator.actions takes no record over 64 bytes (the broker answers MESSAGE_TOO_LARGE).
    bootstrap = await asyncio.to_thread(local_kafka_factory().start, 180)
    await ensure_topics(bootstrap, TopicLayout(), (HOUSEHOLD_REGISTRY, CADRES))
    admin = kafka_clients.admin(bootstrap, client_id="test-access-audit")
    await kafka_clients.start(admin, bootstrap)
    try:
        response = await admin.create_topics(
            [
                NewTopic(
                    OPERATOR_ACTIONS.name,
                    3,
                    1,
                    topic_configs={**OPERATOR_ACTIONS.config, "max.message.bytes": "64"},
                )
            ]
        )
        assert [e[1] for e in response.topic_errors] == [0]
    finally:
        await admin.close()
    await apply_migrations(database_url)
    environment(monkeypatch, bootstrap, database_url, TopicLayout().household_partitions)
    monkeypatch.setenv("SHOUWANG_VISITS_REQUEST_TIMEOUT_SECONDS", "5")
    household = f"audit-closed-{uuid.uuid4().hex[:8]}"
    sealed = await seal_and_produce(bootstrap, database_url, personal_master_key, household)

    code, out, err = await cli(capsys, "personal", "show", household, "--reason", "r", "--json")
    assert code == 3
    assert out == "" and not any(v in err for v in PERSONAL.values())
    assert "nothing shown" in err and "could not be recorded on operator.actions" in err

    code, out, err = await cli(
        capsys, "personal", "forget", household, "--actor", "operator:li", "--reason", "r"
    )
    assert code == 3 and "nothing erased" in err and "the key was kept" in err
    conn = await asyncpg.connect(database_url)
    try:
        kept = await conn.fetchval(
            "SELECT key_id FROM personal_keys WHERE subject_kind = 'household' AND subject_id = $1",
            household,
        )
        shredded = await conn.fetchval(
            "SELECT count(*) FROM personal_keys_shredded WHERE subject_id = $1", household
        )
    finally:
        await conn.close()
    assert str(kept) == sealed["personal_sealed"]["key_id"] and shredded == 0
    # Nothing reached the topic either; the same broker takes other records all along.
    assert await read_actions(bootstrap, CODEC, f"household:{household}") == []
    await seal_and_produce(bootstrap, database_url, personal_master_key, household + "-other")
