"""`shouwang db migrate|create-login`: the read model's schema and its login roles per duty."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import sys
import unicodedata

from services.platform.config import Settings, SettingsError
from services.platform.postgres.database import local_database_url

# The group role of each duty, created by migration 0005_roles.
GROUP_ROLES = {
    "projector": "shouwang_projector",
    "reader": "shouwang_reader",
    "tokens": "shouwang_tokens_admin",
    "visits": "shouwang_visits",  # created by 0006_personal_keys
}
PASSWORD_ENV = "SHOUWANG_DB_LOGIN_PASSWORD"
_LOGIN_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MIN_PASSWORD_LENGTH = 16


def add_db_commands(commands: argparse._SubParsersAction) -> None:
    """Register `db migrate` and `db create-login` on the CLI's sub-command parser."""
    db = commands.add_parser("db", help="read model database: migrations and login roles")
    actions = db.add_subparsers(dest="action", required=True)
    actions.add_parser("migrate", help="apply the migrations, as the owner (DATABASE_URL)")
    login = actions.add_parser(
        "create-login",
        help=f"create a LOGIN role in a duty's group; the password is read from stdin "
        f"(or ${PASSWORD_ENV})",
    )
    login.set_defaults(reads=(PASSWORD_ENV,))
    login.add_argument("--duty", choices=sorted(GROUP_ROLES), required=True)
    login.add_argument("--name", required=True, help="the new role: lower case, digits, _")
    db.set_defaults(run=run_db)


def check_login(name: str, password: str) -> None:
    """Raise SettingsError for a role name or password `create-login` must not use."""
    if not _LOGIN_NAME.match(name):
        raise SettingsError(
            f"--name {name!r}: a role name here is 1 to 63 characters of a-z, 0-9 and _, "
            "not starting with a digit"
        )
    if name.startswith("pg_") or name in GROUP_ROLES.values():
        raise SettingsError(f"--name {name!r}: reserved (pg_*, or a group role itself)")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SettingsError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    # Control characters by their Unicode category (a no-break space, which Python does not
    # call printable, is a fine password character: SASLprep maps it to a space).
    if any(unicodedata.category(c) == "Cc" for c in password):
        raise SettingsError("password: printable characters only (no newlines or controls)")
    # scramp is imported here, not at the top: the CLI imports this module to build its parser.
    from scramp.core import ScramException, saslprep

    try:
        saslprep(password)
    except ScramException as exc:
        # PostgreSQL would then hash the raw bytes while some clients refuse the password.
        raise SettingsError(
            f"password: not allowed by SASLprep (RFC 4013), which SCRAM applies to passwords: "
            f"{exc.args[0]}"
        ) from None


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802, RFC 7677), made
    here so the password itself never reaches the server, whose logs may keep statements.

    `scramp` normalises the password with SASLprep first, as PostgreSQL and its clients do, so
    a non-ASCII password logs in whichever of its Unicode forms the client sends.
    """
    from scramp import ScramMechanism

    salt = salt if salt is not None else os.urandom(16)
    salt, stored_key, server_key, iterations = ScramMechanism("SCRAM-SHA-256").make_auth_info(
        password, iteration_count=iterations, salt=salt
    )
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def run_db(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "migrate":
        applied = asyncio.run(_migrate(local_database_url(settings)))
        print(f"applied {', '.join(applied)}" if applied else "the schema is current")
        return 0
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        password = sys.stdin.readline().rstrip("\n")
    check_login(args.name, password)
    asyncio.run(create_login(local_database_url(settings), args.duty, args.name, password))
    print(f"created login {args.name} in {GROUP_ROLES[args.duty]}")
    return 0


async def _migrate(url: str) -> list[str]:
    from services.platform.postgres.migrate import apply_migrations

    return await apply_migrations(url)


async def create_login(owner_url: str, duty: str, name: str, password: str) -> None:
    """CREATE ROLE `name` LOGIN in the duty's group, connected as the owner (or a DBA).

    Refuses (SettingsError) a role that already exists rather than changing its password or
    memberships. The password never reaches the server: it gets the SCRAM-SHA-256 verifier
    made here (as psql's \\password does), so no server log (of every statement, or of a
    failed one) can show it. The group and the right to create roles are checked first.
    """
    import asyncpg

    check_login(name, password)
    conn = await asyncpg.connect(owner_url)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
            raise SettingsError(f"--name {name!r}: a role of that name exists already")
        group = GROUP_ROLES[duty]
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", group):
            raise SettingsError(f"{group} does not exist: run `shouwang db migrate` first")
        if not await conn.fetchval(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ):
            raise SettingsError(
                "the role of DATABASE_URL may not create roles; run this as a superuser or a "
                "CREATEROLE role"
            )
        # Quoted by the server (format %I and %L), not by string building here.
        statement = await conn.fetchval(
            "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE %I', $1::text, $2::text, "
            "$3::text)",
            name,
            scram_verifier(password),
            group,
        )
        try:
            await conn.execute(statement)
        except asyncpg.InsufficientPrivilegeError as exc:
            raise SettingsError(
                f"the role of DATABASE_URL may not create roles ({exc}); run this as a "
                "superuser or a CREATEROLE role"
            ) from exc
        except asyncpg.UndefinedObjectError as exc:
            raise SettingsError(
                f"{GROUP_ROLES[duty]} does not exist: run `shouwang db migrate` first"
            ) from exc
    finally:
        await conn.close()
