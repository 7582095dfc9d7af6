"""The ingest write path: each record prepared, scope-checked, de-duplicated, sealed, produced.

No aiohttp here: `entrypoints/http.py` authenticates the request, reads its JSON and hands the
bodies to `Ingest.ingest`, which answers one `Outcome` per body. Order per record: contract and
domain validation (422) → township scope (403; 503 when the directory cannot answer) → event id
reuse (409; a re-send of a recent record is answered from memory, `duplicate: true`) → personal
data sealed with the subject's key (503 when the key store is down and the key uncached; nothing
is produced) → broker acknowledgement (202, or 503). The clock comes in through the ports.
A review decision's level (domain/levels.py: 403 when the token's level may not make it, 422
naming `body` or `approving_level` when they disagree with it) is checked with the scope; then
its procedure order against the monitoring worker's household view (domain/procedure.py: 422
`missing_step` naming the step it skips; accepted and counted when the view cannot tell).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.contract.catalogue import Catalogue
from services.contract.codec import Codec
from services.contract.errors import InvalidRecord
from services.contract.inputs import EventKind
from services.contract.personal import SealError
from services.platform.auth.tokens import Token
from services.platform.http.problems import problem_body
from services.platform.kafka.producer import BrokerUnavailable, Delivery, RecordSink
from services.platform.personal.keys import KeysUnavailable
from services.platform.personal.sealer import PersonalSealer
from services.platform.quotas import DEFAULT_QUOTAS, Quota
from services.visits.accepted_decisions import AcceptedDecisions
from services.visits.adapters.directory import CachedDirectory, DirectoryUnavailable, Place
from services.visits.adapters.household_view import HouseholdViews
from services.visits.domain.levels import level_refusal, writer_level
from services.visits.domain.records import Origin, content_digest, prepare
from services.visits.metrics import VisitsMetrics
from services.visits.procedure_order import gaps
from services.visits.recent_events import Acknowledged, RecentEvents

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Request limits and timing (from VisitsSettings): the write path uses `future_skew`, the
    HTTP entrypoint the others."""

    max_body_bytes: int = 1_048_576
    max_batch: int = 500
    future_skew: dt.timedelta = dt.timedelta(minutes=5)
    retry_after_seconds: int = 5
    max_in_flight: int = 256  # write requests waiting for the broker at once
    operator_reserve: float = 0.25  # share of max_in_flight only operator tokens may use
    body_timeout_seconds: float = 30.0  # from a request's headers to the end of its body
    quotas: Mapping[str, Quota] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))


class IngestPorts(Protocol):
    """What the write path reads, looked up on every call (a test may swap the sink)."""

    codec: Codec
    catalogue: Catalogue  # a measure step names one of its measures and that measure's pool
    sink: RecordSink
    directory: CachedDirectory
    sealer: PersonalSealer
    metrics: VisitsMetrics
    limits: Limits
    recent: RecentEvents
    clock: Callable[[], dt.datetime]
    views: HouseholdViews  # the monitoring worker's household view (procedure order)
    accepted: AcceptedDecisions  # review decisions accepted lately, maybe not yet in the view


