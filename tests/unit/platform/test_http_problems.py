"""The shared problem+json shape (RFC 9457) and the offline docs page, on a small aiohttp app:
every error (a handler's, the router's 404/405, the body limit's 413, an unhandled exception's
500, a NUL byte) answers the same shape; the docs page and everything it names are served."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from services.platform.http.docs import add_docs
from services.platform.http.problems import (
    MAX_ERRORS,
    PROBLEM_JSON,
    problem,
    problem_body,
    problem_type,
    problems_middleware,
)


async def refused(request: web.Request) -> web.Response:
    return problem(
        422,
        None,
        "the record does not fit the contract",
        code="invalid",
        errors=[("checks.water.status", "expected one of SECURED, PROBLEM")],
        headers={"X-Kept": "yes"},
    )


async def crashes(request: web.Request) -> web.Response:
    raise RuntimeError("secret value 12345")


async def reads(request: web.Request) -> web.Response:
    return web.json_response({"size": len(await request.read())})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}})


@pytest.fixture
async def client():
    app = web.Application(middlewares=[problems_middleware()], client_max_size=64)
    app.router.add_get("/refused", refused)
    app.router.add_get("/crashes", crashes)
    app.router.add_post("/reads", reads)
    app.router.add_get("/openapi.json", openapi)
    add_docs(app.router, "Test <API>")
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def problem_of(response, status: int) -> dict:
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM_JSON
    body = await response.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body


async def test_a_handlers_problem_has_every_member_and_keeps_its_headers(client):
    response = await client.get("/refused")
    body = await problem_of(response, 422)
    assert body == {
        "type": problem_type("invalid"),
        "title": "Invalid input",
        "status": 422,
        "detail": "the record does not fit the contract",
        "instance": "/refused",
        "errors": [{"field": "checks.water.status", "message": "expected one of SECURED, PROBLEM"}],
    }
    assert response.headers["X-Kept"] == "yes"


async def test_the_routers_refusals_are_problems(client):
    missing = await problem_of(await client.get("/nothing/here"), 404)
    assert missing["type"] == "about:blank" and missing["title"] == "Not Found"
    assert missing["instance"] == "/nothing/here"
    response = await client.post("/refused")
    await problem_of(response, 405)
    assert "GET" in response.headers["Allow"]
    await problem_of(await client.post("/reads", data=b"x" * 1000), 413)


async def test_an_unhandled_exception_is_a_500_problem_without_details(client, caplog):
    body = await problem_of(await client.get("/crashes"), 500)
    assert body["type"] == problem_type("internal") and "12345" not in str(body)
    assert "RuntimeError" in caplog.text  # logged for the operator, not sent to the client


async def test_a_nul_byte_in_the_path_or_query_is_a_400_naming_the_parameter(client):
    body = await problem_of(await client.get(URL("/refused?a=1&b=x%00", encoded=True)), 400)
    assert body["errors"] == [{"field": "b", "message": "contains a NUL character"}]
    await problem_of(await client.get(URL("/re%00fused", encoded=True)), 400)


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ("/refused?a=%FF", "a"),  # aiohttp would read U+FFFD
        ("/refused?name=%ED%A0%80", "name"),  # an encoded surrogate: not UTF-8
        ("/refused?%C3=1", "(undecodable)"),
        ("/refused?a=1&b=%C3%28", "b"),
        ("/re%FFfused", None),  # aiohttp would leave it encoded and route on it
    ],
)
async def test_bytes_that_are_not_utf8_in_the_path_or_query_are_a_400(client, target, field):
    body = await problem_of(await client.get(URL(target, encoded=True)), 400)
    if field is not None:
        assert body["errors"] == [{"field": field, "message": "is not UTF-8"}]
    # Text that is UTF-8 (also a + for a space) is no problem.
    assert (await client.get(URL("/refused?q=%E9%B9%A4+x", encoded=True))).status == 422


def test_a_problem_names_at_most_max_errors_fields_and_says_how_many_more():
    body = problem_body(422, errors=[(f"f{i}", "bad") for i in range(MAX_ERRORS + 7)])
    assert len(body["errors"]) == MAX_ERRORS
    assert body["errors"][-1] == {"field": "", "message": "8 more not listed"}


class Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


async def test_the_docs_page_and_everything_it_names_are_served_here(client):
    page = await client.get("/docs")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert "<title>Test &lt;API&gt;</title>" in html
    parser = Assets()
    parser.feed(html)
    assert len(parser.urls) == 7  # 2 stylesheets, 2 icons, 3 scripts
    base = str(client.make_url("/docs"))
    for url in parser.urls:
        absolute = urljoin(base, url)
        assert absolute.startswith(str(client.make_url("/"))), url  # nothing from elsewhere
        response = await client.get(URL(absolute).path)
        assert response.status == 200, url
        assert len(await response.read()) > 0, url
    init = await (await client.get("/docs/static/init.js")).text()
    [spec] = re.findall(r'url: "([^"]+)"', init)
    assert (await client.get(URL(urljoin(base, spec)).path)).status == 200
    assert "validatorUrl: null" in init  # the document is not sent to validator.swagger.io
    assert "persistAuthorization: false" in init  # a token entered on the page is not stored
    assert not re.search(r"https?://", html + init)
    await problem_of(await client.get("/docs/static/swagger-editor.js"), 404)
    await problem_of(await client.get("/docs/static/..%2Fcore.py"), 404)
