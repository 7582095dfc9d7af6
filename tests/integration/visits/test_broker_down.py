"""Broker unreachable: 503 with Retry-After and nothing written; when a broker comes up on that
address, the very same request is accepted and lands."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from services.platform.config import VisitsSettings
from tests.integration.visits.conftest import issue, prepare_topics, read_record, running_app
from tests.visits_samples import sample

pytestmark = pytest.mark.integration


async def test_503_while_down_then_the_same_request_succeeds(
    database_url: str, local_kafka_factory
) -> None:
    kafka = local_kafka_factory()  # not started: nothing listens on its port yet
    settings = VisitsSettings(request_timeout_seconds=2.0, retry_after_seconds=3)
    async with running_app(kafka.bootstrap, database_url, settings) as (client, pool):
        secret = await issue(pool, "operator", "op-down")
        headers = {"Authorization": f"Bearer {secret}"}
        body = sample("hardships", occurred_at=dt.datetime.now(dt.UTC).isoformat())
        batch = {"records": [sample("hardships"), sample("hardships")]}

        response = await client.post("/v1/hardships", json=body, headers=headers)
        assert response.status == 503, await response.text()
        assert response.headers["Retry-After"] == "3"
        assert "retry" in (await response.json())["detail"]
        response = await client.post("/v1/hardships:batch", json=batch, headers=headers)
        assert response.status == 503 and response.headers["Retry-After"] == "3"
        assert [r["status"] for r in (await response.json())["results"]] == [503, 503]
        assert (await client.get("/readyz")).status == 503

        await asyncio.to_thread(kafka.start)
        await prepare_topics(kafka.bootstrap)

        # A client retries a 503 as told; a broker just started may need more than one
        # request timeout for its first ack on a loaded machine.
        response = await _retried(client.post, "/v1/hardships", json=body, headers=headers)
        assert response.status == 202, await response.text()
        answer = await response.json()
        key, decoded = await read_record(
            kafka.bootstrap, _codec(), answer["topic"], answer["partition"], answer["offset"]
        )
        assert key == body["household_id"].encode()
        assert str(decoded.record["event_id"]) == body["event_id"]
        # Nothing from the attempts while the broker was down was half-written: the partition
        # starts with this event (a retry after a timed-out ack may add a copy of it, no other).
        _, first = await read_record(
            kafka.bootstrap, _codec(), answer["topic"], answer["partition"], 0
        )
        assert str(first.record["event_id"]) == body["event_id"]
        response = await _retried(client.post, "/v1/hardships:batch", json=batch, headers=headers)
        assert response.status == 202, await response.text()
        assert (await _retried(client.get, "/readyz")).status == 200


async def _retried(method, path: str, deadline: float = 120.0, **options):
    """The first answer that is not a 503, or the last 503 once the deadline has passed."""
    give_up = asyncio.get_running_loop().time() + deadline
    while True:
        response = await method(path, **options)
        if response.status != 503 or asyncio.get_running_loop().time() > give_up:
            return response
        await response.read()


def _codec():
    from services.contract.codec import Codec

    return Codec.default()
