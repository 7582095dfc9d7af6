"""Request bodies are parsed by orjson when it can, and otherwise by the standard parser as
before: JSON that orjson refuses but the standard library reads (integers beyond 64 bits,
lone surrogate escapes, 1e400) still gets the same field-level answer, and JSON neither reads
gets the same malformed_json answer."""

from __future__ import annotations

import json

from services.platform.http.problems import problem_type
from tests.unit.visits.conftest import Api
from tests.visits_samples import sample


def _with(body: dict, field: str, literal: str) -> bytes:
    marker = "__literal__"
    body[field] = marker
    return json.dumps(body).replace(f'"{marker}"', literal).encode()


async def _post_raw(api: Api, data: bytes):
    headers = {**api.auth("cadre"), "Content-Type": "application/json"}
    return await api.client.post("/v1/visits", data=data, headers=headers)


async def test_an_integer_beyond_64_bits_is_named_as_that_field(api: Api) -> None:
    body = sample("visits")
    text = json.dumps(body)
    assert '"per_capita_yuan": 5800' in text
    data = text.replace('"per_capita_yuan": 5800', f'"per_capita_yuan": {2**80}').encode()
    response = await _post_raw(api, data)
    assert response.status == 422
    answer = await response.json()
    assert answer["type"] == problem_type("invalid")
    assert [p["field"] for p in answer["errors"]] == ["income_estimate.per_capita_yuan"]
    assert api.sink.records == []


async def test_an_overflowing_number_is_named_as_that_field(api: Api) -> None:
    body = sample("visits")
    response = await _post_raw(api, _with(body, "policy_card", "1e400"))
    assert response.status == 422
    answer = await response.json()
    assert answer["type"] == problem_type("invalid")
    assert [p["field"] for p in answer["errors"]] == ["policy_card"]
    assert api.sink.records == []


async def test_json_neither_parser_reads_is_malformed(api: Api) -> None:
    for data in (b'{"a": 1,}', b"{'a': 1}", b'{"a": Infinity}', b"[1] x"):
        response = await _post_raw(api, data)
        assert response.status == 422, data
        assert (await response.json())["type"] == problem_type("malformed_json")
    assert api.sink.records == []


async def test_unicode_text_arrives_unchanged(api: Api) -> None:
    body = sample("visits")
    body["checks"]["medical"] = {"status": "PROBLEM", "note": "透析，每周三次 🏥"}
    response = await _post_raw(api, json.dumps(body, ensure_ascii=False).encode())
    assert response.status == 202, await response.text()
    [(_, _, value)] = api.sink.records
    record = api.deps.codec.decode(value).record
    assert record["checks"]["medical"]["note"] == "透析，每周三次 🏥"


async def test_an_unknown_field_name_is_echoed_whatever_its_characters(api: Api) -> None:
    body = sample("visits")
    data = json.dumps(body, ensure_ascii=False)[:-1] + ', "名字": 1}'
    response = await _post_raw(api, data.encode())
    assert response.status == 422
    answer = json.loads(await response.text())
    assert answer["type"] == problem_type("invalid")
    assert [p["field"] for p in answer["errors"]] == ["名字"]
    assert api.sink.records == []


async def test_lone_surrogate_escapes_are_refused_by_field(api: Api) -> None:
    # JSON the standard parser reads (orjson does not) and UTF-8 cannot hold: a 500 before.
    body = sample("visits")
    body["checks"]["medical"] = {"status": "PROBLEM", "note": "NOTE"}
    text = json.dumps(body)
    cases = [
        ("/v1/visits", text.replace('"NOTE"', '"a\\ud800b"'), "checks.medical.note"),
        ("/v1/visits", text[:-1] + ', "\\udfffx": 1}', ""),
        (
            "/v1/visits:batch",
            json.dumps({"records": [sample("visits"), json.loads(text)]}).replace(
                '"NOTE"', '"\\ud800"'
            ),
            "records[1].checks.medical.note",
        ),
    ]
    for path, data, field in cases:
        headers = {**api.auth("cadre"), "Content-Type": "application/json"}
        response = await api.client.post(path, data=data.encode(), headers=headers)
        assert response.status == 422, (path, await response.text())
        answer = await response.json()
        assert answer["type"] == problem_type("invalid")
        assert [p["field"] for p in answer["errors"]] == [field]
    assert api.sink.records == []