@dataclass
class Outcome:
    """What happened to one record of a request."""

    index: int
    status: int
    event_id: str | None = None
    delivery: Delivery | None = None
    duplicate: bool = False
    reason: str | None = None
    message: str | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The record's answer, as `results[i]` of a batch (a single POST drops `index`); a
        refused record's answer has the members of a problem (RFC 9457), as a refused request's."""
        body: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.event_id is not None:
            body["event_id"] = self.event_id
        if self.delivery is not None:
            body.update(
                topic=self.delivery.topic,
                partition=self.delivery.partition,
                offset=self.delivery.offset,
                duplicate=self.duplicate,
            )
        if self.reason is not None:
            body.update(
                problem_body(
                    self.status, None, self.message, code=self.reason, errors=self.problems
                )
            )
        return body


class Ingest:
    """The write path, shared by single-record and batch routes."""

    def __init__(self, ports: IngestPorts):
        self.ports = ports

    async def ingest(self, kind: EventKind, bodies: list[Any], token: Token) -> list[Outcome]:
        """Validate, scope-check, de-duplicate and produce `bodies`; one Outcome per body."""
        ports = self.ports
        now = ports.clock()
        origin = Origin(actor=token.holder, source=token.source)
        outcomes: list[Outcome] = []
        ready: list[tuple[Outcome, dict[str, Any]]] = []
        for index, body in enumerate(bodies):
            prepared = prepare(
                ports.codec, kind, body, origin, now, ports.limits.future_skew, ports.catalogue
            )
            if not prepared.ok:
                ports.metrics.reject("invalid")
                outcomes.append(
                    Outcome(
                        index,
                        422,
                        event_id_of(body),
                        reason="invalid",
                        message="the record does not fit the contract",
                        problems=prepared.problems,
                    )
                )
                continue
            outcome = Outcome(index, 202, prepared.event_id)
            outcomes.append(outcome)
            ready.append((outcome, prepared.record))
        ready = await self._in_scope(kind, token, ready)
        if kind.slug == "review-decisions":
            ready = await self._in_order(ready)
        await self._produce(kind, ready)
        return outcomes

    async def _sealed(
        self, kind: EventKind, sends: list[tuple[Outcome, dict[str, Any], str]]
    ) -> list[tuple[Outcome, dict[str, Any], str]]:
        """The records to send, registry records with their personal data sealed.

        Only records about to be sent are sealed: a duplicate is answered from memory before,
        so a retry of an acknowledged record needs no key (the key store may be down, or the
        key erased since). The content digest is of the record as received, for that reason.
        """
        sealer = self.ports.sealer
        if not sealer.seals(kind.event_type):
            return sends
        kept = []
        await sealer.prepare(kind.event_type, [record for _, record, _ in sends])
        for outcome, record, digest in sends:
            try:
                kept.append((outcome, await sealer.seal(kind.event_type, record), digest))
            except (KeysUnavailable, SealError) as exc:
                # The message names the subject kind and key id at most, never a value.
                log.warning("cannot seal personal data of a %s: %s", kind.short_name, exc)
                self._refuse(
                    outcome,
                    503,
                    "unavailable",
                    "cannot protect the record's personal data right now; retry later with the "
                    "same event_id",
                )
        return kept

    async def _in_scope(
        self, kind: EventKind, token: Token, ready: list[tuple[Outcome, dict[str, Any]]]
    ) -> list[tuple[Outcome, dict[str, Any]]]:
        kept = []
        known: dict[str, Place] = {}
        lookups = [r["household_id"] for _, r in ready if "household_id" in r]
        if token.townships is not None and lookups:
            try:
                known = await self.ports.directory.places(lookups)
            except DirectoryUnavailable:
                for outcome, _ in ready:
                    self._refuse(
                        outcome,
                        503,
                        "unavailable",
                        "cannot check the household's township right now; retry later",
                    )
                return []
        level = writer_level(token.kind, token.villages is not None)
        for outcome, record in ready:
            refusal = scope_problem(kind, token, record, known)
            if refusal is not None:
                self._refuse(outcome, 403, "forbidden", refusal[1], [refusal])
                continue
            if kind.slug == "review-decisions":
                wrong = level_refusal(record, level, token.service_point)
                if wrong is not None:
                    reason = "forbidden" if wrong.status == 403 else "invalid"
                    self._refuse(
                        outcome,
                        wrong.status,
                        reason,
                        f"{wrong.field}: {wrong.message}",
                        [(wrong.field, wrong.message)],
                    )
                    continue
            kept.append((outcome, record))
        return kept

    async def _in_order(
        self, ready: list[tuple[Outcome, dict[str, Any]]]
    ) -> list[tuple[Outcome, dict[str, Any]]]:
        """The review decisions that skip no step of the procedure (procedure_order.py)."""
        kept = []
        for (outcome, record), gap in await gaps(self.ports, ready):
            if gap is None:
                kept.append((outcome, record))
            else:
                self._refuse(
                    outcome, 422, "missing_step", f"{gap.field}: {gap.message}",
                    [(gap.field, gap.message)],
                )  # fmt: skip
        return kept

    async def _produce(self, kind: EventKind, ready: list[tuple[Outcome, dict[str, Any]]]) -> None:
        ports = self.ports
        first_in_request: dict[str, tuple[str, Outcome]] = {}
        sends: list[tuple[Outcome, dict[str, Any], str]] = []
        for outcome, record in ready:
            event_id = str(record["event_id"])
            digest = content_digest(kind, record)
            earlier = ports.recent.get(event_id)
            if earlier is None and event_id in first_in_request:
                first_digest, _ = first_in_request[event_id]
                if first_digest != digest:
                    self._conflict(outcome)
                else:
                    outcome.duplicate = True  # same event twice in one request: send once
                continue
            if earlier is not None:
                if earlier.digest != digest:
                    self._conflict(outcome)
                else:
                    outcome.delivery, outcome.duplicate = earlier.delivery, True
                    ports.metrics.duplicates.labels(kind.short_name).inc()
                continue
            first_in_request[event_id] = (digest, outcome)
            sends.append((outcome, record, digest))
        sends = await self._sealed(kind, sends) if sends else sends
        if sends:
            await self._send(kind, sends)
        # Copies inside one request share the first copy's fate.
        for outcome, record in ready:
            event_id = str(record["event_id"])
            first = first_in_request.get(event_id)
            if outcome.duplicate and outcome.delivery is None and first is not None:
                source = first[1]
                outcome.status, outcome.delivery = source.status, source.delivery
                outcome.reason, outcome.message = source.reason, source.message

    async def _send(
        self, kind: EventKind, sends: list[tuple[Outcome, dict[str, Any], str]]
    ) -> None:
        """Encode every record, hand them to the sink together, then settle each outcome."""
        ports = self.ports
        encoded: list[tuple[Outcome, dict[str, Any], str]] = []
        outgoing: list[tuple[str, bytes, bytes]] = []
        for outcome, record, digest in sends:
            try:
                value = ports.codec.encode(kind.event_type, record)
            except InvalidRecord as exc:  # validation should have caught it; refuse, do not crash
                self._refuse(
                    outcome, 422, "invalid", "the record does not fit the contract", exc.problems
                )
                continue
            encoded.append((outcome, record, digest))
            outgoing.append((kind.topic.name, str(record[kind.topic.key]).encode("utf-8"), value))
        if not outgoing:
            return
        started = time.perf_counter()
        results = await ports.sink.send_many(outgoing)
        waited = time.perf_counter() - started
        produce_seconds = ports.metrics.produce_seconds.labels(kind.short_name)
        produced = ports.metrics.produced.labels(kind.short_name)
        failures = [r for r in results if isinstance(r, BrokerUnavailable)]
        if failures:
            log.warning(
                "broker unavailable for %d of %d %s records: %s",
                len(failures),
                len(results),
                kind.short_name,
                failures[0],
            )
        for (outcome, record, digest), result in zip(encoded, results, strict=True):
            if isinstance(result, BrokerUnavailable):
                self._refuse(
                    outcome,
                    503,
                    "unavailable",
                    "the event log did not acknowledge the record; "
                    "retry later with the same event_id",
                )
                continue
            produce_seconds.observe(waited)
            produced.inc()
            outcome.delivery = result
            ports.recent.put(str(record["event_id"]), Acknowledged(digest, result))
            if kind.slug == "review-decisions":
                ports.accepted.remember(record["household_id"], str(record["event_id"]))
            if kind.topic.key == "household_id" and kind.carries_township:
                ports.directory.remember(
                    record["household_id"], record["township"], record.get("village")
                )

    def _refuse(
        self,
        outcome: Outcome,
        status: int,
        reason: str,
        message: str,
        problems: list[tuple[str, str]] | None = None,
    ) -> None:
        self.ports.metrics.reject(reason)
        outcome.status, outcome.reason, outcome.message = status, reason, message
        outcome.problems = list(problems or [])

    def _conflict(self, outcome: Outcome) -> None:
        self._refuse(
            outcome,
            409,
            "conflict",
            "this event_id was already used for a different record",
            [("event_id", "already used for a different record; make a new event_id")],
        )


def scope_problem(
    kind: EventKind, token: Token, record: dict[str, Any], known: Mapping[str, Place]
) -> tuple[str, str] | None:
    """(field, problem) when `record` is outside the token's scope, else None."""
    if token.kind == "cadre" and kind.slug == "visits" and record["cadre_id"] != token.holder:
        return ("cadre_id", "a cadre token records its holder's own visits")
    if token.townships is None:
        return None
    if kind.carries_township and not token.permits_township(record["township"]):
        return ("township", "outside the townships of this token")
    if kind.carries_township and not token.permits_village(record.get("village")):
        return ("village", "outside the villages of this village-level token")
    if "household_id" in record:
        place = known.get(record["household_id"])
        if place is None and not kind.carries_township:
            return ("household_id", "not in the household registry, so outside this token's scope")
        if place is not None and not token.permits_township(place.township):
            return ("household_id", "the household belongs to a township outside this token")
        if place is not None and not token.permits_village(place.village):
            return (
                "household_id",
                f"the household belongs to village {place.village!r}, outside this "
                "village-level token's villages",
            )
    return None


def event_id_of(body: Any) -> str | None:
    """The client's event id, echoed in a refusal when it is a plausible one."""
    value = body.get("event_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) and len(value) <= 64 else None
