"""One input record's effect on its household's row: read, apply, assess, and what to emit.

No faust here: the app reads the record (`read_input`: decode, translate, key check, or the
dead-letter kind), looks the row up, calls `apply_records` with the household's records of a
batch (or `reassess` when a deadline may have passed), stores the row and sends what the
outcome says. Replay (services/audit) runs the
same steps: `read_input`, `evolve`, `chain_link`, and `emitted_digest` to check what was sent.

Idempotence does not rest on the broker: a seen event id changes no state, a log position
already chained is not chained again, and an emitted assessment's id is a uuid5 of household,
state version and content, so a re-emit after a crash is the same event.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.contract.codec import Codec, Decoded
from services.contract.inputs import MONITORING_EXPECTED
from services.contract.rejection import INVALID, Rejected, check_key, decode
from services.monitoring.adapters import avro_translation as avro
from services.monitoring.domain.assess import Assessment, digest_of, next_deadline, remembering
from services.monitoring.domain.facts import registry_at
from services.monitoring.domain.fold import NotApplicable, evolve
from services.monitoring.domain.policy import Policy, PolicyBook
from services.monitoring.domain.row import Row, Summary
from services.monitoring.domain.state import HouseholdState, empty


@dataclass(frozen=True, slots=True)
class Position:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Outcome:
    row: Row
    assessment: Assessment
    policy: Policy
    summary: Summary
    duplicate: bool  # the event id had been applied before
    emit: dict[str, Any] | None  # a RiskAssessed record, when there is one to (re-)send


@dataclass(frozen=True, slots=True)
class Input:
    """An input record monitoring can apply: decoded, translated, keyed by its household."""

    decoded: Decoded
    event: Any


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an input record is not applied: its dead-letter kind and the error."""

    kind: str  # UNKNOWN_SCHEMA | UNDECODABLE | INVALID | NOT_APPLICABLE (DeadLetterKind)
    error: str


def read_input(codec: Codec, topic: str, key: bytes | None, value: bytes) -> Input | Refusal:
    """Decode with the topic's expected type, translate, check the key is the household's."""
    try:
        decoded = decode(codec, value, MONITORING_EXPECTED.get(topic))
        try:
            event = avro.event_from(decoded.event_type, decoded.record)
        except avro.Untranslatable as exc:
            raise Rejected(INVALID, str(exc)) from exc
        check_key(key, event.household_id)
    except Rejected as exc:
        return Refusal(exc.kind, exc.reason)
    return Input(decoded, event)


def emitted_digest(record: dict[str, Any]) -> str:
    """`Assessment.digest()` of an emitted RiskAssessed record's content."""
    return digest_of(avro.assessment_content(record))


def chain_link(head: str, topic: str, partition: int, offset: int, frame: bytes) -> str:
    """One link of a household's chain on one topic: sha256(head | topic:partition:offset |
    frame), `head` being the topic's previous head ("" for its first record)."""
    return hashlib.sha256(f"{head}|{topic}:{partition}:{offset}|".encode() + frame).hexdigest()


def chain_hash(chain: tuple[tuple[str, int, int, str], ...]) -> str:
    """The hash stored with assessments: over each topic's chain head and position."""
    text = "|".join(f"{t}:{p}:{o}:{h}" for t, p, o, h in chain)
    return hashlib.sha256(text.encode()).hexdigest() if chain else ""


def extend_chain(row: Row, position: Position, frame: bytes) -> tuple:
    """Link `frame` into the household's chain for its topic, unless that position (or a later
    one) is already linked: a redelivered record is chained once."""
    links = {t: (p, o, h) for t, p, o, h in row.chain}
    previous = links.get(position.topic)
    if previous is not None and previous[1] >= position.offset:
        return row.chain
    head = previous[2] if previous else ""
    digest = chain_link(head, position.topic, position.partition, position.offset, frame)
    links[position.topic] = (position.partition, position.offset, digest)
    return tuple((t, *links[t]) for t in sorted(links))


def policy_for(policies: PolicyBook, pinned: str | None, as_of: datetime) -> Policy:
    """The version in force on `as_of` (linked to those it succeeds), or the pinned one alone."""
    return policies.pinned(pinned) if pinned else policies.for_date(as_of.date())


def apply_record(
    row: Row | None,
    event: Any,
    position: Position,
    frame: bytes,
    policies: PolicyBook,
    now: datetime,
    pinned_policy: str | None = None,
    event_clock: bool = False,
) -> Outcome:
    """Fold `event` into `row` and assess; raises fold.NotApplicable for another household's.

    The assessment speaks for `now`, or (with `event_clock`, for replays and simulations) for
    the household's latest event, which makes the emitted stream a pure function of the log.
    """
    base = row or Row(empty(event.household_id))
    state = evolve(base.state, event)
    duplicate = state is base.state
    chain = extend_chain(base, position, frame)
    return _assessed(base, state, chain, policies, now, pinned_policy, duplicate, event_clock)


@dataclass(frozen=True, slots=True)
class Folded:
    """A household's records of one batch applied at once: the outcome (None when none applied),
    and per record, in the order given, None if applied or the exception that refused it."""

    outcome: Outcome | None
    refused: tuple[Exception | None, ...]
    duplicates: tuple[bool, ...]  # per record: its event id had been applied before


