"""Operator action records (OperatorActionRecorded), built and read back; no I/O but the
warning logged for a record that does not decode.

Event ids derive from the subject and the action (uuid5), so a command retried after a lost
acknowledgement writes the same event again, which consumers drop as a duplicate. An opening of
personal data is a new act each time: its id derives from an access id the caller makes.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from services.contract.catalogue_changes import CatalogueDigest, Change, PoolDigest, changes
from services.contract.errors import ContractError
from services.contract.personal import SUBJECT_KINDS as PERSONAL_KINDS
from services.contract.personal import Subject
from services.contract.topics import OPERATOR_ACTIONS

log = logging.getLogger(__name__)
EVENT_TYPE = "shouwang.events.OperatorActionRecorded"
NAMESPACE = uuid.UUID("2b0f7c4e-93a1-5d8e-b6f2-8c1d4e7a9f03")
SOURCES = ("OPERATOR", "SERVICE")
MAX_ACTOR = 128
MAX_REASON = 1000
# What an action can be about: the prefix of its subject_id (and Kafka key).
SUBJECT_KINDS = ("token", "catalogue", *PERSONAL_KINDS)


class OperatorActionError(ValueError):
    """An operator action that cannot be recorded as asked (which field, why)."""


class TokenFacts(Protocol):
    """The public part of a token (services/platform/auth/tokens.py Token has these)."""

    token_id: str
    kind: str
    holder: str
    townships: frozenset[str] | None
    event_types: frozenset[str] | None
    villages: frozenset[str] | None
    service_point: bool
    note: str


def token_subject(token_id: str) -> str:
    return f"token:{token_id}"


def catalogue_subject(catalogue_id: str) -> str:
    return f"catalogue:{catalogue_id}"


def personal_subject(subject: Subject) -> str:
    """The action subject of a person's data: `household:ID` or `cadre:ID`."""
    return f"{subject.kind}:{subject.subject_id}"


def default_actor(user: str) -> str:
    """The actor of a command run without --actor: `operator:` and the login name."""
    return f"operator:{user}"


def check_actor(actor: str) -> str:
    """The actor, or OperatorActionError: it must name someone, in one printable word."""
    if not isinstance(actor, str) or not actor.strip():
        raise OperatorActionError("actor: must name who acts (e.g. operator:li)")
    if len(actor) > MAX_ACTOR:
        raise OperatorActionError(f"actor: at most {MAX_ACTOR} characters")
    if any(c.isspace() or not c.isprintable() for c in actor):
        raise OperatorActionError("actor: no spaces or control characters")
    return actor


def check_reason(reason: str, required: bool = False) -> str:
    """The reason, or OperatorActionError; `required` (personal data) refuses a blank one."""
    if required and (not isinstance(reason, str) or not reason.strip()):
        raise OperatorActionError(
            "reason: required: say why (the request, case or ruling), it is recorded"
        )
    if len(reason) > MAX_REASON:
        raise OperatorActionError(f"reason: at most {MAX_REASON} characters")
    if any(not c.isprintable() for c in reason):
        raise OperatorActionError("reason: no control characters")
    return reason


def token_issued(
    token: TokenFacts, actor: str, now: dt.datetime, source: str = "OPERATOR", reason: str = ""
) -> dict[str, Any]:
    """The record of issuing `token` (its public part only: the secret never reaches here)."""
    return _token_action("TOKEN_ISSUED", token, actor, now, source, reason)


def token_revoked(
    token: TokenFacts, actor: str, now: dt.datetime, source: str = "OPERATOR", reason: str = ""
) -> dict[str, Any]:
    """The record of revoking `token`; one per token, so its id is the token's."""
    return _token_action("TOKEN_REVOKED", token, actor, now, source, reason)


def _token_action(
    action: str, token: TokenFacts, actor: str, now: dt.datetime, source: str, reason: str
) -> dict[str, Any]:
    if not token.token_id:
        raise OperatorActionError("token_id: a token needs its id before its action is recorded")
    subject = token_subject(token.token_id)
    return {
        **_header(action, subject, f"{action}:{subject}", actor, now, source, reason),
        "token": {
            "token_id": token.token_id,
            "kind": token.kind.upper(),
            "holder": token.holder,
            "townships": None if token.townships is None else sorted(token.townships),
            "event_types": None if token.event_types is None else sorted(token.event_types),
            "villages": None if token.villages is None else sorted(token.villages),
            "service_point": token.service_point,
            "note": token.note,
        },
        "catalogue": None,
    }


