"""What `shouwang tokens issue|revoke|list` runs: the token table, each change logged first.

An issue or revocation is recorded on operator.actions before the table changes (see
_logged_token_change); `list` only reads the table. Every service takes revocations from the
log within a second (platform/auth/revocations.py), so `revoke` also works while PostgreSQL is
down: the token is found in its TOKEN_ISSUED event, the revocation is recorded and in force, and
the command exits 4 saying the table is behind (run it again once PostgreSQL is back).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from dataclasses import replace

from services.contract.codec import Codec
from services.platform.actions.events import (
    OperatorActionError,
    check_actor,
    check_reason,
    default_actor,
    token_issued,
    token_revoked,
    token_subject,
)
from services.platform.actions.log import read_actions
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
from services.platform.config import Settings, SettingsError, kafka_bootstrap
from services.platform.kafka.producer import BrokerUnavailable, Delivery
from services.platform.postgres.errors import FAILED
from services.platform.quotas import QuotaOverride
from services.platform.unreachable import ServerUnreachable, recognise
from services.visits.bootstrap import record_operator_action, token_store
from services.visits.townships import (
    check_townships,
    check_villages,
    known_townships,
    known_villages,
)


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


_QUOTA_OPTIONS = {
    "max_concurrent": "--max-concurrent",
    "rate_per_second": "--rate",
    "burst": "--burst",
}
TABLE_UNREACHABLE = FAILED
TABLE_BEHIND = 4  # exit status: revoked on the log (in force), the table not updated yet


async def _tokens(args: argparse.Namespace, settings: Settings, actor: str | None) -> int:
    if args.action == "revoke":
        assert actor is not None
        try:
            return await _tokens_in_table(args, settings, actor)
        except TABLE_UNREACHABLE as exc:
            return await _revoke_from_log(args, settings, actor, exc)
    return await _tokens_in_table(args, settings, actor)


async def _tokens_in_table(args: argparse.Namespace, settings: Settings, actor: str | None) -> int:
    async with token_store(settings) as store:
        if args.action == "list":
            for token in await store.list():
                print(_describe(token))
            return 0
        if args.action == "issue":
            if args.township:  # checked against the registries before anything is recorded
                check_townships(args.township, await known_townships(settings))
            villages = getattr(args, "village", [])
            if villages and len(set(args.township)) == 1:  # else new_token says what is wrong
                [township] = set(args.township)
                check_villages(township, villages, await known_villages(settings, township))
            try:
                quota = QuotaOverride(args.max_concurrent, args.rate, args.burst)
            except ValueError as exc:  # "field: why" → the option's name: why
                field, _, why = str(exc).partition(": ")
                raise SettingsError(f"{_QUOTA_OPTIONS.get(field, field)}: {why}") from exc
            try:
                token = new_token(
                    args.kind,
                    args.holder,
                    args.township,
                    args.event_type,
                    args.note,
                    quota=quota,
                    villages=villages,
                    service_point=getattr(args, "service_point", False),
                )
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
    try:
        if args.action == "issue":
            changed, secret, delivery = await issue_logged(settings, store, token, actor)
            record_action = "TOKEN_ISSUED"
        else:
            record = token_revoked(token, actor, now, reason=args.reason)
            record_action = record["action"]
            delivery = await record_operator_action(settings, record)
            changed, secret = await store.revoke(token.token_id, now), None
    except BrokerUnavailable as exc:
        print(
            f"shouwang tokens {args.action}: the action could not be recorded on Kafka ({exc}); "
            "nothing was changed, run it again when Kafka is back",
            file=sys.stderr,
        )
        return 3
    print(_describe(changed))
    if secret is not None:
        print(f"token (shown once, keep it secret): {secret}")
    print(
        f"recorded {record_action} by {actor} on {delivery.topic}[{delivery.partition}]"
        f"@{delivery.offset}",
        file=sys.stderr,
    )
    return 0


async def issue_logged(
    settings: Settings, store: PostgresTokenStore, token: Token, actor: str
) -> tuple[Token, str, Delivery]:
    """Issue `token` (with its id): its TOKEN_ISSUED recorded first (BrokerUnavailable: nothing
    stored), then stored; the stored token, its secret (for the caller to show once) and where
    the issue landed. The scope is the caller's to check (`new_token`, the registries)."""
    record = token_issued(token, actor, wall_clock(), reason=token.note)
    delivery = await record_operator_action(settings, record)
    secret = new_secret()
    return await store.issue(token, hash_secret(secret)), secret, delivery


