"""Against the real broker and PostgreSQL: operator commands leave their events in the log.

Tokens issued and revoked with `shouwang tokens` are on operator.actions with their actor (and
never their secret); no token exists without its issue event; catalogue activation records a
catalogue's content once, whoever (operator command or support worker start) comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import hashlib
import re
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.cli import main
from services.contract.catalogue import DEFAULT_CATALOGUE
from services.contract.catalogue_changes import load_with_content
from services.contract.codec import Codec
from services.contract.topics import OPERATOR_ACTIONS, TopicLayout
from services.platform.actions.log import read_actions
from services.platform.auth.tokens import hash_secret
from services.platform.config import Settings
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from services.platform.kafka.log import KafkaLog
from services.platform.postgres.migrate import apply_migrations
from services.support.catalogue_activation import activate_at_start
from tests.cli_env import register_township
from tests.integration.readmodel.test_projector import start_projector, wait_for

pytestmark = pytest.mark.integration
CODEC = Codec.default()


@pytest.fixture
def env(monkeypatch, kafka_bootstrap: str, database_url: str) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("DATABASE_URL", database_url)


@pytest.fixture
async def read_model(database_url: str) -> AsyncIterator[str]:
    """A private database on the session server (migrated, then dropped)."""
    name = f"ops_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    await apply_migrations(url)
    try:
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def shouwang(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def actions_of(bootstrap: str, subject: str) -> list[dict]:
    return await read_actions(bootstrap, CODEC, subject)


async def raw_log(bootstrap: str) -> list[bytes]:
    values = []
    async for batch in KafkaLog(bootstrap, [OPERATOR_ACTIONS.name]).batches():
        values += [(r.key or b"") + (r.value or b"") for r in batch]
    return values


async def token_row(database_url: str, holder: str) -> list[asyncpg.Record]:
    await apply_migrations(database_url)  # a refused command may be the first to run
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(
            "SELECT token_id, revoked_at FROM api_tokens WHERE holder = $1", holder
        )
    finally:
        await connection.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_issue_and_revoke_are_logged_with_the_actor_and_never_the_secret(
    env, capsys, kafka_bootstrap, database_url
) -> None:
    await register_township(database_url, "Gaofeng")
    holder = unique("cadre")
    code = await shouwang("tokens", "issue", "--kind", "cadre", "--holder", holder,
                          "--township", "Gaofeng", "--note", "new phone",
                          "--actor", "operator:li")  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    token_id = out.split()[0]
    secret = re.search(r"token \(shown once, keep it secret\): (sw_\S+)", out).group(1)

    [issued] = await actions_of(kafka_bootstrap, f"token:{token_id}")
    assert (issued["action"], issued["actor"], issued["source"]) == (
        "TOKEN_ISSUED", "operator:li", "OPERATOR",
    )  # fmt: skip
    assert issued["token"]["holder"] == holder and issued["token"]["townships"] == ["Gaofeng"]
    assert issued["reason"] == "new phone"
    log = await raw_log(kafka_bootstrap)
    assert not [v for v in log if secret.encode() in v or hash_secret(secret).encode() in v]

    code = await shouwang("tokens", "revoke", token_id, "--reason", "phone lost")
    assert code == 0 and "revoked" in capsys.readouterr().out
    assert await shouwang("tokens", "revoke", token_id, "--actor", "operator:zhang") == 0
    assert "revoked" in capsys.readouterr().out  # already revoked: said so, nothing new logged
    assert await shouwang("tokens", "revoke", "no-such-token") == 1

    actions = await actions_of(kafka_bootstrap, f"token:{token_id}")
    assert [(a["action"], a["actor"], a["reason"]) for a in actions] == [
        ("TOKEN_ISSUED", "operator:li", "new phone"),
        ("TOKEN_REVOKED", f"operator:{getpass.getuser()}", "phone lost"),
    ]
    assert await actions_of(kafka_bootstrap, "token:no-such-token") == []
    [row] = await token_row(database_url, holder)
    assert row["revoked_at"] is not None


async def test_a_bad_actor_changes_nothing(env, capsys, kafka_bootstrap, database_url) -> None:
    holder = unique("feed")
    code = await shouwang("tokens", "issue", "--kind", "feed", "--holder", holder,
                          "--event-type", "HardshipReported", "--actor", "operator li")  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "actor: no spaces" in err
    code = await shouwang("tokens", "issue", "--kind", "feed", "--holder", holder,
                          "--event-type", "HardshipReported", "--note", "x" * 1001)  # fmt: skip
    assert code == 2 and "reason: at most 1000" in capsys.readouterr().err
    assert await token_row(database_url, holder) == []
    assert await shouwang("tokens", "revoke", "anything", "--actor", "") == 2
    assert "actor: must name who acts" in capsys.readouterr().err


async def test_nothing_changes_while_its_event_cannot_be_logged(
    env, monkeypatch, capsys, tmp_path, kafka_bootstrap, database_url
) -> None:
    await register_township(database_url, "Gaofeng")
    holder = unique("op")
    assert await shouwang("tokens", "issue", "--kind", "operator", "--holder", holder) == 0
    token_id = capsys.readouterr().out.split()[0]

    with socket.socket() as s:  # a port nothing listens on: Kafka is "down"
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", dead)
    monkeypatch.setenv("SHOUWANG_VISITS_REQUEST_TIMEOUT_SECONDS", "3")
    other = unique("cadre")
    code = await shouwang("tokens", "issue", "--kind", "cadre", "--holder", other,
                          "--township", "Gaofeng")  # fmt: skip
    captured = capsys.readouterr()
    assert code == 3 and "could not be recorded on Kafka" in captured.err
    assert "sw_" not in captured.out  # no secret shown
    assert await token_row(database_url, other) == []  # and none stored

    assert await shouwang("tokens", "revoke", token_id) == 3
    [row] = await token_row(database_url, holder)
    assert row["revoked_at"] is None  # still active, and the log agrees
    catalogue_id = unique("offline")
    path = catalogue_file(tmp_path, catalogue_id)
    assert await shouwang("catalogue", "activate", str(path)) == 3
    assert "nothing recorded" in capsys.readouterr().err

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    assert await shouwang("tokens", "revoke", token_id) == 0
    actions = await actions_of(kafka_bootstrap, f"token:{token_id}")
    assert [a["action"] for a in actions] == ["TOKEN_ISSUED", "TOKEN_REVOKED"]
    assert await actions_of(kafka_bootstrap, f"catalogue:{catalogue_id}") == []


def catalogue_file(directory: Path, catalogue_id: str, capacity: int = 498) -> Path:
    text = DEFAULT_CATALOGUE.read_text(encoding="utf-8")
    text = text.replace('id = "dianjiang-2020"', f'id = "{catalogue_id}"', 1)
    text = text.replace("capacity = 498", f"capacity = {capacity}", 1)
    path = directory / f"{catalogue_id}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def start_worker(settings: Settings, bootstrap: str):
    """What run_support does with its catalogue before matching: read it once, activate it."""
    catalogue, content = load_with_content(settings.catalogue_path)
    return activate_at_start(settings, bootstrap, "support-it", catalogue, content)


async def test_catalogue_activation_is_recorded_once_per_content(
    env, monkeypatch, capsys, tmp_path, kafka_bootstrap
) -> None:
    catalogue_id = unique("county")
    subject = f"catalogue:{catalogue_id}"
    path = catalogue_file(tmp_path, catalogue_id)

    assert await shouwang("catalogue", "activate", str(path), "--actor", "operator:li") == 0
    assert "CATALOGUE_ACTIVATED" in capsys.readouterr().out
    assert await shouwang("catalogue", "activate", str(path), "--actor", "operator:wang") == 0
    assert "already active (version 1, by operator:li)" in capsys.readouterr().out

    # A support worker starting with the same catalogue finds it active: nothing new.
    monkeypatch.setenv("SHOUWANG_CATALOGUE", str(path))
    settings = Settings.from_env()
    started = await asyncio.to_thread(start_worker, settings, kafka_bootstrap)
    assert started.recorded is None
    [first] = await actions_of(kafka_bootstrap, subject)
    assert first["actor"] == "operator:li" and first["catalogue"]["version"] == 1

    # Edited in place and the worker restarted: the worker records it, with what changed.
    catalogue_file(tmp_path, catalogue_id, capacity=520)
    started = await asyncio.to_thread(start_worker, settings, kafka_bootstrap)
    again = await asyncio.to_thread(start_worker, settings, kafka_bootstrap)
    assert started.recorded is not None and again.recorded is None
    actions = await actions_of(kafka_bootstrap, subject)
    assert len(actions) == 2
    second = actions[1]["catalogue"]
    assert (actions[1]["actor"], actions[1]["source"]) == ("service:support-it", "SERVICE")
    assert second["version"] == 2
    assert second["previous_sha256"] == first["catalogue"]["content_sha256"]
    assert second["changes"] == [{"change": "POOL_CAPACITY_CHANGED",
                                  "item": "public-welfare-jobs",
                                  "detail": "capacity 498 -> 520"}]  # fmt: skip

    assert await shouwang("actions", "--subject", subject) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and "by operator:li" in listed[0]
    assert "POOL_CAPACITY_CHANGED public-welfare-jobs (capacity 498 -> 520)" in listed[1]


async def test_a_bad_catalogue_records_nothing(env, capsys, tmp_path, kafka_bootstrap) -> None:
    catalogue_id = unique("broken")
    path = catalogue_file(tmp_path, catalogue_id)
    path.write_text(
        path.read_text(encoding="utf-8").replace("capacity = 498", "capacity = -1", 1),
        encoding="utf-8",
    )
    assert await shouwang("catalogue", "activate", str(path)) == 1
    err = capsys.readouterr().err
    assert "pools[1].capacity: must be at least 0" in err and "nothing recorded" in err
    assert await shouwang("catalogue", "activate", str(tmp_path / "missing.toml")) == 2
    assert "cannot read" in capsys.readouterr().err
    assert await actions_of(kafka_bootstrap, f"catalogue:{catalogue_id}") == []


async def test_the_archive_keeps_operator_actions_for_the_audit(
    env, capsys, tmp_path, kafka_bootstrap
) -> None:
    catalogue_id = unique("archived")
    path = catalogue_file(tmp_path, catalogue_id)
    assert await shouwang("catalogue", "activate", str(path), "--actor", "operator:li") == 0
    capsys.readouterr()
    archive = tmp_path / "archive"
    assert await shouwang("archive", "export", str(archive), "--topics", OPERATOR_ACTIONS.name) == 0
    capsys.readouterr()
    subject = f"catalogue:{catalogue_id}"
    assert await shouwang("actions", "--archive", str(archive), "--subject", subject) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert "CATALOGUE_ACTIVATED" in line and "by operator:li" in line and " v1 " in line


async def test_the_read_model_projects_operator_actions(
    env, capsys, tmp_path, kafka_bootstrap, read_model, database_url
) -> None:
    await register_township(database_url, "Gaofeng")
    holder = unique("cadre")
    code = await shouwang("tokens", "issue", "--kind", "cadre", "--holder", holder,
                          "--township", "Gaofeng", "--actor", "operator:li")  # fmt: skip
    assert code == 0
    token_id = capsys.readouterr().out.split()[0]
    assert await shouwang("tokens", "revoke", token_id, "--actor", "operator:wang") == 0
    catalogue_id = unique("projected")
    path = catalogue_file(tmp_path, catalogue_id)
    assert await shouwang("catalogue", "activate", str(path), "--actor", "operator:li") == 0

    # The projector subscribes to all its topics; they must exist (no auto-creation).
    with contextlib.suppress(TopicMismatch):
        await ensure_topics(kafka_bootstrap, TopicLayout())
    projector = start_projector(kafka_bootstrap, read_model, unique("proj-ops"))
    connection = await asyncpg.connect(read_model)
    try:

        async def projected():
            rows = await connection.fetch(
                "SELECT * FROM operator_actions WHERE subject_id = ANY($1::text[]) "
                "ORDER BY occurred_at, action",
                [f"token:{token_id}", f"catalogue:{catalogue_id}"],
            )
            return rows if len(rows) == 3 else None

        rows = await wait_for(projected, 240, "operator actions in the read model", projector)
    finally:
        await connection.close()
        projector.send_signal(signal.SIGTERM)
        try:
            projector.wait(60)
        except subprocess.TimeoutExpired:
            projector.kill()
            projector.wait(10)
    by_action = {r["action"]: r for r in rows}
    issued, revoked = by_action["TOKEN_ISSUED"], by_action["TOKEN_REVOKED"]
    assert (issued["actor"], issued["token_holder"], issued["token_kind"]) == (
        "operator:li", holder, "CADRE",
    )  # fmt: skip
    assert revoked["actor"] == "operator:wang" and revoked["token_id"] == token_id
    activated = by_action["CATALOGUE_ACTIVATED"]
    assert (activated["catalogue_id"], activated["catalogue_version"]) == (catalogue_id, 1)
    assert activated["content_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
