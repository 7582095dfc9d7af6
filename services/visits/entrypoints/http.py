"""The aiohttp application: routes, middleware (metrics, admission, auth, body limits), JSON in/out.

`build_app` takes every dependency (codec, sink, token cache, directory, metrics, clock), so
nothing is created at import time and tests pass in-memory fakes. Order of checks on a write:
route (404/405) → bearer token (401, 503 if the token store is down and the token uncached) →
the token's admission (429 `token_concurrency` or `token_rate` with Retry-After: admission.py)
→ event type in the token's scope (403) → content type (415) → body size (413) → the body read
within SHOUWANG_VISITS_BODY_TIMEOUT_SECONDS (408 `body_timeout`) → JSON (422) → batch size (413)
→ a broker slot (429 `overloaded` with Retry-After when too many writes already wait for the
broker, the last slots kept for operators: load is shed, not queued) → the write path of
`services/visits/service.py`, one answer per record (422, 403, 409, 503 or 202).

A client that closes its connection before its answer is no server error: counted with status
499 (nginx's "client closed request"), logged in one line (platform/http/problems.py).
`POST /v1/applications` (a household's own application at a village service point) takes the
same checks, its body an application (domain/applications.py) made a ReviewDecided APPLY.

Long because every request-level check of every route is here, in the order above, in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.contract.catalogue import Catalogue, load_catalogue
from services.contract.codec import Codec
from services.contract.inputs import BY_SLUG, KINDS, EventKind
from services.platform import health
from services.platform.auth.http import AccessRefused, bearer_token
from services.platform.auth.tokens import READ_ONLY_REASON, CachedTokens, Token
from services.platform.clock import wall_clock
from services.platform.collector import while_serving
from services.platform.http.docs import add_docs
from services.platform.http.problems import problem, shaped
from services.platform.kafka.producer import RecordSink
from services.platform.personal.sealer import PersonalSealer
from services.visits.accepted_decisions import AcceptedDecisions
from services.visits.adapters.directory import CachedDirectory
from services.visits.adapters.household_view import HouseholdViews, NoView
from services.visits.admission import Admission, Shed
from services.visits.domain.applications import application_decision, application_problems
from services.visits.entrypoints.json_text import UnreadableJson, dumps, loads
from services.visits.metrics import VisitsMetrics
from services.visits.recent_events import RecentEvents
from services.visits.service import Ingest, Limits, Outcome

JSON_TYPE = "application/json"
REVIEWS = BY_SLUG["review-decisions"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The young generation while the app serves (platform/collector.py): a batch of 500 holds
# ~25,000 small containers until it is answered; B1 measured ~10,000 as enough for most to die
# young (full collections over the heap fell from ~1 per 4,000 records to none).
YOUNG_GENERATION = 10_000


@dataclass
class Dependencies:
    """Everything the app needs (the write path's ports, the token cache, the OpenAPI document);
    built by `bootstrap.py` or by a test. Read on every request, so a test may swap a part."""

    codec: Codec
    sink: RecordSink
    tokens: CachedTokens
    directory: CachedDirectory
    sealer: PersonalSealer
    metrics: VisitsMetrics
    openapi: dict[str, Any]
    limits: Limits = field(default_factory=Limits)
    catalogue: Catalogue = field(default_factory=load_catalogue)  # SHOUWANG_CATALOGUE's
    recent: RecentEvents = field(default_factory=RecentEvents)
    clock: Callable[[], dt.datetime] = wall_clock
    # The monitoring worker's household view, for a review decision's procedure order; none
    # configured: every decision accepted unchecked (and counted).
    views: HouseholdViews = field(default_factory=NoView)
    accepted: AcceptedDecisions = field(default_factory=AcceptedDecisions)
    ready_checks: dict[str, health.Check] = field(default_factory=dict)  # beside the broker's


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


def error_response(refusal: Refusal) -> web.Response:
    """A refusal as a problem (RFC 9457): its reason names the `type`, its message is the
    `detail`, its (field, problem) pairs are `errors`."""
    return problem(
        refusal.status,
        None,
        refusal.message,
        code=refusal.reason,
        errors=refusal.problems,
        headers=refusal.headers or None,
    )


def batch_problem(
    status: int,
    outcomes: list[Outcome],
    result: dict[str, Any],
    headers: dict[str, str] | None,
) -> web.Response:
    """A batch answered with an error status (every record refused alike, or some not
    written: 503) as a problem: the reason the refused records share names its type, `errors`
    names each refused record's fields as records[i].field, and the batch result rides along
    (accepted, refused, results), so a client reads it as it reads a 207."""
    refused = [o for o in outcomes if o.status != 202]
    reasons = {o.reason for o in refused}
    code = reasons.pop() if len(reasons) == 1 else "unavailable" if status == 503 else None
    messages = {o.message for o in refused}
    detail = f"{len(refused)} of {len(outcomes)} records refused"
    if len(messages) == 1:
        detail += f": {messages.pop()}"
    errors = [
        (f"records[{o.index}].{field}" if field else f"records[{o.index}]", message)
        for o in refused
        for field, message in (o.problems or [("", o.message or "refused")])
    ]
    return problem(status, None, detail, code=code, errors=errors, headers=headers, **result)


def build_app(deps: Dependencies) -> web.Application:
    """The web application over `deps`; the caller runs it and closes the sink afterwards."""
    routes = Routes(deps)
    app = web.Application(
        client_max_size=deps.limits.max_body_bytes,
        middlewares=[_observed(deps.metrics)],
    )
    for kind in KINDS:
        app.router.add_post(f"/v1/{kind.slug}", routes.one_handler(kind), name=kind.slug)
        app.router.add_post(
            f"/v1/{kind.slug}:batch", routes.batch_handler(kind), name=f"{kind.slug}-batch"
        )
    app.cleanup_ctx.append(while_serving(YOUNG_GENERATION))
    app.router.add_post("/v1/applications", routes.application, name="applications")
    health.add_routes(app.router, routes.ready_checks())
    app.router.add_get("/metrics", routes.metrics_page, name="metrics")
    app.router.add_get("/openapi.json", routes.openapi_page, name="openapi")
    add_docs(app.router, deps.openapi["info"]["title"])
    return app


def _observed(metrics: VisitsMetrics) -> Any:
    """Middleware: metrics for every request; every error answered as a problem (aiohttp's own
    refusals and the 500 too, which leaks no traceback or value)."""

    async def answered(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refusal as refusal:
            metrics.reject(refusal.reason)
            return error_response(refusal)
        except web.HTTPException as exc:
            if exc.status in _COUNTED:
                metrics.reject(_COUNTED[exc.status])
            raise  # shaped into a problem by `shaped`

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = _route_label(request)
        started = time.perf_counter()
        metrics.in_flight.inc()
        status = 500
        try:
            response = await shaped(request, lambda r: answered(r, handler))
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


# aiohttp's own refusals counted as rejections, under the reasons the dashboards know.
_COUNTED = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


class Routes:
    """The handlers: request-level checks here, each record's fate in the service's `Ingest`."""

    def __init__(self, deps: Dependencies):
        self.deps = deps
        self.service = Ingest(deps)
        self.admission = Admission()

    @property
    def writing(self) -> int:
        """Write requests holding a broker slot now."""
        return self.admission.writing

    # ---- routes -------------------------------------------------------------------------

    def one_handler(self, kind: EventKind) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            token = await self._authenticated(request)
            with self._admitted(token):
                self._authorise(token, kind)
                body = await self._json_body(request, token)
                with self._broker_slot(token):
                    [outcome] = await self.service.ingest(kind, [body], token)
            return self._answer(outcome)

        return handle

    async def application(self, request: web.Request) -> web.Response:
        """A household's own application, taken at a village service point (or by a village's
        token): a ReviewDecided APPLY about a household of the token's villages."""
        token = await self._authenticated(request)
        with self._admitted(token):
            if token.read_only:
                raise Refusal(403, "forbidden", READ_ONLY_REASON)
            if token.villages is None or not token.permits_type(REVIEWS.event_type):
                raise Refusal(
                    403,
                    "forbidden",
                    "applications are taken at a village: they need a village service point's "
                    "token or a village-level token (--village) that may record ReviewDecided",
                )
            body = await self._json_body(request, token)
            problems = application_problems(body)
            if problems:
                raise Refusal(422, "invalid", "not an application", problems)
            with self._broker_slot(token):
                [outcome] = await self.service.ingest(REVIEWS, [application_decision(body)], token)
        return self._answer(outcome)

    def _answer(self, outcome: Outcome) -> web.Response:
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

    def batch_handler(self, kind: EventKind) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            token = await self._authenticated(request)
            with self._admitted(token):
                self._authorise(token, kind)
                body = await self._json_body(request, token)
                records = self._batch_records(body)
                with self._broker_slot(token):
                    outcomes = await self.service.ingest(kind, records, token)
            statuses = {o.status for o in outcomes}
            if 503 in statuses:
                status = 503
            elif len(statuses) == 1:
                status = statuses.pop()
            else:
                status = 207
            accepted = sum(1 for o in outcomes if o.status == 202)
            result = {
                "accepted": accepted,
                "refused": len(outcomes) - accepted,
                "results": [o.as_json() for o in outcomes],
            }
            headers = self._retry_headers(status)
            if status >= 400:
                return batch_problem(status, outcomes, result, headers)
            return web.json_response(result, status=status, headers=headers, dumps=dumps)

        return handle

    def ready_checks(self) -> dict[str, health.Check]:
        """Ready: the producer started against a broker that answers, and the wiring's own
        checks (bootstrap adds the database pool's)."""

        async def kafka() -> str | None:
            return None if await self.deps.sink.ready() else "no broker answers the producer"

        return {"kafka": kafka, **self.deps.ready_checks}

    async def metrics_page(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.deps.metrics.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def openapi_page(self, request: web.Request) -> web.Response:
        # No token: the public contract (platform/auth/http.py EXEMPT_PATHS), read by clients
        # before their first request and by the docs page, which a browser opens without one.
        return web.json_response(self.deps.openapi)

    # ---- request-level checks -----------------------------------------------------------

    async def _authenticated(self, request: web.Request) -> Token:
        try:
            return await bearer_token(
                self.deps.tokens,
                request.headers.get("Authorization"),
                self.deps.limits.retry_after_seconds,
            )
        except AccessRefused as refused:
            raise Refusal(
                refused.status, refused.reason, refused.message, headers=refused.headers
            ) from None

    def _authorise(self, token: Token, kind: EventKind) -> None:
        if token.read_only:
            raise Refusal(403, "forbidden", READ_ONLY_REASON)
        if not token.permits_type(kind.event_type):
            raise Refusal(403, "forbidden", f"this token may not write {kind.short_name} records")

    @contextlib.contextmanager
    def _admitted(self, token: Token) -> Iterator[None]:
        """One of the token's open requests, for the whole request (its body read included).
        A Shed can only come from taking it: what runs inside raises Refusals."""
        try:
            with self.admission.request(token, self.deps.limits):
                yield
        except Shed as shed:
            raise self._shed(token, shed) from None

    @contextlib.contextmanager
    def _broker_slot(self, token: Token) -> Iterator[None]:
        """A broker slot, taken once the body is read and checked, for the write itself."""
        try:
            with self.admission.broker_slot(token, self.deps.limits):
                self.deps.metrics.broker_slots.inc()
                try:
                    yield
                finally:
                    self.deps.metrics.broker_slots.dec()
        except Shed as shed:
            raise self._shed(token, shed) from None

    def _shed(self, token: Token, shed: Shed) -> Refusal:
        self.deps.metrics.shed.labels(token.kind, shed.reason).inc()
        return Refusal(
            429, shed.reason, shed.message, headers={"Retry-After": str(shed.retry_after)}
        )

    async def _json_body(self, request: web.Request, token: Token) -> Any:
        if request.content_type != JSON_TYPE:
            raise Refusal(415, "unsupported_media_type", f"Content-Type must be {JSON_TYPE}")
        limit = self.deps.limits.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise Refusal(413, "body_too_large", f"request body exceeds {limit} bytes")
        deadline = self.deps.limits.body_timeout_seconds
        try:
            async with asyncio.timeout(deadline):
                raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Refusal(413, "body_too_large", f"request body exceeds {limit} bytes") from None
        except TimeoutError:
            # The client keeps its connection (aiohttp reads what it still sends for a while,
            # then closes it) but no longer any slot: the answer frees them.
            self.deps.metrics.body_timeouts.labels(token.kind).inc()
            raise Refusal(
                408,
                "body_timeout",
                f"the request body did not arrive within {deadline:g} s of its headers; "
                "nothing was written (on a slow link, send smaller batches)",
            ) from None
        try:
            return loads(raw)
        except UnreadableJson as exc:
            raise Refusal(422, exc.reason, exc.message, exc.problems) from None

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
