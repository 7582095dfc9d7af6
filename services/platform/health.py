"""Liveness and readiness for every long-running process: `/healthz` and `/readyz`.

`/healthz` answers 200 while the process serves HTTP at all: a supervisor restarts it only when
this fails. `/readyz` runs the process's checks and answers 200 `{"status": "ready"}` when every
check passes, else 503 with Retry-After and a problem (`application/problem+json`, the one error
shape of every Shouwang API, type `urn:shouwang:problem:not_ready`) whose `reasons` member maps
each failing check to why, so an orchestrator (compose's healthcheck, a load balancer) sends no
work before the process can do it.

A check is an async callable returning None when it passes, or a short reason. Each check is
bounded by `CHECK_TIMEOUT_SECONDS`: a broker or database that does not answer is a reason, not a
hanging probe. The checks themselves are the services' (a Kafka producer started, a database
pool usable, partitions assigned, tables recovered, consumer lag under
SHOUWANG_READY_MAX_LAG); the faust workers' are in `kafka/faust/readiness.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from services.platform.http.problems import PROBLEM_JSON, problem_body

log = logging.getLogger(__name__)
Check = Callable[[], Awaitable[str | None]]
CHECK_TIMEOUT_SECONDS = 3.0
RETRY_AFTER_SECONDS = 5
HEALTH_PATHS = ("/healthz", "/readyz")  # served without a token, like /metrics


async def readiness(checks: Mapping[str, Check]) -> tuple[bool, dict[str, Any]]:
    """Run every check at once; (ready, the body to answer with)."""
    names = list(checks)
    results = await asyncio.gather(*(_bounded(n, checks[n]) for n in names))
    reasons = {name: why for name, why in zip(names, results, strict=True) if why is not None}
    if reasons:
        detail = "; ".join(f"{name}: {why}" for name, why in reasons.items())
        return False, problem_body(503, "Not ready", detail, code="not_ready", reasons=reasons)
    return True, {"status": "ready", "checks": names}


async def _bounded(name: str, check: Check) -> str | None:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # a probe that fails is a reason to answer 503, never a 500
        # The answer carries the error's type only (it is served without a token; a message
        # may name internal hosts); the log has the whole of it.
        log.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
        return f"failed: {type(exc).__name__}"


def consumer_lag(end_offsets: Mapping[Any, int], positions: Mapping[Any, int]) -> int:
    """Records behind the end of the assigned partitions: for each partition, its end offset
    less the next offset the process will apply (the caller gives the log's first offset for
    a partition it has applied nothing of)."""
    return sum(max(0, end - positions.get(tp, end)) for tp, end in end_offsets.items())


def lag_reason(lag: int, budget: int) -> str | None:
    """The reason a process is not ready on account of its lag, None under the budget."""
    if lag > budget:
        return f"{lag} records behind, over the budget of {budget} (SHOUWANG_READY_MAX_LAG)"
    return None


# ---- aiohttp (the APIs and the projector) ------------------------------------------------


def add_routes(router: Any, checks: Mapping[str, Check]) -> None:
    """Register GET /healthz and /readyz on an aiohttp router."""
    from aiohttp import web

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        ready, body = await readiness(checks)
        return web.json_response(
            body,
            status=200 if ready else 503,
            headers=_headers(ready),
            content_type="application/json" if ready else PROBLEM_JSON,
        )

    router.add_get("/healthz", healthz, allow_head=False, name="healthz")
    router.add_get("/readyz", readyz, allow_head=False, name="readyz")


# ---- faust web (the workers) ---------------------------------------------------------------


def add_faust_pages(app: Any, checks: Mapping[str, Check]) -> None:
    """Register /healthz and /readyz as pages of a faust app's web server."""

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ready, body = await readiness(checks)
        response = web.json(
            body,
            status=200 if ready else 503,
            content_type="application/json" if ready else PROBLEM_JSON,
        )
        for name, value in _headers(ready).items():
            response.headers[name] = value
        return response


def _headers(ready: bool) -> dict[str, str]:
    return {} if ready else {"Retry-After": str(RETRY_AFTER_SECONDS)}
