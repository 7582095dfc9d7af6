"""The door's client of the monitoring view steps aside after a read that could not reach it:
the next reads are `unreachable` at once, without a request, until its pause has passed."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from services.visits.adapters.household_view import MonitoringViews, ViewUnavailable

DOCUMENT = {"workflow": {"status": "MONITORED", "procedure": None, "decisions": []}}


class SlowView:
    """A real HTTP server standing in for a busy monitoring worker: it holds each request
    until released (longer than the client's timeout), or answers at once when `quick`."""

    def __init__(self) -> None:
        self.requests = 0
        self.quick = False
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if not self.quick:
            await self.release.wait()
        return web.json_response(DOCUMENT)


@pytest.fixture
async def slow_view():
    view = SlowView()
    app = web.Application()
    app.router.add_get("/v1/households/{id}", view.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield view, f"http://127.0.0.1:{port}"
    view.release.set()
    await runner.cleanup()


async def test_after_a_timeout_reads_are_not_tried_until_the_pause_has_passed(slow_view):
    view, url = slow_view
    now = [100.0]
    views = MonitoringViews(url, "t", timeout_seconds=0.2, pause_seconds=30, clock=lambda: now[0])
    try:
        with pytest.raises(ViewUnavailable) as first:
            await views.household("H-1")
        assert (first.value.reason, view.requests) == ("unreachable", 1)
        now[0] += 29
        for _ in range(5):
            with pytest.raises(ViewUnavailable) as skipped:
                await views.household("H-2")
            assert skipped.value.reason == "unreachable"
        assert view.requests == 1  # none of the five reached the view
        view.quick = True
        now[0] += 2
        household = await views.household("H-3")
        assert (household.status, view.requests) == ("MONITORED", 2)
    finally:
        await views.close()


async def test_an_answer_other_than_unreachable_does_not_pause_the_reads(slow_view):
    view, url = slow_view
    view.quick = True
    views = MonitoringViews(url, "t", timeout_seconds=5, clock=lambda: 0.0)
    try:
        for household in ("H-1", "H-2", "H-3"):
            assert (await views.household(household)).status == "MONITORED"
        assert view.requests == 3
    finally:
        await views.close()
