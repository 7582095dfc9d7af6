"""Wiring: the console's dependencies built from Settings, and serving it.

It reads as the "reader" duty (the read model and the token table, like the operator API), hears
revocations from operator.actions like every service that checks tokens, and writes only through
the visits API, except the record of each opening of personal data, which goes to
operator.actions before anything is shown (platform/personal/opening.py, as `personal show`).
With the personal-data master key (SHOUWANG_PERSONAL_MASTER_KEY or _FILE) it reads data keys as
the "visits" duty (the role that may read `personal_keys`); without one it opens no personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg

from services.console.history import HistoryReader
from services.console.sessions import Sessions
from services.console.settings import ConsoleSettings
from services.console.visits_client import VisitsClient
from services.console.web import ConsoleDependencies, build_console
from services.contract.codec import Codec
from services.monitoring.adapters.policy_files import policies_in
from services.platform.auth.gate import TokenGate
from services.platform.auth.tokens import PostgresTokenStore
from services.platform.clock import wall_clock
from services.platform.config import Settings, kafka_bootstrap
from services.platform.http.serve import serve_until_signalled
from services.platform.metrics import new_registry
from services.platform.personal.keys import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    PostgresKeyStore,
    load_master_key,
)
from services.platform.personal.opening import open_personal_data
from services.platform.postgres.database import database_for, prepare_schema
from services.readmodel.api import init_connection

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def console_dependencies(
    settings: Settings, console: ConsoleSettings
) -> AsyncIterator[ConsoleDependencies]:
    """The console's dependencies; its pool, revocation feed and HTTP client closed on the way
    out. The policies are read first, so a bad policy file stops start-up before any I/O."""
    book = policies_in(console.policy_dir)
    # A malformed master key stops start-up; none at all leaves personal data closed.
    named = os.environ.get(MASTER_KEY_ENV) or os.environ.get(MASTER_KEY_FILE_ENV)
    master = load_master_key() if named else None
    bootstrap = kafka_bootstrap(settings)
    decision_days = {p.id: p.flag_to_decision_days for p in book.policies}
    visit_days = {p.id: p.visit_interval_days for p in book.policies}
    database = database_for(settings, "reader")
    await prepare_schema(database)
    pool = await asyncpg.create_pool(
        database.url, min_size=1, max_size=4, command_timeout=10, init=init_connection
    )
    gate = TokenGate(PostgresTokenStore(pool), bootstrap, settings.visits.token_cache_seconds)
    feed = gate.start()
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
    keys_pool = personal = None
    if master is not None:
        keys_pool = await asyncpg.create_pool(
            database_for(settings, "visits").url, min_size=1, max_size=2, command_timeout=10
        )
        store = PostgresKeyStore(keys_pool, master)
        codec = Codec.default()

        async def personal(subject, actor, reason):
            return await open_personal_data(
                bootstrap,
                settings.layout,
                codec,
                store,
                subject,
                actor,
                reason,
                wall_clock(),
                settings.visits.request_timeout_seconds,
            )
    else:
        log.info("console: no personal-data master key; personal data cannot be opened here")
    history = HistoryReader(bootstrap, settings.layout, book, pool)
    try:
        yield ConsoleDependencies(
            pool=pool,
            tokens=gate.tokens,
            visits=VisitsClient(http, console.visits_url),
            sessions=Sessions(idle_seconds=console.session_minutes * 60.0, clock=time.monotonic),
            settings=console,
            decision_days=decision_days,
            visit_days=visit_days,
            history=history,
            registry=new_registry(),
            clock=wall_clock,
            personal=personal,
        )
    finally:
        await history.close()
        if keys_pool is not None:
            await keys_pool.close()
        feed.cancel()
        await asyncio.gather(feed, return_exceptions=True)
        await http.close()
        await pool.close()


async def serve_console(settings: Settings, console: ConsoleSettings) -> None:
    """The console on SHOUWANG_CONSOLE_PORT (address SHOUWANG_BIND_HOST) until SIGINT/SIGTERM."""
    async with console_dependencies(settings, console) as deps:
        await serve_until_signalled(
            build_console(deps), settings.bind_host, console.port, "console"
        )
