"""The human-readable page of an API's OpenAPI document: Swagger UI, served from the installed
`swagger-ui-py` package, so the page works offline (no CDN, nothing fetched from outside).

`add_docs(router, title)` adds GET /docs (the page) and GET /docs/static/{name} (its assets,
only the files the page names). The page reads the API's own /openapi.json; links are relative,
so it also works behind a proxy that mounts the API under a prefix. Swagger UI's default
validator badge (which sends the document to validator.swagger.io) is switched off.

The page, its files and the document are served without a token (platform/auth/http.py
EXEMPT_PATHS): a browser sends no Authorization header when it opens a page. Calling the API
from the page takes one: Swagger UI's "Authorize" button offers the documents' `bearer` scheme,
and the token entered there stays in the page's memory only (persistAuthorization off: nothing
is written to localStorage, a reload forgets it).
"""

from __future__ import annotations

import html
import importlib.util
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from services.platform.http.problems import problem, problem_response

DOCS_PATH = "/docs"
ASSET_PATH = "/docs/static/{name}"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The files of the bundle the page names; nothing else of the package is served.
ASSETS = (
    "swagger-ui.css",
    "index.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
)
_TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
"""


def bundle_dir() -> Path:
    """The bundle's static directory (found without importing the package's web adapters)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def page(title: str) -> str:
    """The HTML of the docs page for an API called `title`."""
    name = html.escape(title)
    static = "docs/static"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{name}</title>
  <link rel="stylesheet" type="text/css" href="{static}/swagger-ui.css">
  <link rel="stylesheet" type="text/css" href="{static}/index.css">
  <link rel="icon" type="image/png" href="{static}/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="{static}/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{static}/swagger-ui-bundle.js" charset="UTF-8"></script>
  <script src="{static}/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
  <script src="{static}/init.js" charset="UTF-8"></script>
</body>
</html>
"""


def handlers(title: str) -> tuple[Handler, Handler]:
    """(page, asset) handlers of the docs of the API called `title`, for an app that adds
    routes its own way (faust's pages); `asset` reads the file name from match_info["name"]."""
    directory = bundle_dir()
    missing = [a for a in ASSETS if not (directory / a).is_file()]
    if missing:  # a broken install is found at start-up, not by the first reader
        raise RuntimeError(f"swagger-ui-py has no {', '.join(missing)} in {directory}")
    text = page(title)

    async def docs(request: web.Request) -> web.StreamResponse:
        return web.Response(text=text, content_type="text/html")

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "init.js":
            return web.Response(text=_INIT, content_type="text/javascript")
        if name not in ASSETS:
            return problem(404, None, f"the docs page has no file {name!r}", code="not_found")
        response = web.FileResponse(directory / name)
        response.content_type = _TYPES[Path(name).suffix]
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response

    return docs, asset


def add_docs(router: web.UrlDispatcher, title: str) -> None:
    """Serve the docs page of the API whose document is at /openapi.json on `router`."""
    docs, asset = handlers(title)
    router.add_get(DOCS_PATH, docs, allow_head=False, name="docs")
    router.add_get(ASSET_PATH, asset, allow_head=False, name="docs-static")


def openapi_paths(errors: dict[str, Any]) -> dict[str, Any]:
    """The docs routes as OpenAPI paths, without security, like the document (`errors`: the
    API's declared error responses, the ones any route may answer)."""
    return {
        DOCS_PATH: {
            "get": {
                "operationId": "docs",
                "summary": "This document, readable (Swagger UI, served offline).",
                "responses": {
                    "200": {
                        "description": "The HTML page.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    **errors,
                },
            }
        },
        ASSET_PATH: {
            "get": {
                "operationId": "docs_static",
                "summary": "A file of the docs page (stylesheets, scripts, icons).",
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": [*ASSETS, "init.js"]},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The file.",
                        "content": {
                            "text/css": {"schema": {"type": "string"}},
                            "text/javascript": {"schema": {"type": "string"}},
                            "image/png": {"schema": {"type": "string"}},
                        },
                    },
                    "404": problem_response("No such file of the docs page."),
                    **errors,
                },
            }
        },
    }
