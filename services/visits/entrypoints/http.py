"""The aiohttp application: routes, the checks of every write, and the answer for each record.

`build_app` takes every dependency (codec, sink, token cache, directory, metrics, clock), so
nothing is created at import time and tests pass in-memory fakes. Order of checks on a write:
route (404/405) → admission (429 with Retry-After when `max_in_flight` writes already wait for
the broker: load is shed, not queued) → bearer token (401, 503 if the token store is down and
the token uncached) →
event type in the token's scope (403) → content type (415) → body size (413) → JSON (422) →
batch size (413) → per record: contract and domain validation (422), township scope (403),
personal data sealed with the subject's key (503 with Retry-After when the key store is down and
the key uncached; nothing is produced) → event id reuse (409) → broker acknowledgement (202, or
503 with Retry-After).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.contract.codec import Codec
from services.contract.errors import InvalidRecord
from services.contract.inputs import KINDS, EventKind
from services.contract.personal import SealError
from services.platform.auth.tokens import CachedTokens, Token, TokenStoreUnavailable, bearer_secret
from services.platform.kafka.producer import BrokerUnavailable, Delivery, RecordSink
from services.platform.personal.keys import KeysUnavailable
from services.platform.personal.sealer import PersonalSealer
from services.visits.directory import CachedDirectory, DirectoryUnavailable
from services.visits.domain.records import Origin, content_digest, prepare
from services.visits.metrics import VisitsMetrics
from services.visits.recent_events import Acknowledged, RecentEvents

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Limits:
    """Request limits and timing (from VisitsSettings)."""

    max_body_bytes: int = 1_048_576
    max_batch: int = 500
    future_skew: dt.timedelta = dt.timedelta(minutes=5)
    retry_after_seconds: int = 5
    max_in_flight: int = 256  # write requests waiting for the broker at once


@dataclass
class Dependencies:
    """Everything the app needs; built by `bootstrap.py` or by a test."""

    codec: Codec
    sink: RecordSink
    tokens: CachedTokens
    directory: CachedDirectory
    sealer: PersonalSealer
    metrics: VisitsMetrics
    openapi: dict[str, Any]
    limits: Limits = field(default_factory=Limits)
    recent: RecentEvents = field(default_factory=RecentEvents)
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)


class Refusal(Exception):
    """A request refused as a whole: the status, a rejection reason and what to tell the client."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        problems: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.problems = problems or []
        self.headers = headers or {}


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
            body["error"] = self.reason
            body["message"] = self.message
        if self.problems:
            body["problems"] = [{"field": f, "problem": p} for f, p in self.problems]
        return body


def dumps(value: Any) -> str:
    """JSON text of an answer: orjson (a batch answer has a result per record), or the standard
    library for what orjson refuses (a field name echoed back with a lone surrogate in it)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(value)


def error_response(refusal: Refusal) -> web.Response:
    body: dict[str, Any] = {"error": refusal.reason, "message": refusal.message}
    if refusal.problems:
        body["problems"] = [{"field": f, "problem": p} for f, p in refusal.problems]
    return web.json_response(body, status=refusal.status, headers=refusal.headers, dumps=dumps)


def build_app(deps: Dependencies) -> web.Application:
    """The web application over `deps`; the caller runs it and closes the sink afterwards."""
    ingest = Ingest(deps)
    app = web.Application(
        client_max_size=deps.limits.max_body_bytes,
        middlewares=[_observed(deps.metrics)],
    )
    for kind in KINDS:
        app.router.add_post(
            f"/v1/{kind.slug}", ingest.admitting(ingest.one_handler(kind)), name=kind.slug
        )
        app.router.add_post(
            f"/v1/{kind.slug}:batch",
            ingest.admitting(ingest.batch_handler(kind)),
            name=f"{kind.slug}-batch",
        )
    app.router.add_get("/healthz", _healthz, name="healthz")
    app.router.add_get("/readyz", ingest.readyz, name="readyz")
    app.router.add_get("/metrics", ingest.metrics_page, name="metrics")
    app.router.add_get("/openapi.json", ingest.openapi_page, name="openapi")
    return app


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _observed(metrics: VisitsMetrics) -> Any:
    """Middleware: metrics for every request, JSON errors for aiohttp's own refusals, no 500
    page that leaks a traceback or a value."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = _route_label(request)
        started = time.perf_counter()
        metrics.in_flight.inc()
        status = 500
        try:
            try:
                response = await handler(request)
            except Refusal as refusal:
                metrics.reject(refusal.reason)
                response = error_response(refusal)
            except web.HTTPException as exc:
                response = _translate(exc, metrics)
            except Exception as exc:  # the last line of defence: log, answer 500, no details
                log.error(
                    "unhandled %s on %s %s\n%s",
                    type(exc).__name__,
                    request.method,
                    route,
                    "".join(traceback.format_tb(exc.__traceback__)),
                )
                response = web.json_response(
                    {"error": "internal", "message": "internal error; it has been logged"},
                    status=500,
                )
            status = response.status
            return response
        finally:
            metrics.in_flight.dec()
            metrics.requests.labels(route, request.method, str(status)).inc()
            metrics.request_seconds.labels(route).observe(time.perf_counter() - started)

    return middleware


