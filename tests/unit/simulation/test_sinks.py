"""The runner and the sinks that need no broker: memory, JSON lines, the CLI, and the API sink
against a local stand-in of the visits API."""

from __future__ import annotations

import json
import time

from aiohttp import web
from aiohttp.test_utils import TestServer

from services.cli import main
from services.tools.simulation import SimulationParameters, generate, simulate
from services.tools.simulation import records as rec
from services.tools.simulation.sinks.api import ROUTES, SERVER_FIELDS, ApiSink
from services.tools.simulation.sinks.base import MemorySink
from services.tools.simulation.sinks.jsonl import JsonLinesSink, json_line

SMALL = SimulationParameters(seed=5, scale=0.01)


async def test_simulate_writes_the_whole_stream_in_order_and_summarises_it():
    sink = MemorySink()
    async with sink:
        summary = await simulate(SMALL, sink, batch_size=64)
    assert [json_line(e) for e in sink.events] == [json_line(e) for e in generate(SMALL)]
    assert summary.events == len(sink.events)
    assert sum(summary.households.values()) == sum(
        1 for e in sink.events if e.record.get("change") == "BASELINE"
    )
    text = summary.render()
    assert "VisitRecorded" in text and "claimed / measured" in text


async def test_a_rate_limit_paces_the_stream():
    sink = MemorySink()
    parameters = SimulationParameters(seed=5, scale=0.01, days=40)
    total = sum(1 for _ in generate(parameters))
    rate = total / 0.6  # should take about 0.6 s
    started = time.monotonic()
    async with sink:
        await simulate(parameters, sink, rate=rate)
    assert time.monotonic() - started >= 0.5
    assert len(sink.events) == total


async def test_json_lines_sink_writes_one_object_per_event(tmp_path):
    path = tmp_path / "county.jsonl"
    async with JsonLinesSink(path) as sink:
        summary = await simulate(SMALL, sink)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == summary.events
    first = json.loads(lines[0])
    assert set(first) == {"topic", "key", "event_type", "record"}
    assert first["record"]["recorded_at"].endswith("+08:00")


def test_the_cli_writes_a_file_and_prints_the_summary(tmp_path, capsys):
    path = tmp_path / "out.jsonl"
    status = main(["simulate", "--seed", "5", "--scale", "0.01", "--out", str(path), "--quiet"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "households by registration" in printed and "events/s" in printed
    assert path.read_text(encoding="utf-8").splitlines() == [json_line(e) for e in generate(SMALL)]


class FakeVisitsApi:
    """Answers `POST /v1/{kind}:batch` like the visits API: 202 per record, once 503 first."""

    def __init__(self, fail_first: int = 1):
        self.received: list[tuple[str, dict]] = []
        self.fail_first = fail_first
        self.tokens: set[str] = set()
        self.review_tokens: list[tuple[str, str]] = []  # (token, approving_level)

    async def batch(self, request: web.Request) -> web.Response:
        self.tokens.add(request.headers.get("Authorization", ""))
        if self.fail_first:
            self.fail_first -= 1
            return web.json_response(
                {"error": "unavailable"}, status=503, headers={"Retry-After": "0"}
            )
        body = await request.json()
        route = request.match_info["kind"]
        for record in body["records"]:
            self.received.append((route, record))
            if route == "review-decisions":
                token = request.headers["Authorization"]
                self.review_tokens.append((token, record["approving_level"]))
        results = [
            {"index": i, "status": 202, "event_id": r["event_id"]}
            for i, r in enumerate(body["records"])
        ]
        return web.json_response(
            {"accepted": len(results), "refused": 0, "results": results}, status=202
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/{kind}:batch", self.batch)
        return app


async def test_api_sink_posts_each_type_to_its_route_and_retries_a_503():
    fake = FakeVisitsApi(fail_first=1)
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        sink = ApiSink(str(server.make_url("/")), "secret-token", max_batch=50)
        async with sink:
            summary = await simulate(SMALL, sink, batch_size=200)
    finally:
        await server.close()
    assert fake.tokens == {"Bearer secret-token"}
    assert len(fake.received) == summary.events == sink.accepted
    expected = [(ROUTES[e.event_type], e.record["event_id"]) for e in generate(SMALL)]
    assert [(route, r["event_id"]) for route, r in fake.received] == expected
    for _, record in fake.received:
        assert not set(SERVER_FIELDS) & set(record)
        assert record["occurred_at"].endswith("+08:00")


class PlaceTokens:
    """Level tokens named after what they are for, so the test reads which one was used."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None, str | None]] = []

    async def secret(self, level: str, township: str | None, village: str | None) -> str:
        self.asked.append((level, township, village))
        return "county" if level == "COUNTY" else f"{level}:{township}"


async def test_the_api_sink_posts_each_review_decision_with_its_levels_token():
    fake = FakeVisitsApi(fail_first=0)
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    levels = PlaceTokens()
    try:
        sink = ApiSink(str(server.make_url("/")), "county", max_batch=50, level_tokens=levels)
        async with sink:
            await simulate(SMALL, sink, batch_size=200)
    finally:
        await server.close()
    assert fake.review_tokens, "the small campaign has review decisions"
    places = {
        e.record["household_id"]: (e.record["township"], e.record["village"])
        for e in generate(SMALL)
        if e.event_type == rec.REGISTRY
    }
    reviews = [r for route, r in fake.received if route == "review-decisions"]
    for (token, level), record in zip(fake.review_tokens, reviews, strict=True):
        township, village = places[record["household_id"]]
        assert token == ("Bearer county" if level == "COUNTY" else f"Bearer {level}:{township}")
        if level == "VILLAGE":
            assert (level, township, village) in levels.asked
    assert {level for _, level in fake.review_tokens} == {"VILLAGE", "TOWNSHIP", "COUNTY"}
    # Every other record goes with the sink's own token (the county's, here).
    assert fake.tokens == {"Bearer county"} | {t for t, _ in fake.review_tokens}


def test_the_api_sink_routes_are_the_ones_the_visits_api_documents():
    from pathlib import Path

    openapi = json.loads(
        (Path(__file__).resolve().parents[3] / "services/visits/openapi.json").read_text("utf-8")
    )
    for event_type, slug in ROUTES.items():
        path = f"/v1/{slug}:batch"
        assert path in openapi["paths"], (event_type, path)
        assert "post" in openapi["paths"][path]
