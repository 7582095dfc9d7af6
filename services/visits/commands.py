"""The visits service's command-line entry points: `visits`, `tokens ...`, `import households`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import sys
from pathlib import Path

import asyncpg

from services.config import Settings, SettingsError
from services.contract.codec import Codec
from services.personal.keys import KeysUnavailable
from services.readmodel.migrate import apply_migrations

from .bootstrap import database_url, kafka_bootstrap, serve
from .household_import import CHINA, CsvFileError, import_households, read_text
from .producer import KafkaSink
from .tokens import PostgresTokenStore, Token, TokenError, hash_secret, new_secret, new_token


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
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
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
    from services.support.commands import add_import_command as add_import_cadres

    add_import_cadres(what)


def run_visits(args: argparse.Namespace, settings: Settings) -> int:
    asyncio.run(serve(settings))
    return 0


def run_tokens(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_tokens(args, database_url(settings)))


async def _tokens(args: argparse.Namespace, dsn: str) -> int:
    await apply_migrations(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        store = PostgresTokenStore(pool)
        if args.action == "issue":
            try:
                token = new_token(args.kind, args.holder, args.township, args.event_type, args.note)
            except TokenError as exc:
                raise SettingsError(str(exc)) from exc
            secret = new_secret()
            stored = await store.issue(token, hash_secret(secret))
            print(_describe(stored))
            print(f"token (shown once, keep it secret): {secret}")
        elif args.action == "revoke":
            revoked = await store.revoke(args.token_id, dt.datetime.now(dt.UTC))
            if revoked is None:
                print(f"no token {args.token_id}", file=sys.stderr)
                return 1
            print(_describe(revoked))
        else:
            for token in await store.list():
                print(_describe(token))
        return 0
    finally:
        await pool.close()


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
            from .household_import import parse

            parsed = parse(text, codec, actor, as_of, now)
            for warning in parsed.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            for problem in parsed.problems:
                print(problem, file=sys.stderr)
            print(f"{parsed.rows} rows, {len(parsed.bad_lines)} bad")
            return 1 if parsed.problems else 0
        report = asyncio.run(_import(text, codec, settings, actor, as_of, args.skip_bad, now))
    except CsvFileError as exc:
        print(f"shouwang import households: {args.file}: {exc}", file=sys.stderr)
        return 2
    except KeysUnavailable as exc:
        print(
            f"shouwang import households: the personal-data key store is unreachable ({exc}); "
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


async def _import(text, codec, settings, actor, as_of, skip_bad, now):
    from services.personal.sealer import postgres_sealer

    async with postgres_sealer(database_url(settings)) as sealer:
        sink = KafkaSink(kafka_bootstrap(settings), timeout=settings.visits.request_timeout_seconds)
        try:
            return await import_households(text, codec, sink, sealer, actor, as_of, skip_bad, now)
        finally:
            await sink.close()
