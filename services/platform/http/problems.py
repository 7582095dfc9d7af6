"""One error body for every HTTP API: `application/problem+json` (RFC 9457).

A problem carries `type` (a URI naming the kind of problem; `about:blank` when the status says
it all), `title`, `status`, `detail` (this occurrence, in words) and `instance` (the path that
was asked for), plus extension members; `errors: [{field, message}]` names each field that is
wrong and why, with the field paths the APIs have always used (`checks.water.status`,
`records[3].household_id`, a query parameter's name). `problem()` is the one way an API answers
an error; `problems_middleware` turns aiohttp's own refusals (404, 405, 413, ...) and anything
unhandled (500, logged, no details to the client) into the same shape, so no plain-text error
page ever leaves a service. A client that closed its connection before its answer is none of
these: `shaped` logs it in one line and gives it status 499 (nginx's "client closed request"),
which metrics count apart from server errors and nobody receives. `openapi_components` and
`problem_response` give every OpenAPI document the same declared shape.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from aiohttp import web

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:shouwang:problem:"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FieldErrors = Iterable[tuple[str, str]]
# nginx's status for a request whose client closed the connection before the answer: logged and
# counted under it, never sent (nobody is there to read it), never a 5xx.
CLIENT_CLOSED = 499
MAX_ERRORS = 100  # field errors named in one problem; a batch's results name the rest
# Where a problem answer keeps its members (a web.Response is also a dict).
_BODY = web.ResponseKey("shouwang.problem", dict)


def problem_type(code: str) -> str:
    """The `type` URI of a problem kind, e.g. `urn:shouwang:problem:overloaded`."""
    return f"{TYPE_PREFIX}{code}"


def problem_body(
    status: int,
    title: str | None = None,
    detail: str | None = None,
    *,
    code: str | None = None,
    errors: FieldErrors | None = None,
    instance: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """The members of a problem; `title` defaults to the code's title, else the status phrase
    (as `about:blank` asks)."""
    body: dict[str, Any] = {
        "type": problem_type(code) if code else "about:blank",
        "title": title or TITLES.get(code or "") or _phrase(status),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    listed = [{"field": f, "message": m} for f, m in errors or ()]
    if len(listed) > MAX_ERRORS:  # a documented maximum size (the Problem schema's maxItems)
        hidden = len(listed) - MAX_ERRORS + 1
        listed = [*listed[: MAX_ERRORS - 1], {"field": "", "message": f"{hidden} more not listed"}]
    if listed:
        body["errors"] = listed
    body.update(extensions)
    return body


def problem(
    status: int,
    title: str | None = None,
    detail: str | None = None,
    *,
    code: str | None = None,
    errors: FieldErrors | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extensions: Any,
) -> web.Response:
    """An error answer: `problem(403, "Forbidden", "this token may not write visits")`.

    `code` names the kind (it becomes the `type` URI); `errors` lists (field, message) pairs;
    `headers` go on the answer (Retry-After, WWW-Authenticate, Allow). The middleware fills
    `instance` with the request's path when the caller did not."""
    body = problem_body(
        status, title, detail, code=code, errors=errors, instance=instance, **extensions
    )
    return _response(body, headers)


def is_problem(response: web.StreamResponse) -> bool:
    return isinstance(response, web.Response) and _BODY in response


def with_instance(response: web.StreamResponse, request: web.Request) -> web.StreamResponse:
    """The problem answer with `instance` set to the request's (percent-encoded) path."""
    if not is_problem(response):
        return response
    body = response[_BODY]
    if "instance" in body:
        return response
    return _response({**body, "instance": request.rel_url.raw_path}, dict(response.headers))


