"""Where each duty connects to PostgreSQL, and getting its schema ready before it serves."""

from __future__ import annotations

from dataclasses import dataclass

from services.platform.config import Settings, SettingsError


def local_database_url(settings: Settings) -> str:
    """DATABASE_URL, else the local stack's PostgreSQL (`shouwang stack up`)."""
    if settings.database_url:
        return settings.database_url
    from services.platform.localstack import stack

    postgres = stack.status(settings.home).get("postgres", {})
    if not postgres.get("running") or not postgres.get("database_url"):
        raise SettingsError(
            "DATABASE_URL is not set and no local stack runs under "
            f"{settings.home}; run `shouwang stack up` or set it"
        )
    return str(postgres["database_url"])


# The connection each duty uses (README "Database roles"); without its own variable a duty
# uses the owner's connection, so a single-user setup needs DATABASE_URL only.
DUTY_SETTINGS = {
    "projector": "projector_database_url",
    "reader": "reader_database_url",
    "tokens": "tokens_database_url",
    "visits": "visits_database_url",
}


@dataclass(frozen=True)
class Database:
    """Where a duty connects, and whether that connection is the owner's (so may migrate)."""

    url: str
    owner: bool


def database_for(settings: Settings, duty: str) -> Database:
    """The connection for `duty` (see DUTY_SETTINGS): its own URL, else the owner's."""
    url = getattr(settings, DUTY_SETTINGS[duty])
    if url and url != settings.database_url:
        return Database(url, owner=False)
    return Database(local_database_url(settings), owner=True)


async def prepare_schema(database: Database) -> list[str]:
    """Migrate as the owner; any other role only checks that the schema is current.

    A duty role may not change the schema (0005_roles), and should not try: migrating is the
    owner's job (`shouwang db migrate`, or any service started with the owner's URL).
    """
    from services.platform.postgres.migrate import apply_migrations, check_schema

    if database.owner:
        return await apply_migrations(database.url)
    await check_schema(database.url)
    return []