def _route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _translate(exc: web.HTTPException, metrics: VisitsMetrics) -> web.Response:
    reasons = {
        404: ("not_found", "no such route; see /openapi.json"),
        405: ("method_not_allowed", "method not allowed on this route"),
        413: ("body_too_large", "request body exceeds the configured limit"),
    }
    reason, message = reasons.get(exc.status, ("http_error", exc.reason))
    if exc.status in reasons:
        metrics.reject(reason)
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return web.json_response(
        {"error": reason, "message": message}, status=exc.status, headers=headers
    )


class Ingest:
    """The write path, shared by single-record and batch routes."""

    def __init__(self, deps: Dependencies):
        self.deps = deps
        self.writing = 0  # write requests admitted and not answered yet

    # ---- routes -------------------------------------------------------------------------

    def admitting(self, handler: Handler) -> Handler:
        """Shed load instead of queueing it: every admitted write holds its body and its
        records until the broker acknowledges them, so the count of those is the memory
        bound. Refused before the body is read; the client retries after Retry-After."""

        async def admitted(request: web.Request) -> web.Response:
            limits = self.deps.limits
            if self.writing >= limits.max_in_flight:
                raise Refusal(
                    429,
                    "overloaded",
                    f"{limits.max_in_flight} writes are already waiting for the event log; "
                    f"nothing was written, retry after {limits.retry_after_seconds} s",
                    headers={"Retry-After": str(limits.retry_after_seconds)},
                )
            self.writing += 1
            try:
                return await handler(request)
            finally:
                self.writing -= 1

        return admitted

    def one_handler(self, kind: EventKind) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            token = await self._authorised(request, kind)
            body = await self._json_body(request)
            [outcome] = await self.ingest(kind, [body], token)
            if outcome.status == 202:
                body = outcome.as_json()
                del body["index"]
                return web.json_response(body, status=202, dumps=dumps)
            # Counted as a rejection when the outcome was decided; answered, not raised.
            return error_response(
                Refusal(
                    outcome.status,
                    outcome.reason or "invalid",
                    outcome.message or "refused",
                    outcome.problems,
                    self._retry_headers(outcome.status),
                )
            )

        return handle

    def batch_handler(self, kind: EventKind) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            token = await self._authorised(request, kind)
            body = await self._json_body(request)
            records = self._batch_records(body)
            outcomes = await self.ingest(kind, records, token)
            statuses = {o.status for o in outcomes}
            if 503 in statuses:
                status = 503
            elif len(statuses) == 1:
                status = statuses.pop()
            else:
                status = 207
            accepted = sum(1 for o in outcomes if o.status == 202)
            return web.json_response(
                {
                    "accepted": accepted,
                    "refused": len(outcomes) - accepted,
                    "results": [o.as_json() for o in outcomes],
                },
                status=status,
                headers=self._retry_headers(status),
                dumps=dumps,
            )

        return handle

    async def readyz(self, request: web.Request) -> web.Response:
        kafka = await self.deps.sink.ready()
        return web.json_response(
            {"status": "ready" if kafka else "unavailable", "kafka": kafka},
            status=200 if kafka else 503,
            headers=None if kafka else self._retry_headers(503),
        )

    async def metrics_page(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.deps.metrics.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def openapi_page(self, request: web.Request) -> web.Response:
        return web.json_response(self.deps.openapi)

    # ---- request-level checks -----------------------------------------------------------

    async def _authorised(self, request: web.Request, kind: EventKind) -> Token:
        secret = bearer_secret(request.headers.get("Authorization"))
        challenge = {"WWW-Authenticate": 'Bearer realm="shouwang"'}
        if secret is None:
            raise Refusal(
                401,
                "unauthenticated",
                "an Authorization: Bearer <token> header is required",
                headers=challenge,
            )
        try:
            token = await self.deps.tokens.authenticate(secret)
        except TokenStoreUnavailable:
            raise Refusal(
                503,
                "unavailable",
                "cannot check tokens right now; retry later",
                headers=self._retry_headers(503),
            ) from None
        if token is None:
            raise Refusal(
                401, "unauthenticated", "the token is unknown or revoked", headers=challenge
            )
        if not token.permits_type(kind.event_type):
            raise Refusal(403, "forbidden", f"this token may not write {kind.short_name} records")
        return token

    async def _json_body(self, request: web.Request) -> Any:
        if request.content_type != JSON_TYPE:
            raise Refusal(415, "unsupported_media_type", f"Content-Type must be {JSON_TYPE}")
        limit = self.deps.limits.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise Refusal(413, "body_too_large", f"request body exceeds {limit} bytes")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Refusal(413, "body_too_large", f"request body exceeds {limit} bytes") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refusal(422, "malformed_json", "the body is not UTF-8 text") from None
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # the standard parser decides, and words the problem, as it always did
        try:
            value = json.loads(text, parse_constant=_refuse_constant)
        except UnicodeDecodeError:
            raise Refusal(422, "malformed_json", "the body is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise Refusal(
                422,
                "malformed_json",
                f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            ) from None
        except (ValueError, RecursionError) as exc:
            raise Refusal(422, "malformed_json", f"unreadable JSON: {_short(exc)}") from None
        # orjson refuses lone surrogate escapes ("\ud800"), the standard parser does not;
        # such text cannot be stored as UTF-8, so it is named here rather than failing later.
        broken = _lone_surrogate(value, "")
        if broken is not None:
            problem = "text with a lone surrogate escape is not valid Unicode"
            raise Refusal(422, "invalid", f"{broken or 'the body'}: {problem}", [(broken, problem)])
        return value

    def _batch_records(self, body: Any) -> list[Any]:
        if not isinstance(body, dict) or set(body) != {"records"}:
            raise Refusal(
                422,
                "invalid",
                'a batch is an object {"records": [...]}',
                [("records", "required; no other fields")],
            )
        records = body["records"]
        if not isinstance(records, list) or not records:
            raise Refusal(
                422,
                "invalid",
                "records must be a non-empty array",
                [("records", "expected a non-empty array")],
            )
        limit = self.deps.limits.max_batch
        if len(records) > limit:
            raise Refusal(
                413,
                "batch_too_large",
                f"a batch holds at most {limit} records; this one has {len(records)}",
            )
        return records

    def _retry_headers(self, status: int) -> dict[str, str] | None:
        if status != 503:
            return None
        return {"Retry-After": str(self.deps.limits.retry_after_seconds)}

    # ---- the write path -----------------------------------------------------------------

    async def ingest(self, kind: EventKind, bodies: list[Any], token: Token) -> list[Outcome]:
        """Validate, scope-check, de-duplicate and produce `bodies`; one Outcome per body."""
        deps = self.deps
        now = deps.clock()
        origin = Origin(actor=token.holder, source=token.source)
        outcomes: list[Outcome] = []
        ready: list[tuple[Outcome, dict[str, Any]]] = []
        for index, body in enumerate(bodies):
            prepared = prepare(deps.codec, kind, body, origin, now, deps.limits.future_skew)
            if not prepared.ok:
                deps.metrics.reject("invalid")
                outcomes.append(
                    Outcome(
                        index,
                        422,
                        _event_id_of(body),
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
        sealer = self.deps.sealer
        if not sealer.seals(kind.event_type):
            return sends
        kept = []
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
        known: dict[str, str] = {}
        lookups = [r["household_id"] for _, r in ready if "household_id" in r]
        if token.townships is not None and lookups:
            try:
                known = await self.deps.directory.townships(lookups)
            except DirectoryUnavailable:
                for outcome, _ in ready:
                    self._refuse(
                        outcome,
                        503,
                        "unavailable",
                        "cannot check the household's township right now; retry later",
                    )
                return []
        for outcome, record in ready:
            refusal = _scope_problem(kind, token, record, known)
            if refusal is not None:
                self._refuse(outcome, 403, "forbidden", refusal[1], [refusal])
            else:
                kept.append((outcome, record))
        return kept

    async def _produce(self, kind: EventKind, ready: list[tuple[Outcome, dict[str, Any]]]) -> None:
        deps = self.deps
        first_in_request: dict[str, tuple[str, Outcome]] = {}
        sends: list[tuple[Outcome, dict[str, Any], str]] = []
        for outcome, record in ready:
            event_id = str(record["event_id"])
            digest = content_digest(kind, record)
            earlier = deps.recent.get(event_id)
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
                    deps.metrics.duplicates.labels(kind.short_name).inc()
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
        deps = self.deps
        encoded: list[tuple[Outcome, dict[str, Any], str]] = []
        outgoing: list[tuple[str, bytes, bytes]] = []
        for outcome, record, digest in sends:
            try:
                value = deps.codec.encode(kind.event_type, record)
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
        results = await deps.sink.send_many(outgoing)
        waited = time.perf_counter() - started
        produce_seconds = deps.metrics.produce_seconds.labels(kind.short_name)
        produced = deps.metrics.produced.labels(kind.short_name)
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
            deps.recent.put(str(record["event_id"]), Acknowledged(digest, result))
            if kind.topic.key == "household_id" and kind.carries_township:
                deps.directory.remember(record["household_id"], record["township"])

    def _refuse(
        self,
        outcome: Outcome,
        status: int,
        reason: str,
        message: str,
        problems: list[tuple[str, str]] | None = None,
    ) -> None:
        self.deps.metrics.reject(reason)
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


def _scope_problem(
    kind: EventKind, token: Token, record: dict[str, Any], known: dict[str, str]
) -> tuple[str, str] | None:
    """(field, problem) when `record` is outside the token's scope, else None."""
    if token.kind == "cadre" and kind.slug == "visits" and record["cadre_id"] != token.holder:
        return ("cadre_id", "a cadre token records its holder's own visits")
    if token.townships is None:
        return None
    if kind.carries_township and not token.permits_township(record["township"]):
        return ("township", "outside the townships of this token")
    if "household_id" in record:
        township = known.get(record["household_id"])
        if township is None and not kind.carries_township:
            return ("household_id", "not in the household registry, so outside this token's scope")
        if township is not None and not token.permits_township(township):
            return ("household_id", "the household belongs to a township outside this token")
    return None


def _event_id_of(body: Any) -> str | None:
    value = body.get("event_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) and len(value) <= 64 else None


def _lone_surrogate(value: Any, path: str) -> str | None:
    """The path of the first string (value or key) that is not valid Unicode, else None."""
    if isinstance(value, str):
        return None if value.isascii() or _encodable(value) else path
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _lone_surrogate(item, f"{path}[{index}]")
            if found is not None:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if not _encodable(key):
                return path  # the object holding the name: the name cannot be shown
            found = _lone_surrogate(item, where)
            if found is not None:
                return found
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _short(exc: BaseException) -> str:
    return type(exc).__name__ if isinstance(exc, RecursionError) else str(exc)[:200]
