"""The projector's bulk write: a batch's rows of one statement COPYed into a staging table, then
written by one INSERT ... SELECT ... ON CONFLICT per round.

ON CONFLICT DO UPDATE cannot touch a row twice in one command, so round k holds the k-th row of
each conflict key (the first argument of every statement) in batch order: each key's rows
still apply one after another, in order, through the same guards as one `execute` per row
would apply them, and keys do not interact. Same rows as one `execute` per row, a few round
trips per batch instead. The statements are `statements.BULK_STATEMENTS`.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from typing import Any

import asyncpg

from services.readmodel.statements import BULK_STATEMENTS, STAGING, STATEMENTS

_staging_ddl: weakref.WeakKeyDictionary[asyncpg.Connection, str] = weakref.WeakKeyDictionary()
# Connections whose staging tables were created in a transaction that committed: they last as
# long as the session, so their batches send no DDL at all.
_staging_kept: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()


async def ensure_staging_tables(conn: asyncpg.Connection) -> None:
    """Create the staging tables (temporary, so per connection) if this session has none."""
    # Column types are the statements' own parameter types, asked once per connection. The
    # tables are (re)created inside each batch's transaction until one commits
    # (`staging_committed`): one rolled back takes its CREATE with it. ON COMMIT DELETE ROWS
    # empties them for the next batch.
    if conn in _staging_kept:
        return
    ddl = _staging_ddl.get(conn)
    if ddl is None:
        tables = []
        for name, table in STAGING.items():
            params = (await conn.prepare(STATEMENTS[name])).get_parameters()
            columns = ", ".join(f"c{i} {p.schema}.{p.name}" for i, p in enumerate(params, start=1))
            tables.append(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} (round int NOT NULL, {columns})"
                " ON COMMIT DELETE ROWS"
            )
        ddl = _staging_ddl[conn] = ";\n".join(tables)
    await conn.execute(ddl)


def staging_committed(conn: asyncpg.Connection) -> None:
    """A transaction that ran `ensure_staging_tables` on `conn` has committed (call after that
    commit, never inside the transaction): its tables now outlive any later rollback."""
    _staging_kept.add(conn)


def in_rounds(rows: list[tuple]) -> tuple[list[tuple], int]:
    """`rows` with their round in front (the k-th row of a conflict key, its first argument, is
    in round k), in batch order; and how many rounds there are."""
    seen: dict[Any, int] = defaultdict(int)
    numbered = []
    for args in rows:
        numbered.append((seen[args[0]], *args))
        seen[args[0]] += 1
    return numbered, max(seen.values(), default=0)


async def apply_bulk(conn: asyncpg.Connection, name: str, rows: list[tuple]) -> None:
    """Write `rows` (arguments of statement `name`, in batch order) in rounds, as above."""
    numbered, rounds = in_rounds(rows)
    await conn.copy_records_to_table(STAGING[name], records=numbered)
    for round_ in range(rounds):
        await conn.execute(BULK_STATEMENTS[name], round_)