def from_http_exception(exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusal (raised by the router, the body reader or a handler) as a problem,
    keeping the headers a client needs (Allow on 405)."""
    headers = {k: v for k, v in exc.headers.items() if k in _KEPT_HEADERS}
    detail = _DETAILS.get(exc.status)
    if detail is None and exc.text and exc.text != f"{exc.status}: {exc.reason}":
        detail = exc.text  # a handler's own wording, e.g. web.HTTPBadRequest(text=...)
    return problem(exc.status, exc.reason, detail, headers=headers or None)


def internal_error() -> web.Response:
    """The 500 answer: no exception text or value reaches the client (it is logged)."""
    return problem(500, None, "internal error; it has been logged", code="internal")


def unusable_request(request: web.Request) -> web.Response | None:
    """A 400 problem for a path or query that no route can use, else None: a NUL character
    (PostgreSQL cannot store it in text and no identifier contains one) or percent-encoded
    bytes that are not UTF-8 (aiohttp would read them as U+FFFD or leave them encoded, and a
    handler would then look up a value the client never sent)."""
    raw_path = request.rel_url.raw_path
    path = _decoded(raw_path)
    if path is None or "\x00" in path:
        why = "is not UTF-8" if path is None else "contains a NUL character"
        return problem(400, "Bad request", f"the path {why}", code="bad_request")
    errors = []
    for pair in request.rel_url.raw_query_string.split("&"):
        name, _, value = pair.partition("=")
        decoded_name, decoded_value = _decoded(name, query=True), _decoded(value, query=True)
        shown = _printable(decoded_name) if decoded_name is not None else "(undecodable)"
        for part in (decoded_name, decoded_value):
            if part is None:
                errors.append((shown, "is not UTF-8"))
                break
            if "\x00" in part:
                errors.append((shown, "contains a NUL character"))
                break
    if errors:
        return problem(
            400,
            "Bad request",
            "a query parameter contains a NUL character or bytes that are not UTF-8",
            code="bad_request",
            errors=errors,
        )
    return None


def _decoded(raw: str, query: bool = False) -> str | None:
    """Percent-decoded text (`+` a space in a query), or None when the bytes are not UTF-8."""
    if query:
        raw = raw.replace("+", " ")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None


def problems_middleware() -> Any:
    """Middleware: every error answer of the app is a problem (see the module docstring).

    Put it first (outermost) so that it also shapes what later middlewares raise; an app with
    its own outer middleware (metrics) calls `shaped` from there instead."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await shaped(request, handler)

    return middleware


async def shaped(request: web.Request, handler: Handler) -> web.StreamResponse:
    """`handler(request)` with every error turned into a problem answer."""
    refused = unusable_request(request)
    if refused is not None:
        return with_instance(refused, request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are answers, not problems
        response = from_http_exception(exc)
    except Exception as exc:  # the last line of defence: log, answer 500, no details
        if client_closed(request, exc):
            log.info(
                "client closed the connection before its answer: %s %s (%s)",
                request.method,
                request.path,
                exc,
            )
            return web.Response(status=CLIENT_CLOSED, reason="Client Closed Request")
        log.exception("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        response = internal_error()
    return with_instance(response, request)


def client_closed(request: web.Request, exc: BaseException) -> bool:
    """Whether `exc` is the request's own connection lost (the client reset or closed it), not
    a connection of the server's (to a database or broker), which stays a 500."""
    transport = request.transport
    return isinstance(exc, ConnectionError) and (transport is None or transport.is_closing())


def openapi_components() -> dict[str, Any]:
    """The `Problem` and `FieldError` schemas, for an OpenAPI document's components.schemas."""
    return {
        "FieldError": {
            "type": "object",
            "properties": {
                "field": {
                    "type": "string",
                    "description": "Path of the field or name of the parameter, e.g. "
                    "checks.water.status, records[3].household_id, limit.",
                },
                "message": {"type": "string", "description": "What is wrong with it."},
            },
            "required": ["field", "message"],
        },
        "Problem": {
            "type": "object",
            "description": "An error (RFC 9457, application/problem+json). `type` names the "
            f"kind of problem ({TYPE_PREFIX}<code>, or about:blank when the status says it "
            "all); `errors` lists each wrong field.",
            "properties": {
                "type": {"type": "string", "format": "uri-reference"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
                "instance": {"type": "string", "format": "uri-reference"},
                "errors": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/FieldError"},
                    "maxItems": MAX_ERRORS,
                },
            },
            "required": ["type", "title", "status"],
        },
    }


def problem_response(description: str, retry: bool = False, **headers: Any) -> dict[str, Any]:
    """An OpenAPI response object whose body is a Problem (Retry-After declared if `retry`)."""
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    declared = dict(headers)
    if retry:
        declared["Retry-After"] = {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 0},
        }
    if declared:
        response["headers"] = declared
    return response


def _response(body: dict[str, Any], headers: dict[str, str] | None) -> web.Response:
    kept = {k: v for k, v in (headers or {}).items() if k.lower() not in _OWN_HEADERS}
    response = web.Response(
        text=_dumps(body), status=body["status"], headers=kept, content_type=PROBLEM_JSON
    )
    response[_BODY] = body
    return response


def _dumps(body: dict[str, Any]) -> str:
    try:
        return orjson.dumps(body).decode("utf-8")
    except orjson.JSONEncodeError:  # a lone surrogate echoed back in a field name
        return json.dumps(body)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _printable(text: str) -> str:
    return text.replace("\x00", "\\x00")


# Titles of the problem kinds more than one API answers; an API may pass its own title.
TITLES = {
    "bad_request": "Bad request",
    "body_too_large": "Request body too large",
    "batch_too_large": "Batch too large",
    "body_timeout": "Request body not sent in time",
    "conflict": "Event id already used",
    "forbidden": "Outside the token's scope",
    "internal": "Internal error",
    "invalid": "Invalid input",
    "malformed_json": "Malformed JSON",
    "not_found": "Not found",
    "overloaded": "Overloaded",
    "token_concurrency": "Too many requests open for this token",
    "token_rate": "Too many requests per second for this token",
    "unauthenticated": "Unauthenticated",
    "unavailable": "Unavailable",
    "unsupported_media_type": "Unsupported media type",
}
_OWN_HEADERS = ("content-type", "content-length")  # set from the body, never copied
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
_DETAILS = {
    404: "no such route; the API's routes are in /openapi.json and on /docs",
    405: "this route does not take this method; see the Allow header",
    413: "the request body is larger than this API accepts",
}
