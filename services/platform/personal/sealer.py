"""What every registry writer calls before encoding: seal the record's personal sub-record."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from services.contract.personal import PERSONAL_FIELDS, seal_record
from services.platform.personal.keys import CachedKeys, PostgresKeyStore, load_master_key
from services.platform.postgres.database import Database


class PersonalSealer:
    """Seals `personal` into `personal_sealed` with the subject's key (got or made, cached)."""

    def __init__(self, keys: CachedKeys):
        self.keys = keys

    @staticmethod
    def seals(event_type: str) -> bool:
        """Whether records of `event_type` carry personal data to seal."""
        return event_type in PERSONAL_FIELDS

    async def prepare(self, event_type: str, records: list[dict[str, Any]]) -> None:
        """Get or make the keys `records` will be sealed with in one go (a batch of new
        households costs a few round trips, not three per household); best effort."""
        spec = PERSONAL_FIELDS.get(event_type)
        if spec is None:
            return
        await self.keys.warm(
            [spec.subject_of(record) for record in records if record.get("personal") is not None]
        )

    async def seal(self, event_type: str, record: dict[str, Any]) -> dict[str, Any]:
        """`record` ready to produce: sealed when its type carries personal data, else as is.

        KeysUnavailable when the subject's key cannot be had now; nothing is sealed then.
        """
        spec = PERSONAL_FIELDS.get(event_type)
        if spec is None:
            return record
        if record.get("personal") is None:
            return seal_record(record, event_type, None)
        key = await self.keys.key_for(spec.subject_of(record))
        return seal_record(record, event_type, key)


@contextlib.asynccontextmanager
async def postgres_sealer(
    database: str | Database, master: bytes | None = None
) -> AsyncIterator[PersonalSealer]:
    """A sealer over the key tables of `database` for a batch writer's lifetime.

    A plain URL is the owner's (migrated first); a duty role only checks the schema.
    `master` defaults to the environment's master key; without one this raises SettingsError
    before connecting, so a misconfigured import or simulation writes nothing.
    """
    from services.platform.postgres.database import prepare_schema

    master = master if master is not None else load_master_key()
    if isinstance(database, str):
        database = Database(database, owner=True)
    await prepare_schema(database)
    pool = await asyncpg.create_pool(database.url, min_size=1, max_size=2, command_timeout=10)
    try:
        yield PersonalSealer(CachedKeys(PostgresKeyStore(pool, master)))
    finally:
        await pool.close()
