"""What `shouwang tokens issue|revoke|list` runs: the token table, each change logged first.

An issue or revocation is recorded on operator.actions before the table changes (see
_logged_token_change); `list` only reads the table.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from dataclasses import replace

from services.platform.actions.events import (
    OperatorActionError,
    check_actor,
    check_reason,
    default_actor,
    token_issued,
    token_revoked,
)
from services.platform.auth.tokens import (
    PostgresTokenStore,
    Token,
    TokenError,
    hash_secret,
    new_secret,
    new_token,
    new_token_id,
)
from services.platform.clock import wall_clock
from services.platform.config import Settings, SettingsError
from services.platform.kafka.producer import BrokerUnavailable
from services.visits.bootstrap import record_operator_action, token_store
from services.visits.townships import check_townships, known_townships


def run(args: argparse.Namespace, settings: Settings) -> int:
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
    async with token_store(settings) as store:
        if args.action == "list":
            for token in await store.list():
                print(_describe(token))
            return 0
        if args.action == "issue":
            if args.township:  # checked against the registries before anything is recorded
                check_townships(args.township, await known_townships(settings))
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
