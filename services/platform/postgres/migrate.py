"""Apply the read model's SQL migrations in order, once each, recorded in schema_migrations."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# One fixed key for pg_advisory_lock, so services starting together migrate one at a time.
LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"shouwang.schema_migrations").digest()[:8], "big", signed=True
)

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The migration files and the database disagree, or a migration failed."""


@dataclass(frozen=True)
class Migration:
    """One SQL file: `NNNN_name.sql`, its text and the SHA-256 of its bytes."""

    version: int
    name: str
    sql: str
    checksum: str

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in `directory`, ordered by version.

    Raises MigrationError for a .sql file whose name does not match `NNNN_name.sql` (so a typo
    is not skipped silently) and for two files with the same version.
    """
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILE_PATTERN.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"two migrations have version {version:04d} in {directory}")
        raw = path.read_bytes()
        migrations[version] = Migration(
            version, match.group(2), raw.decode("utf-8"), hashlib.sha256(raw).hexdigest()
        )
    return [migrations[version] for version in sorted(migrations)]


async def apply_migrations(
    conn_or_dsn: asyncpg.Connection | str, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """Apply the migrations not yet recorded in `schema_migrations`; return their labels.

    Each migration runs in its own transaction together with the row that records it. The whole
    run holds a session advisory lock, so concurrent callers apply each file once. Raises
    MigrationError, before applying anything, when an applied file's checksum changed, an
    applied version has no file (the database is newer than this code) or a new file sorts
    before the latest applied one.
    """
    migrations = load_migrations(directory)
    if isinstance(conn_or_dsn, str):
        conn = await asyncpg.connect(conn_or_dsn)
        try:
            return await _apply(conn, migrations)
        finally:
            await conn.close()
    return await _apply(conn_or_dsn, migrations)


async def _apply(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(CREATE_TABLE)
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        applied = {row["version"]: row for row in rows}
        _check_applied(applied, migrations)
        labels = []
        for migration in migrations:
            if migration.version in applied:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) "
                        "VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {migration.label} failed: {exc}") from exc
            labels.append(migration.label)
        return labels
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def check_schema(
    conn_or_dsn: asyncpg.Connection | str, directory: Path = MIGRATIONS_DIR
) -> None:
    """Raise MigrationError unless every migration in `directory` is applied, unchanged.

    For services that connect with a role that may not change the schema (the projector,
    reader and token roles): they check instead of migrating, and name what is missing.
    """
    migrations = load_migrations(directory)
    conn = await asyncpg.connect(conn_or_dsn) if isinstance(conn_or_dsn, str) else conn_or_dsn
    try:
        try:
            rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        except asyncpg.UndefinedTableError:
            rows = []
        except asyncpg.InsufficientPrivilegeError as exc:
            raise MigrationError(
                f"role {await conn.fetchval('SELECT current_user')} may not read "
                "schema_migrations: is it a member of shouwang_projector, shouwang_reader or "
                "shouwang_tokens_admin?"
            ) from exc
    finally:
        if isinstance(conn_or_dsn, str):
            await conn.close()
    applied = {row["version"]: row for row in rows}
    _check_applied(applied, migrations)
    missing = [m.label for m in migrations if m.version not in applied]
    if missing:
        raise MigrationError(
            f"the read model lacks migration(s) {', '.join(missing)}: run `shouwang db migrate` "
            "with DATABASE_URL naming the owner role (this service's role may not migrate)"
        )


def _check_applied(applied: dict, migrations: list[Migration]) -> None:
    by_version = {migration.version: migration for migration in migrations}
    latest = max(applied, default=0)
    for migration in migrations:
        if migration.version < latest and migration.version not in applied:
            raise MigrationError(
                f"migration {migration.label} is new but {latest:04d}_{applied[latest]['name']} "
                "is already applied, and migrations apply in order: renumber it after "
                f"{latest:04d} (or drop the read model and rebuild it from the log)"
            )
    for version, row in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {version:04d}_{row['name']}, which this code does "
                "not know: it was migrated by a newer version"
            )
        if migration.checksum != row["checksum"]:
            raise MigrationError(
                f"migration {migration.label} was changed after it was applied "
                f"(checksum {row['checksum'][:12]} in the database, {migration.checksum[:12]} "
                "on disk); add a new migration instead of editing an applied one"
            )
