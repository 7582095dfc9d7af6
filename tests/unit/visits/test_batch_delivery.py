"""A request's records are handed to the sink together, and each keeps its own outcome: when the
event log acknowledges some records of a batch and not others, every 202 is in the log, every
503 is not, and re-sending the batch writes only what is missing."""

from __future__ import annotations

from collections.abc import Sequence

from services.platform.http.problems import problem_type
from services.platform.kafka.producer import (
    BrokerUnavailable,
    InMemorySink,
    OutgoingRecord,
    SendResult,
)
from tests.unit.visits.conftest import Api
from tests.visits_samples import sample


class FlakySink(InMemorySink):
    """Refuses the records whose event id is in `refuse` (a partition whose leader is gone),
    acknowledges the others; counts how often it was called."""

    def __init__(self, api: Api) -> None:
        super().__init__()
        self.api = api
        self.refuse: set[str] = set()
        self.calls: list[int] = []

    async def send(self, topic: str, key: bytes, value: bytes):
        if str(self.api.deps.codec.decode(value).record["event_id"]) in self.refuse:
            raise BrokerUnavailable("NotLeaderForPartitionError")
        return await super().send(topic, key, value)

    async def send_many(self, records: Sequence[OutgoingRecord]) -> list[SendResult]:
        self.calls.append(len(records))
        return await super().send_many(records)


def _logged(api: Api, sink: InMemorySink) -> list[str]:
    return [str(api.deps.codec.decode(value).record["event_id"]) for _, _, value in sink.records]


async def test_each_record_reports_its_own_delivery(api: Api) -> None:
    sink = FlakySink(api)
    api.deps.sink = sink
    bodies = [sample("visits") for _ in range(6)]
    sink.refuse = {bodies[1]["event_id"], bodies[4]["event_id"]}

    response = await api.post("/v1/visits:batch", {"records": bodies})

    assert response.status == 503  # any record not written makes the batch a 503
    assert response.headers["Retry-After"] == str(api.deps.limits.retry_after_seconds)
    answer = await response.json()
    assert (answer["accepted"], answer["refused"]) == (4, 2)
    results = answer["results"]
    assert [r["status"] for r in results] == [202, 503, 202, 202, 503, 202]
    assert [r["event_id"] for r in results] == [b["event_id"] for b in bodies]
    for result in results:
        if result["status"] == 503:
            assert result["type"] == problem_type("unavailable") and "retry" in result["detail"]
            assert "offset" not in result
        else:
            assert result["duplicate"] is False and result["topic"] == "household.visits"
    acknowledged = [r["event_id"] for r in results if r["status"] == 202]
    assert _logged(api, sink) == acknowledged  # every 202 is in the log, nothing else is
    assert [r["offset"] for r in results if r["status"] == 202] == [0, 1, 2, 3]
    assert sink.calls == [6]  # one hand-over for the whole request

    sink.refuse = set()
    again = await api.post("/v1/visits:batch", {"records": bodies})
    assert again.status == 202
    replies = (await again.json())["results"]
    assert [r["duplicate"] for r in replies] == [True, False, True, True, False, True]
    assert [r["offset"] for r in replies] == [0, 4, 1, 2, 5, 3]  # earlier answers kept
    assert sorted(_logged(api, sink)) == sorted(b["event_id"] for b in bodies)
    assert len(sink.records) == 6  # nothing written twice
    assert sink.calls == [6, 2]  # only the missing records went to the sink


async def test_a_single_post_that_is_not_acknowledged_is_a_503_and_not_remembered(
    api: Api,
) -> None:
    sink = FlakySink(api)
    api.deps.sink = sink
    body = sample("visits")
    sink.refuse = {body["event_id"]}
    refused = await api.post("/v1/visits", body)
    assert refused.status == 503 and refused.headers["Retry-After"]
    assert sink.records == []
    sink.refuse = set()
    accepted = await api.post("/v1/visits", body)
    assert accepted.status == 202
    assert (await accepted.json())["duplicate"] is False  # the failure was not remembered
    assert _logged(api, sink) == [body["event_id"]]


async def test_copies_in_one_batch_share_the_fate_of_the_first(api: Api) -> None:
    sink = FlakySink(api)
    api.deps.sink = sink
    body, other = sample("visits"), sample("visits")
    sink.refuse = {body["event_id"]}
    response = await api.post("/v1/visits:batch", {"records": [body, other, body]})
    results = (await response.json())["results"]
    assert [r["status"] for r in results] == [503, 202, 503]
    assert sink.calls == [2]  # the copy is not sent
    assert _logged(api, sink) == [other["event_id"]]
