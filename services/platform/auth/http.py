"""Bearer tokens on HTTP: the one list of routes served without a token, the check every API
runs, and the aiohttp middleware the faust workers' web servers use.

Every HTTP surface requires a token of the right scope (DESIGN.md); a read-only (auditor's)
token is refused on every method but GET and HEAD (`refuse_read_only`), whatever the route.
`bearer_token` raises `AccessRefused`; every API and faust worker answers it with
`refusal_response`, a problem (platform/http/problems.py: `unauthenticated` with the
WWW-Authenticate challenge on 401, `forbidden` on 403, `unavailable` with Retry-After on 503),
the one error shape of the system.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from services.platform.auth.tokens import (
    READ_ONLY_REASON,
    CachedTokens,
    Token,
    TokenStoreUnavailable,
    bearer_secret,
)
from services.platform.http.problems import problem

# The only routes served without a token, and why each may be: none holds personal data. Keys
# are route templates (aiohttp's canonical form), matched against the route a request matched,
# never against its path: /docs/static/{name} opens that route only, whose handler serves the
# bundle's named files and answers anything else with a 404 problem.
_PUBLIC_CONTRACT = (
    "the API's public contract, committed in the repository, no data in it; clients and "
    "fuzzers validate against it before sending, and a person opens the docs page in a "
    "browser, which sends no Authorization header on navigation"
)
EXEMPT_PATHS: Mapping[str, str] = {
    "/metrics": "Prometheus scrapes it without credentials; counters, gauges and histograms "
    "with bounded labels, no household, cadre or token in them",
    "/healthz": "liveness probe of the orchestrator; says only that the process answers",
    "/readyz": "readiness probe of the orchestrator; says only whether its dependencies answer",
    "/openapi.json": f"the OpenAPI document: {_PUBLIC_CONTRACT}",
    "/docs": f"the OpenAPI document as a page (Swagger UI, served offline): {_PUBLIC_CONTRACT}",
    "/docs/static/{name}": "the docs page's stylesheets, scripts and icons (swagger-ui-py's "
    "bundle, only the files the page names): public files, no data",
}
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="shouwang"'}
# Where the guard leaves the checked token on the request (a typed key from aiohttp 3.12).
TOKEN_KEY: Any = (
    web.RequestKey("shouwang.token", Token) if hasattr(web, "RequestKey") else "shouwang.token"
)


class AccessRefused(Exception):
    """A request refused before it is handled: its status, a reason code, a message and the
    headers to send (the challenge with a 401, Retry-After with a 503)."""

    def __init__(
        self, status: int, reason: str, message: str, headers: Mapping[str, str] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = dict(headers or {})


def exempt(route: str) -> bool:
    """Whether the route template `route` (e.g. /docs/static/{name}) is served without a token."""
    return route in EXEMPT_PATHS


def route_template(request: web.Request) -> str:
    """The template of the route `request` matched (its path when it matched no resource)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def open_request(request: web.Request) -> bool:
    """Whether `request` needs no token: it matched an exempt route, or no route at all (the
    router's own 404 and 405, which say nothing)."""
    return request.match_info.http_exception is not None or exempt(route_template(request))


async def bearer_token(tokens: CachedTokens, header: str | None, retry_after: int = 5) -> Token:
    """The active token named by an `Authorization: Bearer ...` header, else AccessRefused:
    401 without a header or with an unknown or revoked token, 503 when it cannot be checked."""
    secret = bearer_secret(header)
    if secret is None:
        raise AccessRefused(
            401,
            "unauthenticated",
            "an Authorization: Bearer <token> header is required",
            CHALLENGE,
        )
    try:
        token = await tokens.authenticate(secret)
    except TokenStoreUnavailable:
        raise AccessRefused(
            503,
            "unavailable",
            "cannot check tokens right now; retry later",
            {"Retry-After": str(retry_after)},
        ) from None
    if token is None:
        raise AccessRefused(401, "unauthenticated", "the token is unknown or revoked", CHALLENGE)
    return token


def forbidden(message: str) -> AccessRefused:
    return AccessRefused(403, "forbidden", message)


READING_METHODS = frozenset({"GET", "HEAD"})


def refuse_read_only(method: str, token: Token) -> None:
    """AccessRefused (403) when a read-only token asks anything but a read: checked by method, so
    a route added later cannot be written through an auditor's token by omission."""
    if token.read_only and method.upper() not in READING_METHODS:
        raise forbidden(READ_ONLY_REASON)


def refusal_response(refused: AccessRefused) -> web.Response:
    """The answer to a refused request: a problem whose code is the refusal's reason."""
    return problem(
        refused.status, None, refused.message, code=refused.reason, headers=refused.headers
    )


Permits = Callable[[str, Token], str | None]  # (route template, token) -> why not, or None
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guard(tokens: CachedTokens, permits: Permits) -> Any:
    """aiohttp middleware: every matched route outside EXEMPT_PATHS needs a token that
    `permits` lets through (403 with its reason otherwise); the token is left on the request
    under TOKEN_KEY for handlers that narrow further (a household's township). Unmatched paths
    and methods fall through to aiohttp's 404 and 405, which say nothing."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if open_request(request):
            return await handler(request)
        template = route_template(request)
        try:
            token = await bearer_token(tokens, request.headers.get("Authorization"))
            refuse_read_only(request.method, token)
            refusal = permits(template, token)
            if refusal is not None:
                raise forbidden(refusal)
        except AccessRefused as refused:
            return refusal_response(refused)
        request[TOKEN_KEY] = token
        return await handler(request)

    return middleware
