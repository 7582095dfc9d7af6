"""The visits service's CLI: `visits`, `tokens issue|revoke|list`, `import households|cadres`.

Arguments are parsed here; the wiring (pools, producers, the clock) is `bootstrap.py`'s and a
table import's run and report are `imports/table.py`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from services.platform.config import Settings, SettingsError

# The CLI imports this module to build its parser: what needs aiohttp, asyncpg or aiokafka is
# imported by the handler that uses it (tests/unit/test_cli.py).
if TYPE_CHECKING:
    from services.platform.auth.tokens import PostgresTokenStore, Token
    from services.visits.imports.table import TableImport


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register `visits`, `tokens` and `import` on the CLI's sub-command parser."""
    visits = commands.add_parser("visits", help="run the ingest API (see services/visits)")
    visits.set_defaults(run=run_visits)

    tokens = commands.add_parser("tokens", help="API tokens: issue, revoke, list")
    actions = tokens.add_subparsers(dest="action", required=True)
    issue = actions.add_parser("issue", help="issue a token; it is printed once")
    issue.add_argument("--kind", choices=["cadre", "feed", "operator"], required=True)
    issue.add_argument("--holder", required=True, help="cadre or feed id; becomes the actor")
    issue.add_argument("--township", action="append", default=[], help="repeatable")
    issue.add_argument(
        "--event-type", action="append", default=[], help="e.g. HardshipReported; repeatable"
    )
    issue.add_argument("--note", default="")
    issue.add_argument("--actor", default=None, help="operator id (default: operator:$USER)")
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    revoke.add_argument("--actor", default=None, help="operator id (default: operator:$USER)")
    revoke.add_argument("--reason", default="", help="why, for the log (e.g. phone lost)")
    actions.add_parser("list", help="list tokens (never their secrets)")
    tokens.set_defaults(run=run_tokens)

    importing = commands.add_parser("import", help="bulk imports")
    what = importing.add_subparsers(dest="what", required=True)
    for name, about, run in (
        ("households", "a household table (户表) CSV", run_import),
        ("cadres", "a cadre roster CSV (cadre.registry)", run_import_cadres),
    ):
        table = what.add_parser(name, help=about)
        table.add_argument("file", type=Path)
        table.add_argument(
            "--skip-bad", action="store_true", help="import the good rows of a file with bad rows"
        )
        table.add_argument(
            "--as-of", type=dt.date.fromisoformat, help="occurred_at for rows without 登记日期"
        )
        table.add_argument("--actor", default=None, help="operator id (default: operator:$USER)")
        table.add_argument("--check", action="store_true", help="check only, write nothing")
        table.set_defaults(run=run)


def run_visits(args: argparse.Namespace, settings: Settings) -> int:
    from services.visits.bootstrap import serve

    asyncio.run(serve(settings))
    return 0


def run_tokens(args: argparse.Namespace, settings: Settings) -> int:
    from services.platform.actions.events import (
        OperatorActionError,
        check_actor,
        check_reason,
        default_actor,
    )

    actor = None
    if args.action != "list":
        try:
            actor = check_actor(
                default_actor(getpass.getuser()) if args.actor is None else args.actor
            )
            # The note of an issue is its recorded reason; a revocation has its own.
            check_reason(args.note if args.action == "issue" else args.reason)
        except OperatorActionError as exc:
            raise SettingsError(str(exc)) from exc
    return asyncio.run(_tokens(args, settings, actor))


async def _tokens(args: argparse.Namespace, settings: Settings, actor: str | None) -> int:
    from services.platform.auth.tokens import TokenError, new_token, new_token_id
    from services.visits.bootstrap import token_store

    async with token_store(settings) as store:
        if args.action == "list":
            for token in await store.list():
                print(_describe(token))
            return 0
        if args.action == "issue":
            try:
                token = new_token(args.kind, args.holder, args.township, args.event_type, args.note)
            except TokenError as exc:
                raise SettingsError(str(exc)) from exc
            token = replace(token, token_id=new_token_id())
        else:
            token = await store.get(args.token_id)
            if token is None:
                print(f"no token {args.token_id}", file=sys.stderr)
                return 1
            if not token.active:
                print(_describe(token))  # already revoked, and logged then: nothing to do
                return 0
        return await _logged_token_change(args, settings, store, token, actor)


async def _logged_token_change(
    args: argparse.Namespace,
    settings: Settings,
    store: PostgresTokenStore,
    token: Token,
    actor: str,
) -> int:
    """Record the issue or revocation on operator.actions first, then change the table.

    The event goes first (acks=all) so that no token works without its issue in the log; if
    the table write then fails, the log holds an issue for a token that never worked (no
    secret was shown), or a revocation the table lacks until the command is run again (its
    event id is the same, so the log keeps one).
    """
    from services.platform.actions.events import token_issued, token_revoked
    from services.platform.auth.tokens import hash_secret, new_secret
    from services.platform.kafka.producer import BrokerUnavailable
    from services.visits.bootstrap import record_operator_action, wall_clock

    now = wall_clock()
    if args.action == "issue":
        record = token_issued(token, actor, now, reason=token.note)
    else:
        record = token_revoked(token, actor, now, reason=args.reason)
    try:
        delivery = await record_operator_action(settings, record)
    except BrokerUnavailable as exc:
        print(
            f"shouwang tokens {args.action}: the action could not be recorded on Kafka ({exc}); "
            "nothing was changed, run it again when Kafka is back",
            file=sys.stderr,
        )
        return 3
    if args.action == "issue":
        secret = new_secret()
        changed = await store.issue(token, hash_secret(secret))
        print(_describe(changed))
        print(f"token (shown once, keep it secret): {secret}")
    else:
        changed = await store.revoke(token.token_id, now)
        print(_describe(changed))
    print(
        f"recorded {record['action']} by {actor} on {delivery.topic}[{delivery.partition}]"
        f"@{delivery.offset}",
        file=sys.stderr,
    )
    return 0


def _describe(token: Token) -> str:
    towns = ",".join(sorted(token.townships)) if token.townships else "*"
    types = (
        ",".join(sorted(t.rsplit(".", 1)[-1] for t in token.event_types))
        if token.event_types
        else "*"
    )
    state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
    return (
        f"{token.token_id}  {token.kind:8} {token.holder:16} townships={towns} "
        f"types={types} {state} {token.note}".rstrip()
    )


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    from services.visits.imports.households import HOUSEHOLDS

    return _run_table_import(args, settings, HOUSEHOLDS)


def run_import_cadres(args: argparse.Namespace, settings: Settings) -> int:
    from services.visits.imports.cadres import CADRES

    return _run_table_import(args, settings, CADRES)


def _run_table_import(args: argparse.Namespace, settings: Settings, table: TableImport) -> int:
    from services.visits.bootstrap import sealed_sink, wall_clock
    from services.visits.imports.table import run_csv_import

    return run_csv_import(
        table,
        args.file,
        actor=args.actor or f"operator:{getpass.getuser()}",
        as_of=args.as_of,
        skip_bad=args.skip_bad,
        check=args.check,
        clock=wall_clock,
        sealed_sink=lambda: sealed_sink(settings),
    )
