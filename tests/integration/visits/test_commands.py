"""The operator commands end to end: tokens issue/list/revoke against PostgreSQL, and a CSV
import that lands on the registry topic (or, with bad rows, writes nothing)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.cli import main
from services.contract.codec import Codec
from tests.cli_env import register_township
from tests.integration.visits.conftest import prepare_topics
from tests.unit.support.test_cadre_import import GOOD as ROSTER
from tests.unit.visits.test_household_import import BAD

pytestmark = pytest.mark.integration


@pytest.fixture
def env(monkeypatch, kafka_bootstrap: str, database_url: str) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("DATABASE_URL", database_url)


async def shouwang(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_tokens_issue_list_revoke(env, capsys, database_url) -> None:
    code = await shouwang(
        "tokens", "issue", "--kind", "cadre", "--holder", "x", "--township", "Nowhere"
    )
    assert code == 2 and "--township 'Nowhere'" in capsys.readouterr().err
    await register_township(database_url, "Gaofeng")
    code = await shouwang(
        "tokens", "issue", "--kind", "cadre", "--holder", "x", "--township", "Gaofen"
    )
    assert code == 2 and "did you mean Gaofeng?" in capsys.readouterr().err
    listed = await asyncio.to_thread(_listed_tokens, capsys)
    assert all(line.split()[2] != "x" for line in listed.splitlines())  # none was issued
    code = await shouwang(
        "tokens", "issue", "--kind", "cadre", "--holder", "cadre-cli", "--township", "Gaofeng"
    )
    assert code == 0
    out = capsys.readouterr().out
    token_id = out.split()[0]
    secret = re.search(r"token \(shown once, keep it secret\): (sw_\S+)", out).group(1)
    assert await shouwang("tokens", "list") == 0
    listed = capsys.readouterr().out
    assert token_id in listed and "townships=Gaofeng" in listed and secret not in listed
    assert await shouwang("tokens", "revoke", token_id) == 0
    assert "revoked" in capsys.readouterr().out
    assert await shouwang("tokens", "revoke", "nope") == 1
    code = await shouwang("tokens", "issue", "--kind", "feed", "--holder", "feed-x")
    assert code == 2 and "at least one --event-type" in capsys.readouterr().err


async def test_tokens_issue_with_request_limits_of_its_own(env, capsys) -> None:
    feed = (
        "tokens",
        "issue",
        "--kind",
        "feed",
        "--holder",
        "feed-bulk",
        "--event-type",
        "VisitRecorded",
    )
    code = await shouwang(*feed, "--rate", "0")
    assert code == 2 and "--rate: must be a number above 0" in capsys.readouterr().err
    code = await shouwang(*feed, "--max-concurrent", "0")
    assert code == 2 and "--max-concurrent: must be at least 1" in capsys.readouterr().err
    assert await shouwang(*feed, "--max-concurrent", "40", "--rate", "2.5", "--burst", "9") == 0
    token_id = capsys.readouterr().out.split()[0]
    listed = await asyncio.to_thread(_listed_tokens, capsys)
    [line] = [line for line in listed.splitlines() if line.startswith(token_id)]
    assert "concurrency=40 rate=2.5/s burst=9" in line


async def test_an_auditor_token_is_issued_logged_and_kept_free_of_event_types(
    env, capsys, database_url
) -> None:
    """`tokens issue --kind auditor`: every township unless narrowed, no event type (exit 2 for
    one, nothing recorded); its issue is on operator.actions with kind AUDITOR; the table itself
    refuses an auditor row with event types (migration 0012)."""
    await register_township(database_url, "Gaofeng")
    code = await shouwang("tokens", "issue", "--kind", "auditor", "--holder", "audit-cli")
    assert code == 0
    county = capsys.readouterr().out.split()[0]
    code = await shouwang(
        "tokens", "issue", "--kind", "auditor", "--holder", "audit-gf", "--township", "Gaofeng"
    )
    assert code == 0
    narrowed = capsys.readouterr().out.split()[0]
    code = await shouwang(
        "tokens", "issue", "--kind", "auditor", "--holder", "audit-w", "--event-type", "Visit"
    )
    assert code == 2 and "auditor token writes nothing" in capsys.readouterr().err
    listed = await asyncio.to_thread(_listed_tokens, capsys)
    lines = {line.split()[0]: line for line in listed.splitlines()}
    assert "auditor  audit-cli" in lines[county] and "townships=* types=none" in lines[county]
    assert "townships=Gaofeng types=none" in lines[narrowed]
    assert all("audit-w" not in line for line in lines.values())
    assert await shouwang("actions", "--subject", f"token:{county}") == 0
    [issued] = capsys.readouterr().out.splitlines()
    assert "TOKEN_ISSUED" in issued and "auditor audit-cli townships=* types=none" in issued
    connection = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.CheckViolationError, match="auditor_writes_nothing"):
            await connection.execute(
                "INSERT INTO api_tokens (token_id, token_sha256, kind, holder, event_types) "
                "VALUES ('audit-bad', $1, 'auditor', 'audit-bad', ARRAY['x'])",
                "0" * 64,
            )
        with pytest.raises(asyncpg.CheckViolationError, match="kind_check"):
            await connection.execute(
                "INSERT INTO api_tokens (token_id, token_sha256, kind, holder) "
                "VALUES ('kind-bad', $1, 'inspector', 'kind-bad')",
                "1" * 64,
            )
    finally:
        await connection.close()


def _listed_tokens(capsys) -> str:
    assert main(["tokens", "list"]) == 0
    return capsys.readouterr().out


async def _registry_end_offsets(
    bootstrap: str, topic: str = "household.registry"
) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    assert partitions
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        # aiokafka 0.14: stop() re-raises the CancelledError of its internal reset task when
        # that task has not run yet; let it run once before stopping.
        await asyncio.sleep(0)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def _registry_records(
    bootstrap: str, since: dict[int, int], topic: str = "household.registry"
) -> list[dict]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    codec = Codec.default()
    try:
        ends = await _registry_end_offsets(bootstrap, topic)
        partitions = [TopicPartition(topic, p) for p in ends]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, since.get(tp.partition, 0))
        records = []
        async with asyncio.timeout(30):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp.partition]]:
                batch = await consumer.getmany(*partitions, timeout_ms=500)
                for messages in batch.values():
                    records += [codec.decode(m.value).record for m in messages]
        return records
    finally:
        await consumer.stop()


async def test_csv_import_lands_or_writes_nothing(
    env, capsys, tmp_path: Path, kafka_bootstrap
) -> None:
    await prepare_topics(kafka_bootstrap)
    path = tmp_path / "huzhang.csv"
    path.write_text(BAD, encoding="utf-8")
    before = await _registry_end_offsets(kafka_bootstrap)

    code = await shouwang("import", "households", str(path), "--as-of", "2020-04-01")
    assert code == 1
    err = capsys.readouterr().err
    assert "line 4: lifted_year" in err and "nothing imported" in err
    assert await _registry_end_offsets(kafka_bootstrap) == before

    code = await shouwang(
        "import",
        "households",
        str(path),
        "--as-of",
        "2020-04-01",
        "--skip-bad",
        "--actor",
        "operator:wang",
    )
    assert code == 0
    assert "imported 2 of 5 rows, skipped 3 bad" in capsys.readouterr().out
    records = await _registry_records(kafka_bootstrap, before)
    assert sorted(r["household_id"] for r in records) == ["H-1", "H-2"]
    assert {(r["source"], r["actor"]) for r in records} == {("IMPORT", "operator:wang")}
    # Personal data lands sealed; the household's key is in PostgreSQL, not in the log.
    assert all(r["personal"] is None and r["personal_sealed"]["key_id"] for r in records)


async def test_cadre_roster_import_lands_sealed(env, capsys, tmp_path: Path, kafka_bootstrap):
    await prepare_topics(kafka_bootstrap)
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER, encoding="utf-8")
    before = await _registry_end_offsets(kafka_bootstrap, "cadre.registry")

    code = await shouwang("import", "cadres", str(path), "--actor", "operator:li")
    assert code == 0, capsys.readouterr().err
    assert "imported 2 of 2 rows" in capsys.readouterr().out
    records = await _registry_records(kafka_bootstrap, before, "cadre.registry")
    assert sorted(r["cadre_id"] for r in records) == ["c-001", "c-002"]
    assert {(r["source"], r["actor"]) for r in records} == {("IMPORT", "operator:li")}
    assert all(r["personal"] is None and r["personal_sealed"]["key_id"] for r in records)


async def test_a_village_level_token_is_checked_against_the_registry_stored_and_logged(
    env, capsys, database_url
) -> None:
    """`tokens issue --village` (repeatable): villages of the token's one township, as the
    registries know them (exit 2 naming the village, nothing issued, otherwise); the table keeps
    them, `tokens list` and `actions` show them (operator_action v4), migration 0013 refuses a
    village scope on anything but a one-township cadre row."""
    await register_township(database_url, "Gaofeng", "高峰村", "新民村")
    await register_township(database_url, "大石乡", "大石村")
    issue = ("tokens", "issue", "--kind", "cadre", "--holder")
    refused = {
        "needs at least one --township": (*issue, "v-x", "--village", "高峰村"),
        "no registered household or cadre of 'Gaofeng'": (
            *issue, "v-x", "--township", "Gaofeng", "--village", "大石村",
        ),
        "did you mean 新民村?": (*issue, "v-x", "--township", "Gaofeng", "--village", "新民"),
        "an operator token takes none": (
            "tokens", "issue", "--kind", "operator", "--holder", "v-x", "--village", "高峰村",
        ),
        "exactly one --township, its villages' own": (
            *issue, "v-x", "--township", "Gaofeng", "--township", "大石乡", "--village", "大石村",
        ),
    }  # fmt: skip
    for expected, argv in refused.items():
        assert await shouwang(*argv) == 2, expected
        assert expected in capsys.readouterr().err
    code = await shouwang(
        *issue, "v-gf", "--township", "Gaofeng", "--village", "新民村", "--village", "高峰村"
    )
    assert code == 0
    token_id = capsys.readouterr().out.split()[0]
    listed = await asyncio.to_thread(_listed_tokens, capsys)
    lines = {line.split()[0]: line for line in listed.splitlines()}
    assert "townships=Gaofeng villages=新民村,高峰村" in lines[token_id]
    assert all("v-x" not in line for line in lines.values())  # no refused one was issued
    assert await shouwang("actions", "--subject", f"token:{token_id}") == 0
    [issued] = capsys.readouterr().out.splitlines()
    assert "TOKEN_ISSUED" in issued and "villages=新民村,高峰村" in issued
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval(
            "SELECT villages FROM api_tokens WHERE token_id = $1", token_id
        ) == ["新民村", "高峰村"]
        for kind, townships in (("operator", None), ("cadre", ["Gaofeng", "大石乡"])):
            with pytest.raises(asyncpg.CheckViolationError, match="villages_of_one_township"):
                await connection.execute(
                    "INSERT INTO api_tokens (token_id, token_sha256, kind, holder, townships, "
                    "villages) VALUES ('village-bad', $1, $2, 'v-bad', $3, ARRAY['高峰村'])",
                    "2" * 64,
                    kind,
                    townships,
                )
    finally:
        await connection.close()
    assert await shouwang("tokens", "revoke", token_id) == 0
    assert "villages=新民村,高峰村" in capsys.readouterr().out
    # A village service point: one village, applications (ReviewDecided) only.
    point = (*issue, "sp-gf", "--township", "Gaofeng", "--service-point")
    assert await shouwang(*point, "--village", "新民村", "--village", "高峰村") == 2
    assert "one --township and one --village" in capsys.readouterr().err
    assert await shouwang(*point, "--village", "高峰村", "--event-type", "VisitRecorded") == 2
    assert "no other --event-type" in capsys.readouterr().err
    assert await shouwang(*point, "--village", "高峰村") == 0
    point_id = capsys.readouterr().out.split()[0]
    listed = await asyncio.to_thread(_listed_tokens, capsys)
    [line] = [line for line in listed.splitlines() if line.startswith(point_id)]
    assert "villages=高峰村 service-point types=ReviewDecided" in line
    assert await shouwang("actions", "--subject", f"token:{point_id}") == 0
    assert "villages=高峰村 service-point" in capsys.readouterr().out
    connection = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.CheckViolationError, match="service_point_of_one_village"):
            await connection.execute(
                "INSERT INTO api_tokens (token_id, token_sha256, kind, holder, townships, "
                "service_point) VALUES ('sp-bad', $1, 'cadre', 'sp-bad', ARRAY['Gaofeng'], true)",
                "3" * 64,
            )
    finally:
        await connection.close()
