"""Read-model migrations against a real PostgreSQL, and how that server is chosen."""

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from services.platform.localstack.errors import LocalStackError
from services.platform.localstack.postgres import LocalPostgres
from services.platform.localstack.provision import Provisioned, provide_database
from services.platform.postgres.migrate import (
    MIGRATIONS_DIR,
    MigrationError,
    apply_migrations,
    load_migrations,
)

pytestmark = pytest.mark.integration

ALL_LABELS = [migration.label for migration in load_migrations()]
BASE_TABLES = {
    "households",
    "assessments",
    "measures",
    "problems",
    "cadres",
    "projection_positions",
    "schema_migrations",
}


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
async def fresh_database_url(database_url: str) -> AsyncIterator[str]:
    """A new, empty database on the session's server, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(database_url, name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    return directory


async def tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    finally:
        await conn.close()
    return {row["table_name"] for row in rows}


async def test_session_server_answers(postgres_service: Provisioned) -> None:
    conn = await asyncpg.connect(postgres_service.url)
    try:
        assert await conn.fetchval("SELECT current_database()") == "shouwang"
    finally:
        await conn.close()
    if postgres_service.server is not None:
        assert postgres_service.server.is_running


async def test_migrations_apply_once(fresh_database_url: str) -> None:
    assert await apply_migrations(fresh_database_url) == ALL_LABELS
    assert await apply_migrations(fresh_database_url) == []

    assert ALL_LABELS[0] == "0001_read_model"
    assert await tables(fresh_database_url) >= BASE_TABLES


async def test_migrations_accept_an_open_connection(fresh_database_url: str) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        assert await apply_migrations(conn) == ALL_LABELS
        versions = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY 1")
    finally:
        await conn.close()
    assert [f"{version:04d}_{name}" for version, name in versions] == ALL_LABELS


async def test_concurrent_starts_apply_each_migration_once(fresh_database_url: str) -> None:
    results = await asyncio.gather(*(apply_migrations(fresh_database_url) for _ in range(3)))

    assert sorted(results) == [[], [], ALL_LABELS]


async def test_edited_applied_migration_is_refused(
    fresh_database_url: str, migrations_copy: Path
) -> None:
    await apply_migrations(fresh_database_url, migrations_copy)
    edited = migrations_copy / "0001_read_model.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")

    with pytest.raises(MigrationError, match="0001_read_model was changed after it was applied"):
        await apply_migrations(fresh_database_url, migrations_copy)


async def test_database_newer_than_the_code_is_refused(
    fresh_database_url: str, migrations_copy: Path
) -> None:
    newer = migrations_copy / "9998_extra.sql"
    newer.write_text("CREATE TABLE extra (id integer PRIMARY KEY);\n")
    assert await apply_migrations(fresh_database_url, migrations_copy) == [
        *ALL_LABELS,
        "9998_extra",
    ]
    newer.unlink()

    with pytest.raises(MigrationError, match="9998_extra, which this code does not know"):
        await apply_migrations(fresh_database_url, migrations_copy)


async def test_new_migration_sorting_before_an_applied_one_is_refused(
    fresh_database_url: str, migrations_copy: Path
) -> None:
    (migrations_copy / "9998_later.sql").write_text("SELECT 1;\n")
    await apply_migrations(fresh_database_url, migrations_copy)
    (migrations_copy / "9997_earlier.sql").write_text("SELECT 1;\n")

    with pytest.raises(MigrationError, match="9997_earlier is new but 9998_later is already"):
        await apply_migrations(fresh_database_url, migrations_copy)


async def test_failed_migration_leaves_no_trace(
    fresh_database_url: str, migrations_copy: Path
) -> None:
    (migrations_copy / "9999_broken.sql").write_text(
        "CREATE TABLE half_done (id integer);\nSELECT no_such_column FROM half_done;\n"
    )

    with pytest.raises(MigrationError, match="9999_broken failed"):
        await apply_migrations(fresh_database_url, migrations_copy)

    assert "half_done" not in await tables(fresh_database_url)
    conn = await asyncpg.connect(fresh_database_url)
    try:
        applied = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()
    assert applied == len(ALL_LABELS)


def test_misnamed_migration_file_is_refused(migrations_copy: Path) -> None:
    (migrations_copy / "2_forgot_padding.sql").write_text("SELECT 1;\n")

    with pytest.raises(MigrationError, match=r"2_forgot_padding\.sql"):
        load_migrations(migrations_copy)


def test_database_url_from_environment_starts_nothing(database_url: str, tmp_path: Path) -> None:
    with provide_database(tmp_path, env={"DATABASE_URL": database_url}) as chosen:
        assert chosen.url == database_url
        assert chosen.server is None
    assert list(tmp_path.iterdir()) == []


async def test_stopped_server_restarts_on_its_port_with_its_data(
    local_postgres_factory,
) -> None:
    postgres: LocalPostgres = local_postgres_factory()
    url = postgres.start()
    conn = await asyncpg.connect(url)
    await conn.execute("CREATE TABLE kept (n integer); INSERT INTO kept VALUES (42)")
    await conn.close()

    postgres.stop()
    assert not postgres.is_running
    with pytest.raises((OSError, asyncpg.PostgresError)):
        await asyncpg.connect(url, timeout=5)

    assert LocalPostgres(postgres.data_dir).start() == url  # a fresh handle, same address
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT n FROM kept") == 42
    finally:
        await conn.close()


def test_unreachable_data_directory_is_explained(tmp_path: Path) -> None:
    # pytest's tmp_path is private to its owner (mode 0700). As root, the server runs as an
    # unprivileged account that cannot enter it; as anyone else it runs as that user.
    postgres = LocalPostgres(tmp_path / "postgres")
    try:
        if os.geteuid() == 0:
            with pytest.raises(LocalStackError, match="cannot enter"):
                postgres.start()
        else:
            postgres.start()
            assert postgres.is_running
    finally:
        postgres.stop()