def apply_records(
    row: Row | None,
    records: list[tuple[Any, Position, bytes]],
    policies: PolicyBook,
    now: datetime,
    pinned_policy: str | None = None,
    event_clock: bool = False,
) -> Folded:
    """Fold each (event, position, frame) of one household into `row` in the order given, then
    assess once: the row, chain and emitted digest `apply_record` would reach one record at a
    time (the fold is order-free; the chain is per topic, in offset order), with the
    intermediate assessments, which nothing would read, never made.

    A record the fold refuses (`fold.NotApplicable`, `LookupError`) is left out, as
    `apply_record` raising would leave it out of the stored row. If the one assessment raises
    (`LookupError`: no policy in force on its date), the caller applies the records one at a
    time instead, as before. A redelivered record among them re-sends the last emitted record
    when the assessment did not change (`_assessed`): a send lost in a crash after its row was
    stored reaches the log whatever the records around it in the batch."""
    base = row or Row(empty(records[0][0].household_id))
    state, chain = base.state, base.chain
    refused: list[Exception | None] = []
    duplicates: list[bool] = []
    applied = 0
    for event, position, frame in records:
        try:
            after = evolve(state, event)
        except (NotApplicable, LookupError) as exc:
            refused.append(exc)
            duplicates.append(False)
            continue
        refused.append(None)
        duplicates.append(after is state)
        state = after
        chain = extend_chain(Row(state, chain), position, frame)
        applied += 1
    if not applied:
        return Folded(None, tuple(refused), tuple(duplicates))
    duplicate = any(duplicates)
    outcome = _assessed(base, state, chain, policies, now, pinned_policy, duplicate, event_clock)
    if duplicate and state is not base.state:
        # some records were new: count the outcome as a change (metrics), not a redelivery
        outcome = replace(outcome, duplicate=False)
    return Folded(outcome, tuple(refused), tuple(duplicates))


def reassess(
    row: Row,
    policies: PolicyBook,
    now: datetime,
    pinned_policy: str | None = None,
    event_clock: bool = False,
) -> Outcome:
    """Assess again with no new event (a deadline may have passed)."""
    return _assessed(row, row.state, row.chain, policies, now, pinned_policy, False, event_clock)


def _assessed(
    row: Row,
    state: HouseholdState,
    chain: tuple,
    policies: PolicyBook,
    now: datetime,
    pinned: str | None,
    duplicate: bool,
    event_clock: bool,
) -> Outcome:
    """Assess `state` (the row's, or the row's after an event, with `chain` its chain then);
    what was emitted last is the row's. The outcome's row is built once, here."""
    last = state.last_occurred_at
    as_of = (last if event_clock else max(now, last)) if last else now
    policy = policy_for(policies, pinned, as_of)
    # the row keeps the state that remembers this assessment's views, for the next event's
    assessment, state = remembering(state, policy, as_of)
    content = assessment.content()
    # Equal content, equal digest: hash only what may have changed (a row read back from the
    # table has no content and is compared by its stored digest).
    digest = (
        row.emitted_digest
        if row.emitted_content is not None and content == row.emitted_content
        else digest_of(content)  # assessment.digest(), from the content already at hand
    )
    emit = None
    stored = None
    if duplicate and digest == row.emitted_digest and row.emitted_event_id:
        # A redelivered input re-sends the last emitted record as it was (its id, as_of,
        # chain hash and recorded_at): if a crash lost that send after the row was stored,
        # this is how it reaches the log, and a copy is indistinguishable from the first.
        emit = avro.assessment_record(
            replace(assessment, as_of=row.emitted_as_of or assessment.as_of),
            state.version,
            row.emitted_recorded_at or now,
            row.emitted_chain_hash if row.emitted_as_of else chain_hash(chain),
            row.emitted_event_id,
        )
    elif digest != row.emitted_digest or duplicate:
        emit = avro.assessment_record(
            assessment, state.version, now, chain_hash(chain), digest=digest
        )
        stored = Row(
            state,
            chain,
            digest,
            str(emit["event_id"]),
            emit["as_of"],
            emit["chain_hash"],
            emit["recorded_at"],
            content,
        )
    if stored is None:  # what was emitted stays; the state is the one remembering its views
        stored = Row(
            state,
            chain,
            row.emitted_digest,
            row.emitted_event_id,
            row.emitted_as_of,
            row.emitted_chain_hash,
            row.emitted_recorded_at,
            row.emitted_content,
        )
    registry = registry_at(state, as_of)
    summary = Summary(
        workflow=assessment.workflow,
        category=assessment.category,
        township=registry.township if registry else "unknown",
        level=assessment.level,
        overdue=assessment.overdue,
        open_problems=len(assessment.open_problems),
        problems=assessment.problems_found,
        rectified=assessment.problems_rectified,
        # On the event clock a re-assessment is as of the same latest event: a tick could
        # change nothing, so none is asked for.
        next_check=None if event_clock else next_deadline(assessment, policy, state),
    )
    return Outcome(stored, assessment, policy, summary, duplicate, emit)