def catalogue_activated(
    current: CatalogueDigest,
    previous: Mapping[str, Any] | None,
    file_name: str,
    actor: str,
    now: dt.datetime,
    source: str = "OPERATOR",
    reason: str = "",
) -> dict[str, Any] | None:
    """The record activating `current` after `previous` (the last activation record of this
    catalogue id, or None); None when `previous` already has this content: nothing to record."""
    before = None if previous is None else digest_of(previous)
    if before is not None and before.catalogue_id != current.catalogue_id:
        raise OperatorActionError(
            f"catalogue_id: the previous activation is of {before.catalogue_id!r}, "
            f"not {current.catalogue_id!r}"
        )
    if before is not None and before.content_sha256 == current.content_sha256:
        return None
    version = 1 if previous is None else previous["catalogue"]["version"] + 1
    subject = catalogue_subject(current.catalogue_id)
    previous_sha = None if before is None else before.content_sha256
    # The version is in the key: a roll back and forward again (A, B, A, B) repeats a pair of
    # contents, and must not repeat an id that readers and the projector would drop as a copy.
    # A retried command derives the same version from the log, so it still repeats its id.
    key = f"CATALOGUE_ACTIVATED:{subject}:v{version}:{previous_sha}:{current.content_sha256}"
    return {
        **_header("CATALOGUE_ACTIVATED", subject, key, actor, now, source, reason),
        "token": None,
        "catalogue": {
            "catalogue_id": current.catalogue_id,
            "version": version,
            "content_sha256": current.content_sha256,
            "previous_sha256": previous_sha,
            "file_name": file_name,
            "measures": [
                {"measure_id": m, "sha256": h} for m, h in sorted(current.measures.items())
            ],
            "pools": [
                {
                    "pool_id": p.pool_id,
                    "capacity": p.capacity,
                    "capacity_by_township": dict(p.capacity_by_township),
                    "sha256": p.sha256,
                }
                for _, p in sorted(current.pools.items())
            ],
            "sections": dict(sorted(current.sections.items())),
            "changes": [
                {"change": c.change, "item": c.item, "detail": c.detail}
                for c in changes(before, current)
            ],
        },
    }


def personal_data_opened(
    subject: Subject,
    event_ids: Iterable[str],
    actor: str,
    now: dt.datetime,
    access_id: str,
    reason: str,
    source: str = "OPERATOR",
) -> dict[str, Any]:
    """The record that `actor` is being shown `subject`'s personal data from the registry events
    `event_ids`, and why. Written before the data is shown; `access_id` (a fresh UUID per
    opening, made by the caller) keeps two openings apart and one opening's retries together."""
    return _personal_action(
        "PERSONAL_DATA_OPENED", subject, access_id, actor, now, source, reason,
        event_ids=list(event_ids), key_id=None,
    )  # fmt: skip


def personal_data_forgotten(
    subject: Subject, key_id: str, actor: str, now: dt.datetime, reason: str,
    source: str = "OPERATOR",
) -> dict[str, Any]:  # fmt: skip
    """The record that `subject`'s data key `key_id` is being deleted (crypto-shredding); one
    per key, so a repeated `forget` writes the same id again."""
    if not key_id:
        raise OperatorActionError("key_id: the key being deleted must be named")
    return _personal_action(
        "PERSONAL_DATA_FORGOTTEN", subject, key_id, actor, now, source, reason,
        event_ids=[], key_id=key_id,
    )  # fmt: skip


def _personal_action(
    action: str,
    subject: Subject,
    discriminator: str,
    actor: str,
    now: dt.datetime,
    source: str,
    reason: str,
    event_ids: list[str],
    key_id: str | None,
) -> dict[str, Any]:
    if subject.kind not in PERSONAL_KINDS:
        raise OperatorActionError(f"subject: a {' or '.join(PERSONAL_KINDS)}, not {subject.kind!r}")
    if not subject.subject_id:
        raise OperatorActionError("subject: the household or cadre id is empty")
    name = personal_subject(subject)
    check_reason(reason, required=True)
    return {
        **_header(action, name, f"{action}:{name}:{discriminator}", actor, now, source, reason),
        "token": None,
        "catalogue": None,
        "personal": {
            "subject_kind": subject.kind.upper(),
            "subject_id": subject.subject_id,
            "event_ids": [str(e) for e in event_ids],
            "key_id": key_id,
        },
    }


