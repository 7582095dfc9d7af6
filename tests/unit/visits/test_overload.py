"""Overload: when the event log cannot keep up, the API sheds writes (429 + Retry-After)
instead of queueing them without limit, and every 2xx it gave is in the log."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from services.platform.http.problems import problem_type
from services.platform.kafka.producer import InMemorySink
from tests.unit.visits.conftest import Api
from tests.visits_samples import sample


class GatedSink(InMemorySink):
    """Holds every send until the gate opens: a broker that cannot keep up."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def send(self, topic: str, key: bytes, value: bytes):
        self.waiting += 1
        await self.gate.wait()
        return await super().send(topic, key, value)


async def until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_writes_beyond_the_limit_are_shed_not_queued(api: Api) -> None:
    sink = GatedSink()
    api.deps.sink = sink
    # No operator reserve: this test is about the broker slots every kind shares.
    api.deps.limits = replace(
        api.deps.limits, max_in_flight=3, retry_after_seconds=7, operator_reserve=0
    )
    held = [asyncio.create_task(api.post("/v1/visits", sample("visits"))) for _ in range(3)]
    await until(lambda: sink.waiting == 3)

    shed = await api.post("/v1/visits", sample("visits"))
    assert shed.status == 429
    assert shed.headers["Retry-After"] == "7"
    body = await shed.json()
    assert body["type"] == problem_type("overloaded") and "nothing was written" in body["detail"]
    batch = await api.post("/v1/visits:batch", {"records": [sample("visits")]})
    assert batch.status == 429  # batches count against the same limit
    assert sink.waiting == 3  # the shed requests never reached the sink

    sink.gate.set()
    answers = await asyncio.gather(*held)
    assert [a.status for a in answers] == [202, 202, 202]
    acknowledged = {(await a.json())["event_id"] for a in answers}
    assert len(sink.records) == 3  # every 2xx is in the log
    assert acknowledged == {str(_event_id(api, value)) for _, _, value in sink.records}

    again = await api.post("/v1/visits", sample("visits"))
    assert again.status == 202  # the slots came back


async def test_a_refused_write_gives_its_slot_back(api: Api) -> None:
    api.deps.limits = replace(api.deps.limits, max_in_flight=1)
    for _ in range(3):
        bad = await api.post("/v1/visits", {"household_id": 1})
        assert bad.status == 422
    good = await api.post("/v1/visits", sample("visits"))
    assert good.status == 202


def _event_id(api: Api, frame: bytes):
    return api.deps.codec.decode(frame).record["event_id"]
