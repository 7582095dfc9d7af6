"""Review decisions are people's decisions: the actor is always the authenticated token's
holder, never something the request says."""

from __future__ import annotations

import pytest

from tests.unit.visits.conftest import Api
from tests.visits_samples import sample


async def test_the_actor_of_a_review_decision_is_the_token_holder(api: Api, codec) -> None:
    response = await api.post("/v1/review-decisions", sample("review-decisions"), role="operator")
    assert response.status == 202, await response.text()
    [(topic, _, value)] = api.sink.records
    record = codec.decode(value, "ReviewDecided").record
    assert topic == "household.reviews"
    assert (record["actor"], record["source"]) == ("op-1", "OPERATOR")


@pytest.mark.parametrize(
    ("claimed", "field"),
    [({"actor": "county-head"}, "actor"), ({"source": "SERVICE"}, "source")],
)
async def test_a_claimed_actor_or_source_is_refused_and_nothing_written(
    api: Api, claimed: dict, field: str
) -> None:
    single = await api.post(
        "/v1/review-decisions", sample("review-decisions", **claimed), role="operator"
    )
    assert single.status == 422
    problems = (await single.json())["errors"]
    assert {"field": field, "message": "set by the server from your token; do not send it"} in (
        problems
    )
    batch = await api.post(
        "/v1/review-decisions:batch",
        {"records": [sample("review-decisions", **claimed)]},
        role="operator",
    )
    assert batch.status == 422
    assert api.sink.records == []


async def test_a_cadre_token_cannot_record_review_decisions(api: Api) -> None:
    response = await api.post("/v1/review-decisions", sample("review-decisions"), role="cadre")
    assert response.status == 403
    assert api.sink.records == []
