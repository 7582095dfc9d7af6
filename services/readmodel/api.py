"""The operator API: read-only JSON over the read model (monitored, waiting, overdue households,
measures, a cadre's households, the entry and exit procedure and its exceptions), for operators
holding an `operator` bearer token.

Every list is ordered by a stable key and paged with `limit` and `after` (the last key of the
previous page, returned as `next_after`). The read model is a projection: answers are as fresh
as the projector (its lag is on its own /metrics).

Long because every route's handler sits beside the one middleware pair that guards them all
(token, scope, errors as problems), so a reader sees each route's checks in one place.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from services.platform import health
from services.platform.auth.http import (
    AccessRefused,
    bearer_token,
    forbidden,
    open_request,
    refusal_response,
    refuse_read_only,
)
from services.platform.auth.tokens import CachedTokens
from services.platform.clock import Clock, wall_clock
from services.platform.http.docs import add_docs
from services.platform.http.problems import problem, shaped
from services.platform.postgres.errors import UNREACHABLE
from services.readmodel import procedure_queries, queries
from services.readmodel.campaign import CAMPAIGN_FIGURES, campaign_totals
from services.readmodel.metrics import ApiMetrics, CampaignGauges

log = logging.getLogger(__name__)
OPENAPI_PATH = Path(__file__).with_name("openapi.json")
MONITORING = ("monitored", "elimination_proposed")  # in monitoring until eliminated
HELD = ("recommended", "accepted", "delivered")  # a measure holding its slot or cadre
OVERDUE_KINDS = ("decision_overdue", "visit_overdue", "problem_overdue", "procedure_step_overdue")
PROBLEM_STATUSES = ("open", "rectified")
MAX_LIMIT = 1000  # items in any list answer (maxItems in openapi.json)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class ApiDependencies:
    pool: asyncpg.Pool  # created with init=init_connection
    tokens: CachedTokens
    registry: CollectorRegistry
    metrics: ApiMetrics
    campaign: CampaignGauges | None = None  # refreshed when /metrics is scraped
    clock: Clock = wall_clock  # "today", for problems past their due date


class BadQuery(ValueError):
    """A query parameter the API cannot use (answered with a 400 problem naming it)."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery("limit", "expected a whole number") from None
    if not 1 <= value <= MAX_LIMIT:
        raise BadQuery("limit", f"between 1 and {MAX_LIMIT}")
    return value


async def init_connection(connection: asyncpg.Connection) -> None:
    """Pool `init`: jsonb columns (reasons, overdue, quantities) decoded to Python values."""
    await connection.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value


