"""The console's aiohttp application: login, sessions, CSRF, the review queue and household pages.

Long because it holds the whole request path in one place: the middleware that loads the
session and re-checks its token on every request (a revoked token ends the session within a
second), the CSRF and same-origin checks every POST passes, and each page's handler, so a
reader sees every check a request meets without jumping between files.

Reads go through the read model's queries (services/readmodel/queries.py); the one write, a
review decision, goes to the visits API as the logged-in person (visits_client.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg
import jinja2
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from services.audit.explain import moment
from services.console import labels
from services.console.history import HistoryReader
from services.console.i18n import N_, translations
from services.console.problems_board import OutOfScope, board, scope_of
from services.console.roles import (
    LoginRefused,
    Role,
    decision_choices,
    may_decide,
    may_open_personal,
    may_read,
    role_of,
)
from services.console.sessions import Session, Sessions, same_secret
from services.console.settings import LANGUAGES, ConsoleSettings
from services.console.visits_client import VisitsClient, VisitsUnreachable
from services.console.worklist import (
    BadCursor,
    decode_cursor,
    encode_cursor,
    etag_of,
    jsonable,
    visit_due,
)
from services.contract.personal import HOUSEHOLD, Subject
from services.platform import health
from services.platform.actions.events import MAX_REASON
from services.platform.auth.http import AccessRefused, bearer_token, refusal_response
from services.platform.auth.tokens import CachedTokens, Token, TokenStoreUnavailable
from services.platform.clock import Clock
from services.platform.http.docs import add_docs
from services.platform.http.problems import problem, shaped
from services.platform.kafka.producer import BrokerUnavailable
from services.platform.personal.opening import Opened
from services.readmodel import pool_queries, procedure_queries, queries

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_FILES = frozenset(p.name for p in STATIC_DIR.iterdir() if p.is_file())
OPENAPI_PATH = HERE / "openapi.json"
API_PATHS = ("/api/", "/openapi.json", "/docs")
SESSION_COOKIE = "shouwang_console"
LOGIN_COOKIE = "shouwang_login_csrf"
LANGUAGE_COOKIE = "shouwang_lang"
MAX_SECRET = 256
# An event recorded this long after it happened is marked late on the timeline (a field app
# that synced late): the time it reached the system is shown beside when it happened.
LATE = dt.timedelta(days=1)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PersonalOpener = Callable[[Subject, str, str], Awaitable[Opened | None]]
# A page's headers: nothing framed, scripts and styles from here only, no caching of pages
# that hold households.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass
class ConsoleDependencies:
    pool: asyncpg.Pool  # made with readmodel.api.init_connection
    tokens: CachedTokens
    visits: VisitsClient
    sessions: Sessions
    settings: ConsoleSettings
    decision_days: Mapping[str, int]  # policy id -> days from flag to decision
    visit_days: Mapping[str, int]  # policy id -> days between visits
    history: HistoryReader  # the household's events and explanation, from the log
    registry: CollectorRegistry
    clock: Clock
    # Opens a subject's sealed personal data, recorded on operator.actions first (actor, reason
    # given); None when the console was started without the personal-data master key.
    personal: PersonalOpener | None = None


class ConsoleMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "shouwang_console_requests_total",
            "Console requests by method, route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "shouwang_console_request_duration_seconds",
            "Console request time by route",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        )
        self.decisions = Counter(
            "shouwang_console_decisions_total",
            "Review decisions posted to the visits API, by its answer",
            ["status"],
            registry=registry,
        )


def environments() -> dict[str, jinja2.Environment]:
    """One Jinja environment per language (templates autoescaped, gettext installed)."""
    made = {}
    for language in LANGUAGES:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
            undefined=jinja2.StrictUndefined,
        )
        env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
        env.globals["label"] = labels.label
        env.filters["when"] = when
        made[language] = env
    return made


class Page(Exception):
    """An answer other than the page asked for: an error page with its status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _same_origin(request: web.Request) -> bool:
    """A POST from a page of this console: its Origin (or, without one, its Referer) names this
    host. Browsers send Origin with every form POST; a request with neither is not a browser's
    cross-site post, and the CSRF token still decides."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return source is None
    return urlsplit(source).netloc == request.host


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def build_console(deps: ConsoleDependencies) -> web.Application:
    """The console application; the caller owns the pool, the token cache and the HTTP client."""
    envs = environments()
    metrics = ConsoleMetrics(deps.registry)
    settings = deps.settings

    def language_of(request: web.Request) -> str:
        chosen = request.cookies.get(LANGUAGE_COOKIE)
        return chosen if chosen in LANGUAGES else settings.language

    def render(
        request: web.Request, template: str, status: int = 200, **context: Any
    ) -> web.Response:
        language = language_of(request)
        session: Session | None = request.get("session")
        text = (
            envs[language]
            .get_template(template)
            .render(
                lang=language,
                role=request.get("role"),
                csrf=session.csrf if session else "",
                path=request.path_qs,
                **context,
            )
        )
        return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")

    def secure(request: web.Request) -> bool:
        return settings.secure_cookie or request.secure

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        status = 500
        if request.path.startswith(API_PATHS):  # the sync API and its docs: problems, not pages
            try:
                response = await shaped(request, handler)
                status = response.status
                return response
            finally:
                metrics.requests.labels(request.method, route, str(status)).inc()
                metrics.duration.labels(route).observe(time.perf_counter() - started)
        try:
            try:
                response = await handler(request)
            except Page as page:
                response = render(
                    request,
                    "error.html",
                    status=page.status,
                    status_code=page.status,
                    message=page.message,
                )
            except web.HTTPException as exc:
                if exc.status >= 400 and exc.status not in (405,):
                    response = render(
                        request,
                        "error.html",
                        status=exc.status,
                        status_code=exc.status,
                        message=exc.reason,
                    )
                else:
                    raise
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
                response = render(
                    request,
                    "error.html",
                    status=503,
                    status_code=503,
                    message=N_("The read model cannot be reached now; try again shortly."),
                )
                response.headers["Retry-After"] = "5"
            except Exception:
                log.exception("console: %s %s failed", request.method, route)
                response = render(
                    request,
                    "error.html",
                    status=500,
                    status_code=500,
                    message=N_("Something went wrong on our side; it has been logged."),
                )
            status = response.status
            if not request.path.startswith("/docs"):  # Swagger UI styles itself inline
                for name, value in SECURITY_HEADERS.items():
                    response.headers.setdefault(name, value)
            if not request.path.startswith("/static/"):
                response.headers.setdefault("Cache-Control", "no-store")
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.duration.labels(route).observe(time.perf_counter() - started)

    @web.middleware
    async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(API_PATHS):
            # Bearer tokens, never cookies: no session to load, no ambient credential to forge.
            return await handler(request)
        session = deps.sessions.find(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            try:
                token = await deps.tokens.authenticate(session.secret)
            except TokenStoreUnavailable:
                raise Page(503, "Tokens cannot be checked right now; try again shortly.") from None
            if token is None:  # revoked since login: the session ends with it
                deps.sessions.close(session.session_id)
                session = None
            else:
                request["session"] = session
                request["token"] = token
                request["role"] = role_of(token)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            if not _same_origin(request):
                raise Page(403, "This form was posted from another site and was refused.")
            if request.path != "/login":
                form = await request.post()
                if session is None:
                    raise web.HTTPSeeOther("/login")
                if not same_secret(_text(form.get("csrf_token")), session.csrf):
                    raise Page(403, "The form's security token is missing or stale; reload it.")
        return await handler(request)

    def logged_in(request: web.Request) -> tuple[Token, Role]:
        if "token" not in request:
            raise web.HTTPSeeOther(f"/login?next={quote(_safe_next(request.path_qs))}")
        return request["token"], request["role"]

    # ---- login and logout ----

    async def login_page(request: web.Request) -> web.Response:
        if "token" in request:
            raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
        return login_form(request, 200, None)

    def login_form(request: web.Request, status: int, error: str | None) -> web.Response:
        csrf = secrets.token_urlsafe(32)
        response = render(
            request,
            "login.html",
            status=status,
            login_csrf=csrf,
            error=error,
            next=_safe_next(request.query.get("next")),
        )
        response.set_cookie(
            LOGIN_COOKIE,
            csrf,
            httponly=True,
            samesite="Strict",
            secure=secure(request),
            path="/login",
            max_age=3600,
        )
        return response

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        expected = request.cookies.get(LOGIN_COOKIE)
        if not expected or not same_secret(_text(form.get("csrf_token")), expected):
            raise Page(403, "The form's security token is missing or stale; reload it.")
        secret = (_text(form.get("token")) or "").strip()
        if not secret or len(secret) > MAX_SECRET:
            return login_form(request, 401, "Enter the token you were issued.")
        try:
            token = await deps.tokens.authenticate(secret)
        except TokenStoreUnavailable:
            raise Page(503, "Tokens cannot be checked right now; try again shortly.") from None
        if token is None:
            return login_form(request, 401, "This token is unknown or revoked.")
        try:
            role_of(token)
        except LoginRefused:
            return login_form(request, 403, "A department feed's token cannot open the console.")
        deps.sessions.close(request.cookies.get(SESSION_COOKIE))  # a fresh id at every login
        session = deps.sessions.open(secret)
        response = redirect(_safe_next(_text(form.get("next"))))
        response.set_cookie(
            SESSION_COOKIE,
            session.session_id,
            httponly=True,
            samesite="Strict",
            secure=secure(request),
            path="/",
        )
        response.del_cookie(LOGIN_COOKIE, path="/login")
        log.info("console login: %s (%s, token %s)", token.holder, token.kind, token.token_id)
        return response

    async def logout(request: web.Request) -> web.Response:
        deps.sessions.close(request.cookies.get(SESSION_COOKIE))
        response = redirect("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def language(request: web.Request) -> web.Response:
        chosen = request.match_info["language"]
        if chosen not in LANGUAGES:
            raise Page(404, "No such language.")
        response = redirect(_safe_next(request.query.get("next")))
        response.set_cookie(
            LANGUAGE_COOKIE,
            chosen,
            samesite="Strict",
            secure=secure(request),
            path="/",
            max_age=365 * 86400,
        )
        return response

    # ---- pages ----

    async def home(request: web.Request) -> web.Response:
        _token, role = logged_in(request)
        raise web.HTTPSeeOther(
            "/overview" if role.reads_townships else "/queue" if role.reads_queue else "/work"
        )

    async def overview(request: web.Request) -> web.Response:
        token, role = logged_in(request)
        if not role.reads_townships:
            raise Page(403, N_("The overview is for reviewers and county operators."))
        township = request.query.get("township") or None
        if township is not None and not token.permits_township(township):
            raise Page(403, "That township is outside your token's scope.")
        facts = await queries.county_overview(deps.pool, role.townships, township)
        choices = await queries.townships(deps.pool, role.townships)
        return render(
            request,
            "overview.html",
            figures=figures(facts),
            township=township,
            choices=choices,
        )

    async def my_work(request: web.Request) -> web.Response:
        token, _role = logged_in(request)
        if token.kind != "cadre":
            raise Page(403, N_("The work list is a cadre's: log in with your own token."))
        today = deps.clock().date()
        ids = await queries.cadre_household_ids(deps.pool, token.holder)
        households = await queries.households_changed(deps.pool, ids)
        for row in households:
            row["visit_due"] = visit_due(row, deps.visit_days, today)
        due = [h for h in households if h["visit_due"] is not None]
        due.sort(key=lambda h: (h["visit_due"], h["household_id"]))
        problems = await queries.problems_of(deps.pool, token.holder)
        return render(
            request, "work.html", households=households, due=due, problems=problems, today=today
        )

    async def problems_page(request: web.Request) -> web.Response:
        token, role = logged_in(request)
        if role.villages is not None:
            raise Page(
                403,
                N_(
                    "The problems board counts whole townships; a village committee sees its "
                    "villages' households in the review queue."
                ),
            )
        try:
            scope = scope_of(
                token,
                role,
                request.query.get("township") or None,
                (request.query.get("responsible") or "").strip()[:200] or None,
            )
        except OutOfScope:
            raise Page(403, "That township is outside your token's scope.") from None
        today = deps.clock().date()
        content = await board(deps.pool, token, scope, today)
        choices = await queries.townships(deps.pool, role.townships)
        return render(
            request,
            "problems.html",
            township=scope.township,
            responsible=scope.responsible,
            choices=choices,
            today=today,
            **content,
        )

    async def sync(request: web.Request) -> web.StreamResponse:
        try:
            token = await bearer_token(deps.tokens, request.headers.get("Authorization"))
        except AccessRefused as refused:
            return refusal_response(refused)
        if token.kind != "cadre":
            return problem(403, None, "the work list needs a cadre's token", code="forbidden")
        since = None
        if "since" in request.query:  # `since=` is not a cursor either: the pattern says so
            try:
                since = decode_cursor(request.query["since"])
            except BadCursor as exc:
                return problem(
                    400,
                    "Bad query parameter",
                    f"since: {exc}",
                    code="bad_request",
                    errors=[("since", str(exc))],
                )
        now = await queries.database_now(deps.pool)
        today = deps.clock().date()
        ids = await queries.cadre_household_ids(deps.pool, token.holder)
        households = await queries.households_changed(deps.pool, ids, since)
        for row in households:
            row["visit_due"] = visit_due(row, deps.visit_days, today)
        problems = await queries.problems_of(deps.pool, token.holder, since)
        cap = queries.PERSON_LIST_MAX
        truncated = len(ids) > cap or len(problems) > cap
        answer = jsonable(
            {
                "cadre_id": token.holder,
                "full": since is None,
                "household_ids": ids[:cap],
                "households": households[:cap],
                "problems": problems[:cap],
                "truncated": truncated,
                # a cut answer does not move the cursor: what was left out comes again
                "cursor": request.query["since"] if truncated and since else encode_cursor(now),
            }
        )
        etag = etag_of(answer)
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
            return web.Response(status=304, headers=headers)
        return web.json_response(answer, headers=headers)

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    async def queue(request: web.Request) -> web.Response:
        token, role = logged_in(request)
        if not role.reads_queue:
            raise Page(403, "The review queue is for reviewers, county operators and auditors.")
        township = request.query.get("township") or None
        if township is not None and not token.permits_township(township):
            raise Page(403, "That township is outside your token's scope.")
        rows = await queries.review_queue(
            deps.pool, role.townships, township, villages=role.villages
        )
        today = deps.clock().date()
        entries = [queue_entry(row, today) for row in rows]
        # Overdue first, then the fewest days left; unknown deadlines last.
        entries.sort(key=lambda e: (not e["overdue"], e["days_left"] is None, e["days_left"] or 0))
        towns = sorted(role.townships) if role.townships is not None else None
        return render(
            request,
            "queue.html",
            entries=entries,
            township=township,
            townships=towns,
            today=today,
        )

    def queue_entry(row: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
        days = deps.decision_days.get(row["policy_version"] or "")
        started = row["cycle_started"] or row["assessed_at"]
        due = None if days is None or started is None else started.date() + dt.timedelta(days)
        overdue = "decision_overdue" in (row["overdue"] or []) or (due is not None and due < today)
        step_due = row.get("step_due")
        if row.get("awaiting") is not None:
            # A procedure under way: its step's last day is the deadline that counts; none set
            # by the policy: the decision's while the household awaits its entry decision
            # (a monitored household's exit has no flag-to-decision deadline); the monitor's
            # step-overdue signal wins, as above.
            pending = row["workflow_status"] in queries.REVIEW_STATUSES
            due = step_due or (due if pending else None)
            overdue = (
                "decision_overdue" in (row["overdue"] or [])
                or bool(row["step_overdue"])
                or (due is not None and due < today)
            )
        notice_ends = row.get("notice_ends")
        return {
            **row,
            "due": due,
            "days_left": None if due is None else (due - today).days,
            "overdue": overdue,
            "notice_days_left": None if notice_ends is None else (notice_ends - today).days,
        }

    async def pools(request: web.Request) -> web.Response:
        _token, role = logged_in(request)
        if not role.reads_townships:
            raise Page(403, N_("Measures and pools are for reviewers and county operators."))
        rows = await pool_queries.pool_use(deps.pool, role.townships)
        return render(request, "pools.html", pools=rows)

    async def pool_page(request: web.Request) -> web.Response:
        token, role = logged_in(request)
        if not role.reads_townships:
            raise Page(403, N_("Measures and pools are for reviewers and county operators."))
        instance = request.match_info["instance"]
        scope, _, rest = instance.partition(":")
        township = rest.rpartition(":")[0] if scope == "township" else None
        if township is not None and not token.permits_township(township):
            raise Page(403, "That township is outside your token's scope.")
        if len(instance) > 300:
            raise Page(404, N_("No such pool."))
        found = await pool_queries.pool_use(deps.pool, role.townships, instance)
        if not found:
            raise Page(404, N_("No such pool."))
        queue = await pool_queries.pool_queue(deps.pool, instance, role.townships)
        return render(
            request,
            "pool.html",
            p=found[0],
            queue=queue,
            shown_all=role.townships is None,
            limit=pool_queries.POOL_QUEUE_LIMIT,
        )

    async def household_view(
        request: web.Request,
        status: int = 200,
        form: Mapping[str, str] | None = None,
        errors: list[tuple[str, str]] | None = None,
        personal_errors: list[tuple[str, str]] | None = None,
    ) -> web.Response:
        token, role = logged_in(request)
        household_id = request.match_info["household_id"]
        row = await readable_household(token, household_id)
        assessments = await queries.household_assessments(deps.pool, household_id)
        measures = await queries.household_measures(deps.pool, household_id)
        problems = await queries.household_problems(deps.pool, household_id)
        today = deps.clock().date()
        procedure = await procedure_queries.household_procedure(deps.pool, today, household_id)
        if procedure is not None:
            procedure["steps"] = await procedure_queries.review_steps(
                deps.pool, list(procedure["steps"])
            )
        exceptions = await procedure_queries.exceptions(deps.pool, None, household_id=household_id)
        return render(
            request,
            "household.html",
            procedure=procedure,
            exceptions=exceptions,
            status=status,
            h=row,
            assessments=assessments,
            measures=measures,
            problems=problems,
            decide=may_decide(token, row["township"], row["village"]),
            personal=deps.personal is not None and may_open_personal(token, row["township"]),
            personal_errors=personal_errors or [],
            form=form or {"event_id": str(uuid.uuid4()), "decided_on": today.isoformat()},
            errors=errors or [],
            recorded=request.query.get("recorded"),
            today=today,
            choices=decision_choices(role),
        )

    async def readable_household(token: Token, household_id: str) -> dict[str, Any]:
        if len(household_id) > 64:
            raise Page(404, "No such household.")
        if not token.may_read_households:
            raise Page(403, "Your token cannot read households.")
        row = await queries.household(deps.pool, household_id)
        if row is None:
            # Said the same way whether or not it exists elsewhere: a narrowed token learns
            # nothing of households outside its townships.
            raise Page(404, "No such household.")
        if not token.may_read_household(row["township"]):
            raise Page(403, "This household is outside your townships.")
        if not may_read(token, row["township"], row["village"]):
            # Said like another township's: the page tells nothing of the household.
            raise Page(403, N_("This household is outside your villages."))
        return row

    async def household_page(request: web.Request) -> web.Response:
        return await household_view(request)

    async def history(request: web.Request) -> web.Response:
        token, _role = logged_in(request)
        household_id = request.match_info["household_id"]
        row = await readable_household(token, household_id)
        today = deps.clock().date()
        raw = request.query.get("as_of") or today.isoformat()
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            raise Page(400, N_("The as-of date must be a date like 2026-03-01.")) from None
        # The end of that day, as `shouwang explain --as-of DAY` reads a bare date.
        found = await deps.history.read(household_id, moment(day.isoformat()))
        assessments = await queries.household_assessments(deps.pool, household_id)
        timeline = [
            {
                "kind": "event",
                "what": note.event_type.rsplit(".", 1)[-1],
                "occurred_at": note.occurred_at,
                "recorded_at": note.recorded_at,
                "late": note.recorded_at - note.occurred_at > LATE,
                "who": f"{note.actor} ({note.source})",
                "event_id": note.event_id,
            }
            for note in (found.events if found else [])
        ] + [
            {
                "kind": "assessment",
                "what": a["level"],
                "category": a["category"],
                "occurred_at": a["assessed_at"],
                "recorded_at": a["recorded_at"],
                "late": False,
                "who": a["policy_version"],
                "event_id": str(a["assessment_id"]),
            }
            for a in assessments
        ]
        timeline.sort(key=lambda item: (item["occurred_at"], item["event_id"]))
        return render(
            request,
            "history.html",
            h=row,
            day=day,
            today=today,
            timeline=timeline,
            document=found.document if found else None,
        )

    async def personal(request: web.Request) -> web.Response:
        token, role = logged_in(request)
        household_id = request.match_info["household_id"]
        row = await readable_household(token, household_id)
        if not may_open_personal(token, row["township"]):
            raise Page(403, N_("Your role may not open personal data."))
        if deps.personal is None:
            raise Page(503, N_("This console has no personal-data master key: it opens none."))
        reason = (_text((await request.post()).get("reason")) or "").strip()
        if not reason:
            return await household_view(
                request, 422, personal_errors=[("reason", N_("say why you open it"))]
            )
        if len(reason) > MAX_REASON or not reason.isprintable():
            return await household_view(
                request,
                422,
                personal_errors=[("reason", N_("at most 1000 characters, one line"))],
            )
        actor = f"{role.name}:{token.holder}"
        try:
            opened = await deps.personal(Subject(HOUSEHOLD, household_id), actor, reason)
        except BrokerUnavailable:
            log.warning("console: opening personal data of %s not recorded", household_id)
            raise Page(
                503, N_("Nothing shown: this opening could not be recorded; try again.")
            ) from None
        if opened is not None:
            log.info(
                "console: %s opened the personal data of %s (access %s)",
                actor,
                household_id,
                opened.access["event_id"],
            )
        return render(request, "personal.html", h=row, opened=opened, reason=reason)

    async def decide(request: web.Request) -> web.Response:
        token, _role = logged_in(request)
        household_id = request.match_info["household_id"]
        row = await readable_household(token, household_id)
        if not may_decide(token, row["township"], row["village"]):
            raise Page(403, "Your token cannot record review decisions here.")
        form = {k: (_text(v) or "").strip() for k, v in (await request.post()).items()}
        record, errors = decision_record(household_id, form, deps.clock())
        if errors:
            return await household_view(request, 422, form, errors)
        session: Session = request["session"]
        try:
            answer = await deps.visits.post("review-decisions", session.secret, record)
        except VisitsUnreachable:
            metrics.decisions.labels("unreachable").inc()
            errors = [
                ("", N_("The visits API cannot be reached; nothing was recorded. Try again."))
            ]
            return await household_view(request, 503, form, errors)
        metrics.decisions.labels(str(answer.status)).inc()
        if not answer.accepted:
            errors = list(answer.errors) or [("", answer.message or "refused")]
            status = answer.status if 400 <= answer.status < 600 else 502
            return await household_view(request, status, form, errors)
        raise web.HTTPSeeOther(
            f"/households/{quote(household_id)}?recorded={quote(record['event_id'])}"
        )

    # ---- plumbing ----

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise Page(404, "No such file.")
        return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "max-age=3600"})

    async def database() -> str | None:
        await deps.pool.fetchval("SELECT 1")
        return None

    async def metrics_page(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(deps.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    app = web.Application(middlewares=[observe, sessions], client_max_size=64 * 1024)
    app.router.add_get("/", home, allow_head=False)
    app.router.add_get("/login", login_page, allow_head=False)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/language/{language}", language, allow_head=False)
    app.router.add_get("/queue", queue, allow_head=False)
    app.router.add_get("/households/{household_id}", household_page, allow_head=False)
    app.router.add_post("/households/{household_id}/decisions", decide)
    app.router.add_post("/households/{household_id}/personal", personal)
    app.router.add_get("/households/{household_id}/history", history, allow_head=False)
    app.router.add_get("/overview", overview, allow_head=False)
    app.router.add_get("/work", my_work, allow_head=False)
    app.router.add_get("/problems", problems_page, allow_head=False)
    app.router.add_get("/pools", pools, allow_head=False)
    app.router.add_get("/pools/{instance}", pool_page, allow_head=False)
    app.router.add_get("/api/v1/worklist", sync, allow_head=False)
    app.router.add_get("/openapi.json", openapi, allow_head=False)
    add_docs(app.router, document["info"]["title"])
    app.router.add_get("/static/{name}", static, allow_head=False)
    app.router.add_get("/metrics", metrics_page, allow_head=False)
    health.add_routes(app.router, {"database": database})
    return app


CHINA = dt.timezone(dt.timedelta(hours=8))


def when(moment: dt.datetime | None) -> str:
    """A moment as people in the county read it: China time, to the minute."""
    return "—" if moment is None else moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


FLAGGED = ("flagged", "verifying")
MONITORED = ("monitored", "elimination_proposed")


def figures(facts: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The overview's figures from the read model's counts, as the demo report sums them."""
    total = flagged = monitored = monitored_visited = 0
    by_category: dict[str, int] = {}
    for row in facts["households"]:
        total += row["households"]
        if row["workflow_status"] in FLAGGED:
            flagged += row["households"]
        elif row["workflow_status"] in MONITORED:
            monitored += row["households"]
            monitored_visited += row["visited"]
            key = row["category"] or ""
            by_category[key] = by_category.get(key, 0) + row["households"]
    problems = {r["status"]: r["problems"] for r in facts["problems"]}
    found = sum(problems.values())
    rectified = problems.get("rectified", 0)
    return {
        "households": total,
        "flagged": flagged,
        "monitored": monitored,
        "monitored_by_category": sorted(by_category.items()),
        "monitored_visited": monitored_visited,
        "visit_coverage": None if not monitored else monitored_visited / monitored,
        "overdue": [(r["signal"], r["households"]) for r in facts["overdue"]],
        "measures": [(r["status"], r["measures"], r["households"]) for r in facts["measures"]],
        "problems_found": found,
        "problems_rectified": rectified,
        "problems_open": found - rectified,
        "rectification_rate": None if not found else rectified / found,
    }


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST, the browser GETs the page (no resubmission on reload)."""
    return web.Response(status=303, headers={"Location": location})


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def decision_record(
    household_id: str, form: Mapping[str, str], now: dt.datetime
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The ReviewDecided body for the visits API from the form, or the fields that are wrong.
    The visits API validates again (it is the door); these checks only say it in the form."""
    errors: list[tuple[str, str]] = []

    def one_of(name: str, allowed: tuple[str, ...], required: bool = True) -> str | None:
        value = form.get(name) or None
        if value is None:
            if required:
                errors.append((name, N_("choose one")))
            return None
        if value not in allowed:
            errors.append((name, N_("not one of the choices")))
        return value

    decision = one_of("decision", labels.DECISIONS)
    category = one_of("category", labels.CATEGORIES, required=False)
    if decision == "INCLUDE" and category is None:
        errors.append(("category", N_("required to include a household")))
    body = one_of("body", labels.BODIES)
    level = one_of("approving_level", labels.LEVELS)
    try:
        event_id = str(uuid.UUID(form.get("event_id", "")))
    except ValueError:
        errors.append(("event_id", N_("reload the form")))
        event_id = ""
    today = now.date()
    occurred_at = now.isoformat()
    decided_on = _date(form.get("decided_on"), "decided_on", errors)
    if decided_on is not None:
        if decided_on > today:
            errors.append(("decided_on", N_("cannot be in the future")))
        elif decided_on != today:
            occurred_at = f"{decided_on.isoformat()}T12:00:00+08:00"
    notice_start = _date(form.get("notice_start"), "notice_start", errors)
    notice_days = 0
    if form.get("notice_days"):
        try:
            notice_days = int(form["notice_days"])
        except ValueError:
            errors.append(("notice_days", N_("a whole number of days")))
        else:
            if not 0 <= notice_days <= 60:
                errors.append(("notice_days", N_("between 0 and 60")))
    if notice_days and notice_start is None:
        errors.append(("notice_start", N_("required when there are notice days")))
    if decision == "NOTICE":
        # The fold refuses a notice without its window (monitoring/README.md): said here, in
        # the form, rather than as an invalid transition the village never sees.
        if notice_start is None and "notice_start" not in dict(errors):
            errors.append(("notice_start", N_("required for a public notice")))
        if not notice_days and "notice_days" not in dict(errors):
            errors.append(("notice_days", N_("required for a public notice")))
    outcome = one_of("outcome", labels.OUTCOMES, required=False)
    if decision in labels.WITH_OUTCOME and outcome is None:
        errors.append(
            ("outcome", N_("required for a deliberation or a review: passed or returned"))
        )
    elif outcome is not None and decision not in labels.WITH_OUTCOME:
        errors.append(("outcome", N_("only a deliberation or a review has an outcome")))
    exception = form.get("exception") in ("1", "on", "true")
    reason = form.get("reason", "")
    if len(reason) > 1000:
        errors.append(("reason", N_("at most 1000 characters")))
    elif decision == "OBJECTION" and not reason.strip():
        errors.append(("reason", N_("an objection needs its grounds")))
    if exception:
        if decision not in labels.EXCEPTIONAL:
            errors.append(
                ("exception", N_("only an inclusion or an elimination may be an exception"))
            )
        if not reason.strip():
            errors.append(("reason", N_("an exception needs a written reason")))
    record = {
        "event_id": event_id,
        "household_id": household_id,
        "occurred_at": occurred_at,
        "decision": decision,
        "category": category,
        "body": body,
        "approving_level": level,
        "notice_start": notice_start.isoformat() if notice_start else None,
        "notice_days": notice_days,
        "reason": reason,
    }
    # Only when given: a decision without them is the same body as before they existed.
    if outcome is not None:
        record["outcome"] = outcome
    if exception:
        record["exception"] = True
    return record, errors


def _date(raw: str | None, name: str, errors: list[tuple[str, str]]) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        errors.append((name, N_("a date like 2026-03-01")))
        return None
