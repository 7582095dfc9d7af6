"""The token check a service runs: the token table through a cache, and the revocation feed.

`TokenGate` is built (nothing connects) by a service's bootstrap; `run()` follows
operator.actions on the serving loop until cancelled. The faust workers hold no database pool
for their work, so the gate makes its own on first use (`LazyTokenTable`), on the loop that
serves requests; the APIs pass the pool they already have.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from services.platform.auth.revocations import Revocations, follow
from services.platform.auth.tokens import (
    CachedTokens,
    PostgresTokenStore,
    Token,
    TokenStoreUnavailable,
)
from services.platform.config import Settings, SettingsError
from services.platform.kafka.security import KafkaSecurity

log = logging.getLogger(__name__)


class LazyTokenTable:
    """The token table's look-up (`find`, all the cache needs) through a pool made on first
    use. A database that is not configured, or not reachable, is TokenStoreUnavailable: the
    request is refused with 503 and the next one tries again."""

    def __init__(self, url_of: Callable[[], str]):
        self.url_of = url_of
        self.pool: asyncpg.Pool | None = None

    async def find(self, token_hash: str) -> Token | None:
        if self.pool is None:
            try:
                url = self.url_of()
            except SettingsError as exc:
                raise TokenStoreUnavailable(f"no token table configured: {exc}") from exc
            # min_size=0: no connection is made here, so an unreachable server fails the look-up
            # (and is retried by the next one) instead of this constructor.
            self.pool = await asyncpg.create_pool(
                url, min_size=0, max_size=2, timeout=2, command_timeout=5
            )
        return await PostgresTokenStore(self.pool).find(token_hash)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None


class TokenGate:
    """A service's token cache and revocation feed; `run()` keeps the feed current."""

    def __init__(
        self,
        store: object,
        bootstrap: str,
        ttl: float,
        security: KafkaSecurity | None = None,
        revocations: Revocations | None = None,
    ):
        self.revocations = revocations or Revocations()
        self.tokens = CachedTokens(store, self.revocations, ttl=ttl)  # type: ignore[arg-type]
        self.store = store
        self.bootstrap = bootstrap
        self.security = security

    async def run(self) -> None:
        """Follow operator.actions until cancelled; then close the lazy pool, if any."""
        try:
            await follow(self.bootstrap, self.revocations, security=self.security)
        finally:
            if isinstance(self.store, LazyTokenTable):
                await self.store.close()

    def start(self) -> asyncio.Task:
        """Run the feed as a task of the running loop (the APIs; faust workers use app.task)."""
        return asyncio.get_running_loop().create_task(self.run(), name="revocation-feed")


def worker_gate(settings: Settings, bootstrap: str) -> TokenGate:
    """A faust worker's gate: the reader's token table (SHOUWANG_READER_DATABASE_URL, else
    DATABASE_URL or the local stack's), connected on the first request: the worker needs no
    database for its work, and without one its pages answer 503, not its agents."""
    from services.platform.postgres.database import database_for

    table = LazyTokenTable(lambda: database_for(settings, "reader").url)
    return TokenGate(table, bootstrap, settings.visits.token_cache_seconds)
