"""Migration 0006 with the duty roles: the projector and the reader cannot touch keys, the
visits role (the visits API and imports) can make keys but not delete them."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from services.platform.postgres.migrate import apply_migrations

pytestmark = pytest.mark.integration


async def test_keys_are_the_owners_the_api_may_only_add(local_postgres_factory):
    server = local_postgres_factory()
    url = await asyncio.to_thread(server.start)
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn)

        async def allowed(role: str, table: str, privilege: str) -> bool:
            return await conn.fetchval(
                "SELECT has_table_privilege($1, $2, $3)", role, table, privilege
            )

        for table in ("personal_keys", "personal_keys_shredded"):
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                assert not await allowed("shouwang_projector", table, privilege)
                assert not await allowed("shouwang_reader", table, privilege)
            assert await allowed("shouwang_visits", table, "SELECT")
            for privilege in ("UPDATE", "DELETE"):
                assert not await allowed("shouwang_visits", table, privilege)
        assert await allowed("shouwang_visits", "personal_keys", "INSERT")
        assert not await allowed("shouwang_visits", "personal_keys_shredded", "INSERT")
    finally:
        await conn.close()
        await asyncio.to_thread(server.stop)
