"""`shouwang db create-login` with a non-ASCII password, then a real login: the embedded
PostgreSQL asks the new role for SCRAM-SHA-256 (pg_hba), and asyncpg logs in with the password
as typed, in another Unicode form of it (SASLprep on both sides), but not with a wrong one."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import asyncpg
import pytest

from services.cli import main
from services.platform.postgres.commands import PASSWORD_ENV
from tests.integration.readmodel.test_projector import wait_for

pytestmark = pytest.mark.integration

# CJK only: SASLprep leaves it as it is.
CJK = "守望者的口令很长很长很长很长很长"
# Full-width letters and a no-break space: SASLprep (NFKC, RFC 4013) maps them to plain ones.
WIDE = "\uff53\uff48\uff4f\uff55\u00a0守望密码-\uff21\uff22\uff23-2026"
WIDE_NORMALISED = "shou 守望密码-ABC-2026"


def as_role(url: str, role: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)


async def refused_without_password(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError):
        return True
    except asyncpg.PostgresError as exc:  # "password authentication failed", by another name
        return "password" in str(exc)
    await conn.close()
    return False


async def test_a_role_made_with_a_non_ascii_password_logs_in_with_scram(
    local_postgres_factory, monkeypatch, capsys
):
    server = local_postgres_factory()
    owner = await asyncio.to_thread(server.start)
    suffix = uuid.uuid4().hex[:8]
    roles = {f"t_cjk_{suffix}": CJK, f"t_wide_{suffix}": WIDE}
    # The cluster trusts everyone (LocalPostgres): ask these roles for SCRAM before that rule.
    hba = Path(server.pgdata) / "pg_hba.conf"
    rules = "".join(f"host all {r} 127.0.0.1/32 scram-sha-256\n" for r in roles)
    hba.write_text(rules + hba.read_text())
    monkeypatch.setenv("DATABASE_URL", owner)
    admin = await asyncpg.connect(owner)
    try:
        assert await admin.fetchval("SELECT pg_reload_conf()")
        # The CLI is synchronous (asyncio.run inside): run it off this loop.
        assert await asyncio.to_thread(main, ["db", "migrate"]) == 0
        for role, password in roles.items():
            monkeypatch.setenv(PASSWORD_ENV, password)
            code = await asyncio.to_thread(
                main, ["db", "create-login", "--duty", "reader", "--name", role]
            )
            assert code == 0, capsys.readouterr().err
            stored = await admin.fetchval(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role
            )
            assert stored.startswith("SCRAM-SHA-256$4096:") and password not in stored
        # The reload is asynchronous: wait until it applies.
        first = as_role(owner, next(iter(roles)))
        await wait_for(lambda: refused_without_password(first), 60, "pg_hba.conf reloaded")

        for role, tries in {
            f"t_cjk_{suffix}": [CJK],
            f"t_wide_{suffix}": [WIDE, WIDE_NORMALISED],
        }.items():
            for password in tries:
                conn = await asyncpg.connect(as_role(owner, role), password=password, timeout=30)
                try:
                    assert await conn.fetchval("SELECT current_user") == role
                    # It really went through SCRAM, not a trust rule (trust gives NULL).
                    assert await conn.fetchval("SELECT system_user") == f"scram-sha-256:{role}"
                finally:
                    await conn.close()
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(as_role(owner, role), password=tries[0] + "x", timeout=30)
    finally:
        with contextlib.suppress(asyncpg.PostgresError, OSError):
            for role in roles:
                await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
        await asyncio.to_thread(server.stop)
