"""The committed OpenAPI document is current and matches the routes; fuzzing it finds no 5xx."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.codec import Codec
from services.platform.http.problems import PROBLEM_JSON
from services.visits.entrypoints.openapi import build_document, load_document, render
from tests.unit.visits.conftest import Api
from tests.visits_samples import sample

DOCUMENT = load_document()


def test_committed_document_is_what_the_contract_generates(codec: Codec) -> None:
    assert load_document() == json.loads(render(build_document(codec))), (
        "regenerate: python -m services.visits.entrypoints.openapi > services/visits/openapi.json"
    )


async def test_document_paths_are_exactly_the_routes(api: Api) -> None:
    routes = {
        (resource.canonical, route.method.lower())
        for resource in api.client.server.app.router.resources()
        for route in resource
        if route.method != "HEAD"
    }
    documented = {(path, method) for path, ops in DOCUMENT["paths"].items() for method in ops}
    assert routes == documented


def _inline(schema: Any) -> Any:
    """Resolve the document's local $refs, for hypothesis-jsonschema."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return _inline(DOCUMENT["components"]["schemas"][name])
        return {k: _inline(v) for k, v in schema.items() if k not in ("description",)}
    if isinstance(schema, list):
        return [_inline(v) for v in schema]
    return schema


WRITES = sorted(path for path, ops in DOCUMENT["paths"].items() if "post" in ops)
BODIES = {
    path: _inline(DOCUMENT["paths"][path]["post"]["requestBody"]["content"]["application/json"])[
        "schema"
    ]
    for path in WRITES
}


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values for the JSON Schema subset the document uses: mostly valid, with optional
    fields present or not, formats sometimes broken, so both paths of the API are exercised."""
    if "anyOf" in schema:
        return st.one_of(*(from_schema(branch) for branch in schema["anyOf"]))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        required = set(schema.get("required", ()))
        fields = {name: from_schema(sub) for name, sub in schema["properties"].items()}

        @st.composite
        def objects(draw) -> dict[str, Any]:
            return {
                name: draw(strategy)
                for name, strategy in fields.items()
                if name in required or draw(st.booleans())
            }

        return objects()
    if kind == "array":
        return st.lists(
            from_schema(schema["items"]), min_size=schema.get("minItems", 0), max_size=3
        )
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    formats = {
        "date-time": st.datetimes(
            timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8))])
        ).map(lambda d: d.isoformat()),
        "date": st.dates().map(str),
        "uuid": st.uuids().map(str),
    }
    valid = formats.get(schema.get("format", ""), st.text(max_size=12))
    return st.one_of(valid, valid, valid, st.text(max_size=12))


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def requests(draw) -> tuple[str, Any, str]:
    path = draw(st.sampled_from(WRITES))
    body = draw(st.one_of(from_schema(BODIES[path]), ANY_JSON))
    role = draw(st.sampled_from(["cadre", "feed", "operator", "elsewhere", "revoked"]))
    return path, body, role


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
async def test_no_request_from_the_document_gets_a_5xx(api: Api, request) -> None:
    path, body, role = request
    response = await api.post(path, body, role=role)
    assert response.status < 500, await response.text()
    answer = await response.json()
    if response.status >= 400 and "results" not in answer:
        assert response.content_type == PROBLEM_JSON
        assert answer["type"] and answer["title"] and answer["status"] == response.status


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.one_of(st.sampled_from(WRITES), st.text(alphabet="abcv1:-._%/", max_size=30)).map(
        lambda p: "/" + p.lstrip("/")
    ),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/json; charset=utf-8"]
    ),
    raw=st.binary(max_size=200),
)
async def test_no_raw_request_gets_a_5xx(
    api: Api, path: str, content_type: str, raw: bytes
) -> None:
    headers = {**api.auth("operator"), "Content-Type": content_type}
    response = await api.client.post(path, data=raw, headers=headers)
    assert response.status < 500, await response.text()


async def test_an_accepted_record_is_answered_with_exactly_the_documented_members(api: Api):
    response = await api.post("/v1/visits", sample("visits"), role="operator")
    assert response.status == 202
    answer = await response.json()
    declared = DOCUMENT["paths"]["/v1/visits"]["post"]["responses"]["202"]["content"]
    schema = _inline(declared["application/json"]["schema"])
    assert set(schema["required"]) <= set(answer) <= set(schema["properties"]), answer
    assert answer["status"] == schema["properties"]["status"]["const"]
