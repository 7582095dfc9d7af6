"""The visits service's command-line entry points: `visits`, `tokens ...`, `import households`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.platform.config import Settings, SettingsError
from services.platform.postgres.database import Database, database_for, prepare_schema

# The CLI imports this module to build its parser: what needs aiohttp, asyncpg or aiokafka is
# imported by the handler that uses it (tests/unit/test_cli.py).
if TYPE_CHECKING:
    from services.platform.auth.tokens import PostgresTokenStore, Token


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
    households = what.add_parser("households", help="a household table (户表) CSV")
    households.add_argument("file", type=Path)
    households.add_argument(
        "--skip-bad", action="store_true", help="import the good rows of a file with bad rows"
    )
    households.add_argument(
        "--as-of", type=dt.date.fromisoformat, help="occurred_at for rows without 登记日期"
    )
    households.add_argument("--actor", default=None, help="operator id (default: operator:$USER)")
    households.add_argument("--check", action="store_true", help="check only, write nothing")
    households.set_defaults(run=run_import)

    add_import_command(what)


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
    return asyncio.run(_tokens(args, settings, database_for(settings, "tokens"), actor))


async def _tokens(
    args: argparse.Namespace, settings: Settings, database: Database, actor: str | None
) -> int:
    import asyncpg

    from services.platform.auth.tokens import (
        PostgresTokenStore,
        TokenError,
        new_token,
        new_token_id,
    )

    await prepare_schema(database)
    pool = await asyncpg.create_pool(database.url, min_size=1, max_size=1)
    try:
        store = PostgresTokenStore(pool)
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
    finally:
        await pool.close()


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
    from services.contract.codec import Codec
    from services.platform.actions.events import token_issued, token_revoked
    from services.platform.actions.log import append, operator_sink, prepare_topic
    from services.platform.auth.tokens import hash_secret, new_secret
    from services.platform.config import kafka_bootstrap
    from services.platform.kafka.producer import BrokerUnavailable

    now = dt.datetime.now(dt.UTC)
    if args.action == "issue":
        record = token_issued(token, actor, now, reason=token.note)
    else:
        record = token_revoked(token, actor, now, reason=args.reason)
    timeout = settings.visits.request_timeout_seconds
    bootstrap = kafka_bootstrap(settings)
    sink = operator_sink(bootstrap, timeout)
    try:
        await prepare_topic(bootstrap, settings.layout, timeout)
        delivery = await append(sink, Codec.default(), record)
    except BrokerUnavailable as exc:
        print(
            f"shouwang tokens {args.action}: the action could not be recorded on Kafka ({exc}); "
            "nothing was changed, run it again when Kafka is back",
            file=sys.stderr,
        )
        return 3
    finally:
        await sink.close()
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
    from services.visits.imports.households import import_households, parse

    return run_csv_import(args, settings, "households", parse, import_households)


def run_csv_import(
    args: argparse.Namespace,
    settings: Settings,
    what: str,
    parse: Callable[..., Any],
    import_rows: Callable[..., Awaitable[Any]],
) -> int:
    """`shouwang import WHAT FILE`: check the CSV (--check) or import it through the sealer.

    `parse(text, codec, actor, as_of, now)` and `import_rows(text, codec, sink, sealer, actor,
    as_of, skip_bad, now)` are the kind's own; the reporting and exit codes are shared: 1 bad
    rows, 2 an unreadable file, 3 nothing or not everything acknowledged (run it again).
    """
    from services.contract.codec import Codec
    from services.platform.personal.keys import KeysUnavailable
    from services.visits.imports.households import CHINA, CsvFileError, read_text

    actor = args.actor or f"operator:{getpass.getuser()}"
    as_of = dt.datetime.combine(args.as_of, dt.time(), CHINA) if args.as_of else None
    try:
        text = read_text(args.file)
    except OSError as exc:
        raise SettingsError(f"cannot read {args.file}: {exc.strerror}") from exc
    codec = Codec.default()
    now = dt.datetime.now(dt.UTC)
    try:
        if args.check:
            parsed = parse(text, codec, actor, as_of, now)
            for warning in parsed.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            for problem in parsed.problems:
                print(problem, file=sys.stderr)
            print(f"{parsed.rows} rows, {len(parsed.bad_lines)} bad")
            return 1 if parsed.problems else 0
        report = asyncio.run(
            _import(import_rows, text, codec, settings, actor, as_of, args.skip_bad, now)
        )
    except CsvFileError as exc:
        print(f"shouwang import {what}: {args.file}: {exc}", file=sys.stderr)
        return 2
    except KeysUnavailable as exc:
        print(
            f"shouwang import {what}: the personal-data key store is unreachable ({exc}); "
            "nothing was written, run the import again",
            file=sys.stderr,
        )
        return 3
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in report.problems:
        print(problem, file=sys.stderr)
    if report.refused:
        print(
            f"{len(report.bad_lines)} of {report.rows} rows are bad; nothing imported "
            "(fix them, or give --skip-bad to import the rest)",
            file=sys.stderr,
        )
        return 1
    print(
        f"imported {report.imported} of {report.rows} rows"
        + (f", skipped {len(report.bad_lines)} bad" if report.bad_lines else "")
    )
    if report.unavailable:
        print(
            f"{report.unavailable} rows were not acknowledged by Kafka; run the import again "
            "(rows already imported are not duplicated downstream)",
            file=sys.stderr,
        )
        return 3
    return 0


async def _import(import_rows, text, codec, settings, actor, as_of, skip_bad, now):
    from services.visits.bootstrap import sealed_sink

    async with sealed_sink(settings) as (sealer, sink):
        return await import_rows(text, codec, sink, sealer, actor, as_of, skip_bad, now)


def add_import_command(importing: argparse._SubParsersAction) -> None:
    """Register `shouwang import cadres FILE.csv` beside `import households`."""
    cadres = importing.add_parser("cadres", help="a cadre roster CSV (cadre.registry)")
    cadres.add_argument("file", type=Path)
    cadres.add_argument(
        "--skip-bad", action="store_true", help="import the good rows of a file with bad rows"
    )
    cadres.add_argument(
        "--as-of", type=dt.date.fromisoformat, help="occurred_at for rows without 登记日期"
    )
    cadres.add_argument("--actor", default=None, help="operator id (default: operator:$USER)")
    cadres.add_argument("--check", action="store_true", help="check only, write nothing")
    cadres.set_defaults(run=run_import_cadres)


def run_import_cadres(args: argparse.Namespace, settings: Settings) -> int:
    from services.visits.imports.cadres import import_cadres, parse

    return run_csv_import(args, settings, "cadres", parse, import_cadres)