def _rows(records: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [{k: _jsonable(v) for k, v in r.items()} for r in records]


def _one_of(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(name)
    if value is not None and value not in allowed:
        raise BadQuery(name, f"one of {', '.join(allowed)}")
    return value


def _boolean(request: web.Request, name: str) -> bool | None:
    value = _one_of(request, name, ("true", "false"))
    return None if value is None else value == "true"


class OutsideScope(Exception):
    """A township the token may not read (answered with a 403 naming it)."""


def _scope(request: web.Request) -> tuple[frozenset[str] | None, str | None]:
    """The token's townships (None: every one) and the `township` asked for, which must be one
    of them: a token narrowed to townships reads only those (its answers are cut to them)."""
    token = request.get("token")
    townships = None if token is None else token.townships
    township = request.query.get("township")
    if township is not None and townships is not None and township not in townships:
        raise OutsideScope(f"township {township} is outside this token's townships")
    return townships, township


def _page(items: list[dict[str, Any]], limit: int, key: str) -> dict[str, Any]:
    return {"items": items, "next_after": items[-1][key] if len(items) == limit else None}


HOUSEHOLD_COLUMNS = """h.household_id, h.township, h.village, h.category, h.level,
    h.workflow_status, h.policy_version, h.assessed_at, h.responsible_cadre_id, h.last_visit_at,
    h.overdue, h.reasons"""


def build_api(deps: ApiDependencies) -> web.Application:
    """The aiohttp application; the caller owns the pool and the token store."""
    document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))

    async def answered(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except BadQuery as exc:
            return problem(
                400,
                "Bad query parameter",
                str(exc),
                code="bad_request",
                errors=[(exc.parameter, exc.message)],
            )
        except OutsideScope as exc:
            return problem(403, None, str(exc), code="forbidden")
        except UNREACHABLE:
            # the read model is out of reach: the client may retry, nothing is wrong with it
            return problem(
                503,
                None,
                "the read model cannot be reached now; retry later",
                code="unavailable",
                headers={"Retry-After": "5"},
            )

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = request.match_info.route.resource
        template = route.canonical if route is not None else "unmatched"
        status = 500
        try:
            response = await shaped(request, lambda r: answered(r, handler))
            status = response.status
            return response
        finally:
            deps.metrics.requests.labels(request.method, template, str(status)).inc()
            deps.metrics.duration.labels(template).observe(time.perf_counter() - started)

    @web.middleware
    async def operators_only(request: web.Request, handler):
        # Every route but the exempt ones (platform/auth/http.py EXEMPT_PATHS: the probes,
        # /metrics, the OpenAPI document and its docs page); unmatched paths fall through to a
        # 404 that says nothing.
        if open_request(request):
            return await handler(request)
        try:
            token = await bearer_token(deps.tokens, request.headers.get("Authorization"))
            refuse_read_only(request.method, token)
            if not token.oversees:
                raise forbidden("the operator API needs an operator's or an auditor's token")
            if token.read_only and token.townships is not None:
                # Its answers span every township; an auditor is held to the townships it was
                # given, so a narrowed one reads through the console and the household view.
                raise forbidden(
                    "the operator API answers for every township: an auditor's token narrowed "
                    "to townships may not read it"
                )
        except AccessRefused as refused:
            return refusal_response(refused)
        request["token"] = token  # the routes that scope by township read it
        return await handler(request)

    app = web.Application(middlewares=[observe, operators_only])
    pool = deps.pool

    async def monitored(request: web.Request) -> web.Response:
        limit = _limit(request)
        townships, township = _scope(request)
        rows = await pool.fetch(
            f"""SELECT {HOUSEHOLD_COLUMNS} FROM households h
            WHERE h.workflow_status = ANY($1::text[])
              AND ($2::text IS NULL OR h.township = $2) AND ($3::text IS NULL OR h.category = $3)
              AND h.household_id > $4 AND ($6::text[] IS NULL OR h.township = ANY($6))
            ORDER BY h.household_id LIMIT $5""",
            list(MONITORING),
            township,
            request.query.get("category"),
            request.query.get("after", ""),
            limit,
            queries.towns(townships),
        )
        return web.json_response(_page(_rows(rows), limit, "household_id"))

    async def monitored_counts(request: web.Request) -> web.Response:
        townships, _ = _scope(request)
        rows = await pool.fetch(
            """SELECT township, category, count(*) AS households FROM households
            WHERE workflow_status = ANY($1::text[])
              AND ($3::text[] IS NULL OR township = ANY($3))
            GROUP BY township, category
            ORDER BY township NULLS LAST, category NULLS LAST LIMIT $2""",
            list(MONITORING),
            MAX_LIMIT,  # townships x categories: a county's are far fewer; the answer is bounded
            queries.towns(townships),
        )
        return web.json_response({"items": _rows(rows)})

    async def waiting(request: web.Request) -> web.Response:
        limit = _limit(request)
        townships, township = _scope(request)
        rows = await pool.fetch(
            """SELECT m.measure_id, m.household_id, h.township, h.village, m.type AS measure_type,
                   m.catalogue_id, m.waiting_for, m.reasons, m.status_changed_at AS waiting_since
            FROM measures m LEFT JOIN households h USING (household_id)
            WHERE m.status = 'waiting' AND ($1::text IS NULL OR m.waiting_for = $1)
              AND ($2::text IS NULL OR h.township = $2) AND m.measure_id > $3
              AND ($5::text[] IS NULL OR h.township = ANY($5))
            ORDER BY m.measure_id LIMIT $4""",
            request.query.get("pool"),
            township,
            request.query.get("after", ""),
            limit,
            queries.towns(townships),
        )
        return web.json_response(_page(_rows(rows), limit, "measure_id"))

    async def overdue(request: web.Request) -> web.Response:
        limit = _limit(request)
        kind = request.query.get("kind")
        if kind is not None and kind not in OVERDUE_KINDS:
            raise BadQuery("kind", f"one of {', '.join(OVERDUE_KINDS)}")
        townships, township = _scope(request)
        rows = await pool.fetch(
            f"""SELECT {HOUSEHOLD_COLUMNS} FROM households h
            WHERE h.overdue <> '[]'::jsonb AND ($1::text IS NULL OR h.overdue ? $1)
              AND ($2::text IS NULL OR h.township = $2) AND h.household_id > $3
              AND ($5::text[] IS NULL OR h.township = ANY($5))
            ORDER BY h.household_id LIMIT $4""",
            kind,
            township,
            request.query.get("after", ""),
            limit,
            queries.towns(townships),
        )
        return web.json_response(_page(_rows(rows), limit, "household_id"))

    async def measures(request: web.Request) -> web.Response:
        limit = _limit(request)
        townships, township = _scope(request)
        rows = await pool.fetch(
            """SELECT m.measure_id, m.household_id, h.township, m.type AS measure_type, m.status,
                   m.catalogue_id, m.pool, m.waiting_for, m.cadre_id, m.amount_yuan,
                   m.term_months, m.quantities, m.reasons, m.recommended_at, m.status_changed_at
            FROM measures m LEFT JOIN households h USING (household_id)
            WHERE ($1::text IS NULL OR m.type = $1) AND ($2::text IS NULL OR m.status = $2)
              AND ($3::text IS NULL OR h.township = $3) AND m.measure_id > $4
              AND ($6::text[] IS NULL OR h.township = ANY($6))
            ORDER BY m.measure_id LIMIT $5""",
            request.query.get("type"),
            request.query.get("status"),
            township,
            request.query.get("after", ""),
            limit,
            queries.towns(townships),
        )
        return web.json_response(_page(_rows(rows), limit, "measure_id"))

    async def measure_counts(request: web.Request) -> web.Response:
        townships, _ = _scope(request)
        rows = await pool.fetch(
            """SELECT m.type AS measure_type, m.status, count(*) AS measures
            FROM measures m LEFT JOIN households h USING (household_id)
            WHERE $2::text[] IS NULL OR h.township = ANY($2)
            GROUP BY m.type, m.status ORDER BY m.type, m.status LIMIT $1""",
            MAX_LIMIT,
            queries.towns(townships),
        )
        return web.json_response({"items": _rows(rows)})

    async def campaign(request: web.Request) -> web.Response:
        townships, township = _scope(request)
        rows = await campaign_totals(pool, townships, township)
        return web.json_response({"items": rows})

    async def cadre_households(request: web.Request) -> web.Response:
        cadre_id = request.match_info["cadre_id"]
        cadre = await pool.fetchrow("SELECT * FROM cadre_load WHERE cadre_id = $1", cadre_id)
        if cadre is None:
            return problem(404, None, f"cadre {cadre_id} not found", code="not_found")
        townships, _ = _scope(request)
        if townships is not None and cadre["township"] not in townships:
            raise OutsideScope(f"cadre {cadre_id} works outside this token's townships")
        rows = await pool.fetch(
            f"""SELECT m.measure_id AS pairing_measure_id, m.status AS pairing_status,
                   {HOUSEHOLD_COLUMNS}
            FROM measures m JOIN households h USING (household_id)
            WHERE m.cadre_id = $1 AND m.type = 'PAIRING' AND m.status = ANY($2::text[])
              AND ($4::text[] IS NULL OR h.township = ANY($4))
            ORDER BY h.household_id LIMIT $3""",
            cadre_id,
            list(HELD),
            MAX_LIMIT,  # a cadre's load is at most 1000 households (cadre registry grammar)
            queries.towns(townships),
        )
        info = {k: _jsonable(v) for k, v in cadre.items()}
        return web.json_response({"cadre": info, "households": _rows(rows)})

    async def problems(request: web.Request) -> web.Response:
        limit = _limit(request)
        status = request.query.get("status")
        if status is not None and status not in PROBLEM_STATUSES:
            raise BadQuery("status", f"one of {', '.join(PROBLEM_STATUSES)}")
        overdue = request.query.get("overdue")
        if overdue is not None and overdue not in ("true", "false"):
            raise BadQuery("overdue", "true or false")
        townships, township = _scope(request)
        rows = await pool.fetch(
            f"""SELECT p.problem_id, p.household_id, h.township, h.village, p.check_item,
                   p.status, p.responsible, p.origin, p.visit_id, p.found_at, p.rectified_at,
                   {queries.PROBLEM_DUE} AS due_date,
                   (p.status = 'open' AND {queries.PAST_DUE}) AS overdue
            FROM problems p LEFT JOIN households h USING (household_id)
            WHERE ($2::text IS NULL OR p.status = $2) AND ($3::text IS NULL OR h.township = $3)
              AND ($4::text IS NULL OR p.responsible = $4)
              AND ($5::bool IS NULL
                   OR (p.status = 'open' AND {queries.PAST_DUE}) = $5)
              AND p.problem_id > $6 AND ($8::text[] IS NULL OR h.township = ANY($8))
            ORDER BY p.problem_id LIMIT $7""",
            deps.clock().date(),
            status,
            township,
            request.query.get("responsible"),
            None if overdue is None else overdue == "true",
            request.query.get("after", ""),
            limit,
            queries.towns(townships),
        )
        return web.json_response(_page(_rows(rows), limit, "problem_id"))

    async def rectification(request: web.Request) -> web.Response:
        townships, township = _scope(request)
        answer = await queries.rectification(pool, deps.clock().date(), townships, township)
        return web.json_response(
            {
                "townships": _rows(answer["townships"][:MAX_LIMIT]),
                "county": answer["total"],
                "as_of": deps.clock().date().isoformat(),
            }
        )

    async def procedure_households(request: web.Request) -> web.Response:
        limit = _limit(request)
        townships, township = _scope(request)
        rows = await procedure_queries.procedure_households(
            pool,
            deps.clock().date(),
            townships,
            township=township,
            awaiting=_one_of(request, "awaiting", procedure_queries.STEPS),
            direction=_one_of(request, "direction", procedure_queries.DIRECTIONS),
            overdue=_boolean(request, "overdue"),
            after=request.query.get("after", ""),
            limit=limit,
        )
        return web.json_response(_page(_rows(rows), limit, "household_id"))

    async def procedure_counts(request: web.Request) -> web.Response:
        townships, township = _scope(request)
        today = deps.clock().date()
        rows = await procedure_queries.procedure_counts(pool, today, townships, township)
        return web.json_response({"items": _rows(rows), "as_of": today.isoformat()})

    async def exceptions(request: web.Request) -> web.Response:
        limit = _limit(request)
        townships, township = _scope(request)
        rows = await procedure_queries.exceptions(
            pool,
            townships,
            township=township,
            code=_one_of(request, "code", procedure_queries.EXCEPTION_CODES),
            after=request.query.get("after", ""),
            limit=limit,
        )
        return web.json_response(_page(_rows(rows), limit, "exception_id"))

    async def database() -> str | None:
        await pool.fetchval("SELECT 1")  # a pooled connection that answers
        return None

    async def metrics(request: web.Request) -> web.Response:
        gauges, now = deps.campaign, time.monotonic()
        if gauges is not None and gauges.due(now):
            try:
                rows = await campaign_totals(pool, None)
            except UNREACHABLE:
                log.warning("campaign figures not refreshed: the read model cannot be reached")
            else:
                gauges.set(rows, CAMPAIGN_FIGURES, now)
        rectification, now = deps.metrics.rectification, time.monotonic()
        if rectification.due(now):  # read from the database at scrape time
            try:
                answer = await queries.rectification(pool, deps.clock().date(), None)
            except UNREACHABLE:  # the last answer stays; the API's own series still go out
                log.warning("rectification not refreshed: the read model cannot be reached")
            else:
                rectification.update(answer, now)
        procedures, now = deps.metrics.procedures, time.monotonic()
        if procedures.due(now):
            today = deps.clock().date()
            try:
                steps = await procedure_queries.procedure_counts(pool, today, None)
                exceptions = await procedure_queries.exception_counts(pool, None)
            except UNREACHABLE:
                log.warning("procedure figures not refreshed: the read model cannot be reached")
            else:
                procedures.update(steps, exceptions, now)
        return web.Response(
            body=generate_latest(deps.registry), content_type="text/plain", charset="utf-8"
        )

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/v1/monitored-households", monitored, allow_head=False)
    app.router.add_get("/v1/monitored-households/counts", monitored_counts, allow_head=False)
    app.router.add_get("/v1/waiting-households", waiting, allow_head=False)
    app.router.add_get("/v1/overdue-households", overdue, allow_head=False)
    app.router.add_get("/v1/measures", measures, allow_head=False)
    app.router.add_get("/v1/measures/counts", measure_counts, allow_head=False)
    app.router.add_get("/v1/campaign", campaign, allow_head=False)
    app.router.add_get("/v1/cadres/{cadre_id}/households", cadre_households, allow_head=False)
    app.router.add_get("/v1/problems", problems, allow_head=False)
    app.router.add_get("/v1/rectification", rectification, allow_head=False)
    app.router.add_get("/v1/procedure-households", procedure_households, allow_head=False)
    app.router.add_get("/v1/procedure-households/counts", procedure_counts, allow_head=False)
    app.router.add_get("/v1/exceptions", exceptions, allow_head=False)
    health.add_routes(app.router, {"database": database})
    app.router.add_get("/metrics", metrics, allow_head=False)
    app.router.add_get("/openapi.json", openapi, allow_head=False)
    add_docs(app.router, document["info"]["title"])
    return app
