"""Schemathesis hooks for the API fuzz test (loaded through SCHEMATHESIS_HOOKS): the check
that every 4xx answer is the documented error shape, application/problem+json (RFC 9457)."""

from __future__ import annotations

import json

import schemathesis

PROBLEM_JSON = "application/problem+json"


@schemathesis.check
def problem_shaped_errors(ctx, response, case) -> None:
    """A 4xx answers a problem: that media type, type/title/status (status equal to the
    answer's), detail and instance text when present, errors as [{field, message}]."""
    status = response.status_code
    if not 400 <= status < 500:
        return None
    media = (response.headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
    if media != PROBLEM_JSON:
        raise AssertionError(
            f"a {status} answered {media or 'no content type'}, not {PROBLEM_JSON}"
        )
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"a {status} problem is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise AssertionError(f"a {status} problem is not an object: {body!r}")
    for member in ("type", "title"):
        if not isinstance(body.get(member), str) or not body[member]:
            raise AssertionError(f"a {status} problem has no {member}: {body!r}")
    if body.get("status") != status:
        raise AssertionError(f"a {status} problem says status {body.get('status')!r}")
    for member in ("detail", "instance"):
        if member in body and not isinstance(body[member], str):
            raise AssertionError(f"a {status} problem's {member} is not text: {body!r}")
    errors = body.get("errors", [])
    if not isinstance(errors, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("field"), str)
        and isinstance(e.get("message"), str)
        for e in errors
    ):
        raise AssertionError(f"a {status} problem's errors are not [{{field, message}}]: {body!r}")
    return None
