"""The visits API raises the collector's young generation from its start to its cleanup
(platform/collector.py): a batch's objects die young instead of setting off full
collections."""

from __future__ import annotations

import gc

from services.visits.entrypoints.http import YOUNG_GENERATION


async def test_the_api_holds_a_large_young_generation_while_it_serves(api) -> None:
    assert gc.get_threshold()[0] >= YOUNG_GENERATION
    response = await api.client.get("/healthz")  # and it answers meanwhile
    assert response.status == 200