async def _revoke_from_log(
    args: argparse.Namespace, settings: Settings, actor: str, cause: BaseException
) -> int:
    """Revoke with the token table unreachable: the token's facts come from its TOKEN_ISSUED
    event, and the TOKEN_REVOKED event is what every service acts on. The table is updated by
    running the command again (the same event id is written again: consumers keep one)."""
    why = f"PostgreSQL unreachable ({type(cause).__name__})"
    try:
        history = await read_actions(
            kafka_bootstrap(settings), Codec.default(), token_subject(args.token_id)
        )
    except BrokerUnavailable as exc:
        raise _both_unreachable(settings, cause, exc, "operator.actions could not be read") from exc
    issued = [a for a in history if a["action"] == "TOKEN_ISSUED"]
    if not issued:
        print(f"no token {args.token_id} on operator.actions ({why})", file=sys.stderr)
        return 1
    facts = issued[-1]["token"]
    token = Token(
        token_id=facts["token_id"],
        kind=facts["kind"].lower(),
        holder=facts["holder"],
        townships=None if facts["townships"] is None else frozenset(facts["townships"]),
        event_types=None if facts["event_types"] is None else frozenset(facts["event_types"]),
        # Issued before the village scope (operator_action v3 and older): decoded as null.
        villages=None if facts.get("villages") is None else frozenset(facts["villages"]),
        service_point=facts.get("service_point", False),
        note=facts["note"],
    )
    if not any(a["action"] == "TOKEN_REVOKED" for a in history):
        record = token_revoked(token, actor, wall_clock(), reason=args.reason)
        try:
            delivery = await record_operator_action(settings, record)
        except BrokerUnavailable as exc:
            raise _both_unreachable(
                settings, cause, exc, "the revocation could not be recorded"
            ) from exc
        print(
            f"recorded {record['action']} by {actor} on {delivery.topic}[{delivery.partition}]"
            f"@{delivery.offset}",
            file=sys.stderr,
        )
    shown = _describe(replace(token, revoked_at=wall_clock()))
    print(
        f"{shown}: revoked on operator.actions, refused by every service within a second;"
        f" the token table is not updated ({why}): run this command again when "
        "PostgreSQL is back, so that `tokens list` shows it",
        file=sys.stderr,
    )
    return TABLE_BEHIND


def _both_unreachable(
    settings: Settings, table: BaseException, log: BaseException, what: str
) -> ServerUnreachable:
    """PostgreSQL and Kafka both down: the CLI's one line (exit 3) names both, where and the
    variables, as for any unreachable server (platform/unreachable.py)."""
    postgres = recognise(table, settings)
    kafka = recognise(log, settings)
    return ServerUnreachable(
        "PostgreSQL and Kafka",
        "",
        "",
        "",
        message=f"{postgres or table}; {what}: {kafka or log}; nothing was changed, run it "
        "again when either is back",
    )


def _describe(token: Token) -> str:
    towns = ",".join(sorted(token.townships)) if token.townships else "*"
    types = (
        ",".join(sorted(t.rsplit(".", 1)[-1] for t in token.event_types))
        if token.event_types
        else "none"  # an auditor's token writes nothing; "*" would say it writes anything
        if token.read_only
        else "*"
    )
    if token.villages:
        towns += f" villages={','.join(sorted(token.villages))}"
    if token.service_point:
        towns += " service-point"
    state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
    limits = f" {token.quota.describe()}" if not token.quota.empty else ""
    return (
        f"{token.token_id}  {token.kind:8} {token.holder:16} townships={towns} "
        f"types={types}{limits} {state} {token.note}".rstrip()
    )
