"""faust's web server as the workers run it: faust's own pages off, every route behind a token.

faust serves `/router/`, `/table/`, `/graph/`, `/stats/` and `/` by default: the router and
table pages show table contents (households' personal data) to anyone who can connect. Each
has a setting in faust-streaming; the index at `/` has none (it or the statistics page is
always mounted), so the token guard (platform/auth/http.py, installed by `guard_web`) covers
it like every route outside EXEMPT_PATHS (/metrics, the probes, the docs page and document).
"""

from __future__ import annotations

from typing import Any

import faust

BUILT_IN_PAGES_OFF = {
    "web_router_enabled": False,
    "web_tables_enabled": False,
    "web_graph_enabled": False,
    "web_stats_enabled": False,
    "web_metrics_enabled": False,
}


def web_settings(port: int | None, host: str) -> dict[str, Any]:
    """Keyword arguments for faust.App: its web server on `host:port` (off without a port),
    without faust's built-in pages."""
    return {
        "web_enabled": port is not None,
        "web_port": port or 6066,
        "web_bind": host,
        **BUILT_IN_PAGES_OFF,
    }


def guard_web(app: faust.App, middleware: Any) -> None:
    """Put every route of `app`'s web server behind `middleware` (platform/auth/http.py's
    `guard`).

    It goes on faust's aiohttp application before the server starts (aiohttp freezes it then);
    faust's table routing forwards the Authorization header, so the worker that owns a key
    checks the token again.
    """
    app.web.web_app.middlewares.append(middleware)