def digest_of(record: Mapping[str, Any]) -> CatalogueDigest:
    """The catalogue digest a CATALOGUE_ACTIVATED record carries."""
    if record.get("action") != "CATALOGUE_ACTIVATED" or not record.get("catalogue"):
        raise OperatorActionError("action: not a catalogue activation")
    c = record["catalogue"]
    return CatalogueDigest(
        catalogue_id=c["catalogue_id"],
        content_sha256=c["content_sha256"],
        measures={m["measure_id"]: m["sha256"] for m in c["measures"]},
        pools={
            p["pool_id"]: PoolDigest(
                p["pool_id"], p["capacity"], dict(p["capacity_by_township"]), p["sha256"]
            )
            for p in c["pools"]
        },
        sections=dict(c["sections"]),
    )


def last_activation(
    records: Iterable[Mapping[str, Any]], catalogue_id: str
) -> Mapping[str, Any] | None:
    """The last CATALOGUE_ACTIVATED record of `catalogue_id`, given records in log order."""
    subject = catalogue_subject(catalogue_id)
    last = None
    for record in records:
        if record.get("action") == "CATALOGUE_ACTIVATED" and record.get("subject_id") == subject:
            last = record
    return last


def describe(record: Mapping[str, Any]) -> str:
    """One line for an operator reading the log (never a secret: none is in the record)."""
    when = _moment(record["occurred_at"]).strftime("%Y-%m-%d %H:%M:%S")
    head = f"{when}  {record['action']:19} {record['subject_id']:28} by {record['actor']}"
    if record.get("token"):
        t = record["token"]
        towns = ",".join(t["townships"]) if t["townships"] else "*"
        types = ",".join(n.rsplit(".", 1)[-1] for n in t["event_types"] or ()) or (
            "none" if t["kind"] == "AUDITOR" else "*"  # an auditor's token writes nothing
        )
        head += f"  {t['kind'].lower()} {t['holder']} townships={towns} types={types}"
        if t.get("villages"):  # decoded from v4 on; older actions carry none (default null)
            head += f" villages={','.join(t['villages'])}"
        if t.get("service_point"):
            head += " service-point"
    if record.get("catalogue"):
        c = record["catalogue"]
        head += f"  v{c['version']} sha256={c['content_sha256'][:12]} {c['file_name']}"
        listed = [Change(x["change"], x["item"], x["detail"]) for x in c["changes"]]
        if listed:
            head += "  changes: " + "; ".join(
                " ".join(part for part in (x.change, x.item, x.detail and f"({x.detail})") if part)
                for x in listed
            )
    if record.get("personal"):
        p = record["personal"]
        if record["action"] == "PERSONAL_DATA_FORGOTTEN":
            head += f"  key {p['key_id']} deleted"
        else:
            head += f"  {len(p['event_ids'])} registry event(s) shown"
    if record.get("reason"):
        head += f"  reason: {record['reason']}"
    return head


def _header(
    action: str, subject: str, key: str, actor: str, now: dt.datetime, source: str, reason: str
) -> dict[str, Any]:
    if source not in SOURCES:
        raise OperatorActionError(f"source: must be one of {', '.join(SOURCES)}")
    if now.tzinfo is None:
        raise OperatorActionError("occurred_at: needs a time zone")
    return {
        "event_id": str(uuid.uuid5(NAMESPACE, key)),
        "subject_id": subject,
        "occurred_at": now,
        "recorded_at": now,
        "source": source,
        "actor": check_actor(actor),
        "action": action,
        "reason": check_reason(reason),
    }


def _moment(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC)


def decode_action(record: Any, codec: Any) -> dict[str, Any] | None:
    """An `operator.actions` record (a ConsumerRecord) as its action, or None with a warning
    when it does not decode: no reader may stop on it, and none may rely on it."""
    try:
        return codec.decode(record.value, expected=OPERATOR_ACTIONS.event_type).record
    except ContractError as exc:
        log.warning("%s[%d]@%d skipped: %s", record.topic, record.partition, record.offset, exc)
        return None
