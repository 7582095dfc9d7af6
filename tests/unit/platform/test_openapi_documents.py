"""Every API's OpenAPI document declares the one error shape, the bearer scheme and the docs
page: what a client (or the fuzzer) reads before its first request, without a token."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.platform.auth.http import EXEMPT_PATHS
from services.platform.http.docs import ASSET_PATH, DOCS_PATH
from services.platform.http.problems import PROBLEM_JSON, openapi_components

SERVICES = Path(__file__).resolve().parents[3] / "services"
DOCUMENTS = {
    "visits": SERVICES / "visits" / "openapi.json",
    "operator": SERVICES / "readmodel" / "openapi.json",
    "monitoring": SERVICES / "monitoring" / "openapi.json",
    "console": SERVICES / "console" / "openapi.json",
}
PROBLEM_SCHEMAS = ("#/components/schemas/Problem", "#/components/schemas/BatchProblem")


@pytest.mark.parametrize("api", DOCUMENTS)
def test_every_error_response_is_a_problem_and_every_read_of_data_needs_a_token(api: str):
    document = json.loads(DOCUMENTS[api].read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    for name, schema in openapi_components().items():
        assert schemas[name] == schema, name  # one shape, from services/platform/http
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert {DOCS_PATH, ASSET_PATH, "/openapi.json"} <= set(document["paths"]) & set(EXEMPT_PATHS)
    assert "security" not in document  # each operation says its own; the docs page needs none
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{api}: {method.upper()} {path}"
            if path not in EXEMPT_PATHS:  # every route but the probes, /metrics and the docs
                assert operation["security"] == [{"bearer": []}], where
                assert {"401", "503"} <= set(operation["responses"]), where
            else:  # served without a token: no requirement, no refusal of one
                assert operation.get("security", []) == [], where
                assert not {"401", "403"} & set(operation["responses"]), where
            for status in ("400", "405", "500"):
                assert status in operation["responses"], where
            for status, response in operation["responses"].items():
                if int(status) < 400 or "content" not in response:
                    continue
                problems = [
                    c["schema"]["$ref"]
                    for media, c in response["content"].items()
                    if media == PROBLEM_JSON
                ]
                assert problems and set(problems) <= set(PROBLEM_SCHEMAS), (where, status)


def _arrays(node, where: str):
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "array" or (isinstance(kind, list) and "array" in kind):
            yield where, node
        for key, value in node.items():
            yield from _arrays(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _arrays(value, f"{where}[{index}]")


@pytest.mark.parametrize("api", DOCUMENTS)
def test_every_array_in_every_request_and_answer_has_a_documented_maximum(api: str):
    """Bounded answers (and requests): a client, a proxy and a fuzzer know the largest list
    any route gives or takes; list routes page (limit, after) below it."""
    document = json.loads(DOCUMENTS[api].read_text(encoding="utf-8"))
    unbounded = [where for where, array in _arrays(document, "#") if "maxItems" not in array]
    assert not unbounded
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            limit = next((p for p in operation.get("parameters", ()) if p["name"] == "limit"), None)
            if limit is None:
                continue
            answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
            items = answer["properties"]["items"]
            assert items["maxItems"] == limit["schema"]["maximum"], (method, path)
            assert "after" in {p["name"] for p in operation["parameters"]}, (method, path)


@pytest.mark.parametrize("api", DOCUMENTS)
def test_every_string_in_a_path_or_a_query_publishes_what_the_server_refuses(api: str):
    """Every API answers a NUL in a path or a query 400 (platform/http/problems.py): a
    parameter's pattern says so, or an enum lists what it takes."""
    document = json.loads(DOCUMENTS[api].read_text(encoding="utf-8"))
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", ()):
                schema = parameter["schema"]
                if parameter["in"] not in ("path", "query") or schema.get("type") != "string":
                    continue
                where = (api, method, path, parameter["name"])
                assert "enum" in schema or "pattern" in schema, where
                if "pattern" in schema:
                    assert not re.fullmatch(schema["pattern"], "a\x00b"), where
