"""Database roles against the real PostgreSQL: the owner migrates (idempotently, also in two
databases at once), the reader only reads yet serves the operator API, the token role writes
only tokens, and the projector projects but cannot change the schema."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from services.cli import main
from services.contract.topics import TopicLayout
from services.platform.auth.tokens import (
    CachedTokens,
    PostgresTokenStore,
    hash_secret,
    new_secret,
    new_token,
)
from services.platform.config import Settings, VisitsSettings
from services.platform.kafka.admin import TopicMismatch, ensure_topics
from services.platform.postgres.commands import GROUP_ROLES, create_login
from services.platform.postgres.database import database_for, prepare_schema
from services.platform.postgres.migrate import (
    MIGRATIONS_DIR,
    MigrationError,
    apply_migrations,
    check_schema,
    load_migrations,
)
from services.readmodel.api import ApiDependencies, build_api, init_connection
from services.readmodel.metrics import ApiMetrics
from services.visits.bootstrap import wired
from services.visits.entrypoints.http import build_app
from tests.integration.readmodel.test_projector import produce, wait_for
from tests.revocation_feeds import complete_feed
from tests.visits_samples import CADRE, TOWNSHIP, sample

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "not-checked-by-trust-auth-but-long"
T0 = dt.datetime(2020, 5, 16, 12, 0, tzinfo=dt.UTC)
# Every table and view the migrations create: a permission test over fewer would prove less.
EXPECTED_TABLES = {
    "households",
    "assessments",
    "measures",
    "problems",
    "cadres",
    "projection_positions",
    "api_tokens",
    "measure_steps",
    "pools",
    "catalogue_measures",
    "projection_rejects",
    "schema_migrations",
    "operator_actions",
}
# The personal-data keys (0006): the owner's, never a projection; only shouwang_visits may add.
KEY_TABLES = {"personal_keys", "personal_keys_shredded"}


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def as_login(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{PASSWORD}@{parts.hostname}:{parts.port}"))


@dataclass
class Roles:
    owner: str
    projector: str
    reader: str
    tokens: str
    visits: str
    logins: list[str]


@pytest.fixture
async def private_database(database_url: str) -> AsyncIterator[str]:
    """A new, empty database on the session's server (owner's URL), dropped afterwards."""
    name = f"roles_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(database_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def roles(private_database: str) -> AsyncIterator[Roles]:
    """The private database migrated by the owner, with one LOGIN role per duty."""
    await apply_migrations(private_database)
    suffix = uuid.uuid4().hex[:8]
    logins = {duty: f"t_{duty}_{suffix}" for duty in GROUP_ROLES}
    for duty, name in logins.items():
        await create_login(private_database, duty, name, PASSWORD)
    try:
        yield Roles(
            owner=private_database,
            projector=as_login(private_database, logins["projector"]),
            reader=as_login(private_database, logins["reader"]),
            tokens=as_login(private_database, logins["tokens"]),
            visits=as_login(private_database, logins["visits"]),
            logins=list(logins.values()),
        )
    finally:
        # Login roles are cluster-wide: drop them, or every run leaves three behind.
        admin = await asyncpg.connect(private_database)
        try:
            for name in logins.values():
                await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        finally:
            await admin.close()


async def topics_exist(bootstrap: str) -> None:
    # The default layout, as test_projector expects when it runs later in the session; when
    # another test made the topics with its own layout first, any layout will do here.
    with contextlib.suppress(TopicMismatch):
        await ensure_topics(bootstrap, TopicLayout())


def start_projector(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "projector"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def tables_and_views(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    # The catalogue, not information_schema: that one hides tables the role may not touch.
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    views = await conn.fetch(
        "SELECT viewname FROM pg_views WHERE schemaname = 'public' ORDER BY viewname"
    )
    return [r["tablename"] for r in tables], [r["viewname"] for r in views]


async def refused(conn: asyncpg.Connection, statement: str, *args) -> bool:
    """True when PostgreSQL refuses `statement` for lack of privilege (it is rolled back)."""
    try:
        async with conn.transaction():
            await conn.execute(statement, *args)
    except asyncpg.InsufficientPrivilegeError:
        return True
    return False


async def test_owner_migrations_are_idempotent_and_create_nologin_groups(roles: Roles) -> None:
    assert await apply_migrations(roles.owner) == []
    conn = await asyncpg.connect(roles.owner)
    try:
        # The file itself is idempotent too, not only its record in schema_migrations: a
        # database restored without that record, or a second database, runs it again.
        [roles_sql] = [m.sql for m in load_migrations() if m.label == "0005_roles"]
        async with conn.transaction():
            await conn.execute(roles_sql)
        groups = await conn.fetch(
            "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY($1::text[])",
            list(GROUP_ROLES.values()),
        )
        assert {(g["rolname"], g["rolcanlogin"]) for g in groups} == {
            (name, False) for name in GROUP_ROLES.values()
        }
        for group in GROUP_ROLES.values():
            assert not await conn.fetchval(
                "SELECT has_schema_privilege($1, 'public', 'CREATE')", group
            )
        assert not await conn.fetchval(
            "SELECT has_schema_privilege('public', 'public', 'CREATE')"
        ), "PUBLIC may still create tables in the schema"
    finally:
        await conn.close()


async def test_two_databases_on_one_server_migrate_at_once(database_url: str) -> None:
    admin = await asyncpg.connect(database_url)
    names = [f"roles_pair_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
        labels = [m.label for m in load_migrations()]
        results = await asyncio.gather(
            *(apply_migrations(with_database(database_url, name)) for name in names)
        )
        assert results == [labels, labels]
        for name in names:
            conn = await asyncpg.connect(with_database(database_url, name))
            try:
                assert await conn.fetchval(
                    "SELECT has_table_privilege('shouwang_reader', 'households', 'SELECT')"
                )
                assert not await conn.fetchval(
                    "SELECT has_table_privilege('shouwang_reader', 'households', 'INSERT')"
                )
            finally:
                await conn.close()
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_the_reader_reads_every_table_and_writes_none(roles: Roles) -> None:
    conn = await asyncpg.connect(roles.reader)
    try:
        tables, views = await tables_and_views(conn)
        assert set(tables) >= EXPECTED_TABLES | KEY_TABLES
        assert {"cadre_load", "pool_use"} <= set(views)
        for name in tables + views:
            if name in KEY_TABLES:
                assert await refused(conn, f'SELECT * FROM "{name}" LIMIT 1'), name
            else:
                await conn.fetch(f'SELECT * FROM "{name}" LIMIT 1')
        for name in tables:
            assert await refused(conn, f'INSERT INTO "{name}" DEFAULT VALUES'), name
            assert await refused(conn, f'DELETE FROM "{name}"'), name
            assert await refused(conn, f'TRUNCATE "{name}"'), name
            column = await conn.fetchval(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass "
                "AND attnum > 0 AND NOT attisdropped ORDER BY attnum LIMIT 1",
                name,
            )
            assert await refused(conn, f'UPDATE "{name}" SET "{column}" = "{column}"'), name
        assert await refused(conn, "CREATE TABLE reader_made (x int)")
        assert await refused(conn, "DROP TABLE households")
        assert await refused(conn, "ALTER TABLE households ADD COLUMN x int")
    finally:
        await conn.close()


async def test_the_operator_api_serves_with_the_reader_role(roles: Roles) -> None:
    owner = await asyncpg.connect(roles.owner)
    household = f"roles-{uuid.uuid4().hex[:8]}"
    township = f"镇-{household}"
    try:
        await owner.execute(
            "INSERT INTO households (household_id, township, category, level, workflow_status, "
            "assessed_at) VALUES ($1, $2, 'MARGINAL', 'HIGH', 'monitored', $3)",
            household,
            township,
            T0,
        )
    finally:
        await owner.close()
    settings = Settings.from_env(
        {"DATABASE_URL": roles.owner, "SHOUWANG_READER_DATABASE_URL": roles.reader}
    )
    database = database_for(settings, "reader")
    assert (database.url, database.owner) == (roles.reader, False)
    assert await prepare_schema(database) == []  # checks, does not migrate

    tokens_pool = await asyncpg.create_pool(roles.tokens, min_size=1, max_size=1)
    secret = new_secret()
    try:
        await PostgresTokenStore(tokens_pool).issue(
            new_token("operator", "op-roles", []), hash_secret(secret)
        )
    finally:
        await tokens_pool.close()

    pool = await asyncpg.create_pool(database.url, min_size=1, max_size=2, init=init_connection)
    registry = CollectorRegistry()
    deps = ApiDependencies(
        pool,
        CachedTokens(PostgresTokenStore(pool), complete_feed()),
        registry,
        ApiMetrics(registry),
    )
    client = TestClient(TestServer(build_api(deps)))
    await client.start_server()
    try:
        response = await client.get(
            "/v1/monitored-households",
            params={"township": township},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        assert [h["household_id"] for h in body["items"]] == [household]
        # The same pool may look tokens up but never issue one.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await PostgresTokenStore(pool).issue(
                new_token("operator", "op-forged", []), hash_secret(new_secret())
            )
    finally:
        await client.close()
        await pool.close()


async def test_the_token_role_writes_tokens_only(
    roles: Roles, kafka_bootstrap: str, monkeypatch, capsys
) -> None:
    # Issue and revoke are recorded on operator.actions before the table changes.
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("DATABASE_URL", roles.owner)
    monkeypatch.setenv("SHOUWANG_TOKENS_DATABASE_URL", roles.tokens)
    code = await asyncio.to_thread(
        main, ["tokens", "issue", "--kind", "operator", "--holder", "op-cli"]
    )
    assert code == 0, capsys.readouterr().err
    token_id = capsys.readouterr().out.split()[0]
    assert await asyncio.to_thread(main, ["tokens", "revoke", token_id]) == 0
    assert "revoked" in capsys.readouterr().out
    conn = await asyncpg.connect(roles.tokens)
    try:
        assert await conn.fetchval("SELECT current_user") in roles.logins
        assert await refused(conn, "DELETE FROM api_tokens")
        assert await refused(conn, "INSERT INTO households (household_id) VALUES ('x')")
        assert await refused(conn, "SELECT * FROM households LIMIT 1")
        assert await refused(conn, "CREATE TABLE tokens_made (x int)")
    finally:
        await conn.close()


async def test_the_projector_role_projects_but_cannot_change_the_schema(
    roles: Roles, kafka_bootstrap: str
) -> None:
    await topics_exist(kafka_bootstrap)
    prefix = f"roles-{uuid.uuid4().hex[:8]}"
    households = 5
    await produce(kafka_bootstrap, prefix, households)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        SHOUWANG_PROJECTOR_DATABASE_URL=roles.projector,
        SHOUWANG_PROJECTOR_GROUP=f"test-roles-{prefix}",
    )
    process = start_projector(env)
    owner = await asyncpg.connect(roles.owner)
    try:

        async def projected() -> bool:
            steps = await owner.fetchval(
                "SELECT count(*) FROM measure_steps WHERE household_id LIKE $1", prefix + "%"
            )
            events = await owner.fetchval(
                "SELECT coalesce(sum(events_projected), 0) FROM households "
                "WHERE household_id LIKE $1",
                prefix + "%",
            )
            return steps == 3 * households and events == 3 * households

        await wait_for(projected, 240, "the projection as the projector role", process)
        assert await owner.fetchval("SELECT count(*) FROM pools") > 0  # written at start-up
    finally:
        await owner.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, process.stderr.read().decode()[-2000:]

    conn = await asyncpg.connect(roles.projector)
    try:
        assert await refused(conn, "CREATE TABLE projector_made (x int)")
        assert await refused(conn, "DROP TABLE households")
        assert await refused(conn, "DROP VIEW pool_use")
        assert await refused(conn, "ALTER TABLE measures ADD COLUMN x int")
        assert await refused(conn, "TRUNCATE households")
        assert await refused(conn, "SELECT * FROM api_tokens LIMIT 1")
        for name in KEY_TABLES:
            assert await refused(conn, f'SELECT * FROM "{name}" LIMIT 1'), name
            assert await refused(conn, f'DELETE FROM "{name}"'), name
        assert await refused(
            conn, "INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'x', 'y')"
        )
        assert await refused(conn, "DELETE FROM schema_migrations")
    finally:
        await conn.close()


async def test_later_tables_get_the_grants_by_default(roles: Roles) -> None:
    # As a later migration would: a new table, created by the owner, with no GRANT of its own.
    owner = await asyncpg.connect(roles.owner)
    try:
        await owner.execute("CREATE TABLE later_projection (id text PRIMARY KEY)")
    finally:
        await owner.close()
    projector = await asyncpg.connect(roles.projector)
    reader = await asyncpg.connect(roles.reader)
    try:
        await projector.execute("INSERT INTO later_projection VALUES ('a')")
        assert await reader.fetchval("SELECT id FROM later_projection") == "a"
        assert await refused(reader, "INSERT INTO later_projection VALUES ('b')")
    finally:
        await projector.close()
        await reader.close()


async def test_a_duty_role_does_not_migrate_it_names_the_missing_migrations(
    roles: Roles, private_database: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    (directory / "0099_later.sql").write_text("CREATE TABLE later (x int);\n")
    with pytest.raises(MigrationError, match=r"lacks migration\(s\) 0099_later.*db migrate"):
        await check_schema(roles.reader, directory)
    conn = await asyncpg.connect(roles.owner)
    try:
        assert await conn.fetchval("SELECT to_regclass('later')") is None
    finally:
        await conn.close()


async def test_the_projector_role_on_an_unmigrated_database_exits_clearly(
    roles: Roles, database_url: str
) -> None:
    name = f"roles_empty_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        login = roles.logins[list(GROUP_ROLES).index("projector")]
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(
            KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",  # never reached: the schema check comes first
            SHOUWANG_PROJECTOR_DATABASE_URL=as_login(with_database(database_url, name), login),
        )
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.cli", "projector"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr[-2000:]
        assert "lacks migration(s) 0001_read_model" in result.stderr
        assert "shouwang db migrate" in result.stderr
        empty = await asyncpg.connect(with_database(database_url, name))
        try:
            tables, _ = await tables_and_views(empty)
        finally:
            await empty.close()
        assert tables == []  # it did not try to migrate
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_create_login_refuses_bad_names_and_passwords(
    private_database: str, monkeypatch, capsys
) -> None:
    await apply_migrations(private_database)
    monkeypatch.setenv("DATABASE_URL", private_database)
    name = f"t_cli_{uuid.uuid4().hex[:8]}"

    async def create(login: str, password: str) -> tuple[int, str]:
        monkeypatch.setenv("SHOUWANG_DB_LOGIN_PASSWORD", password)
        code = await asyncio.to_thread(
            main, ["db", "create-login", "--duty", "reader", "--name", login]
        )
        return code, capsys.readouterr().err

    conn = await asyncpg.connect(private_database)
    try:
        for login, password, why in (
            ('x"; DROP TABLE households; --', PASSWORD, "a-z, 0-9 and _"),
            ("shouwang_reader", PASSWORD, "reserved"),
            ("pg_monitor2", PASSWORD, "reserved"),
            (name, "short", "at least 16"),
            (name, PASSWORD + "\x07", "printable"),
        ):
            code, err = await create(login, password)
            assert code == 2 and why in err, (login, err)
            assert PASSWORD not in err
        assert not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
        assert await create(name, PASSWORD) == (0, "")
        assert await conn.fetchval("SELECT pg_has_role($1, 'shouwang_reader', 'MEMBER')", name)
        # The server kept the verifier made client-side, so the password never reached it.
        stored = await conn.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", name)
        assert stored.startswith("SCRAM-SHA-256$4096:") and PASSWORD not in stored
        code, err = await create(name, PASSWORD)
        assert code == 2 and "exists already" in err
    finally:
        await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
        await conn.close()


async def test_the_visits_api_serves_with_the_visits_role(
    roles: Roles, kafka_bootstrap: str
) -> None:
    await topics_exist(kafka_bootstrap)
    household = f"H-roles-{uuid.uuid4().hex[:8]}"
    owner = await asyncpg.connect(roles.owner)
    try:
        await owner.execute(
            "INSERT INTO households (household_id, township) VALUES ($1, $2)", household, TOWNSHIP
        )
    finally:
        await owner.close()
    tokens_pool = await asyncpg.create_pool(roles.tokens, min_size=1, max_size=1)
    secret = new_secret()
    try:
        await PostgresTokenStore(tokens_pool).issue(
            new_token("cadre", CADRE, [TOWNSHIP]), hash_secret(secret)
        )
        operator_secret = new_secret()
        await PostgresTokenStore(tokens_pool).issue(
            new_token("operator", "op-roles", []), hash_secret(operator_secret)
        )
    finally:
        await tokens_pool.close()
    settings = Settings.from_env(
        {"DATABASE_URL": roles.owner, "SHOUWANG_VISITS_DATABASE_URL": roles.visits}
    )
    async with wired(kafka_bootstrap, database_for(settings, "visits"), VisitsSettings()) as parts:
        assert await parts.pool.fetchval("SELECT current_user") in roles.logins
        client = TestClient(TestServer(build_app(parts.dependencies)))
        await client.start_server()
        try:
            response = await client.post(
                "/v1/visits",
                json=sample("visits", household_id=household),
                headers={"Authorization": f"Bearer {secret}"},
            )
            assert response.status == 202, await response.text()
            # A registry record with personal data: the role makes the household's key.
            registered = f"H-roles-{uuid.uuid4().hex[:8]}"
            response = await client.post(
                "/v1/households",
                json=sample("households", household_id=registered),
                headers={"Authorization": f"Bearer {operator_secret}"},
            )
            assert response.status == 202, await response.text()
        finally:
            await client.close()
    owner = await asyncpg.connect(roles.owner)
    visits = await asyncpg.connect(roles.visits)
    try:
        assert (
            await owner.fetchval(
                "SELECT count(*) FROM personal_keys WHERE subject_id = $1", registered
            )
            == 1
        )
        assert await refused(visits, "DELETE FROM personal_keys")
        assert await refused(visits, "UPDATE personal_keys SET wrapped_key = wrapped_key")
        assert await refused(visits, "DELETE FROM personal_keys_shredded")
        assert await refused(visits, "INSERT INTO households (household_id) VALUES ('x')")
        assert await refused(visits, "UPDATE api_tokens SET note = note")
    finally:
        await owner.close()
        await visits.close()
