"""Registry records leave the API with their personal data sealed, or not at all."""

from __future__ import annotations

import pytest

from services.contract.personal import Subject, unseal
from services.platform.http.problems import problem_type
from tests.unit.visits.conftest import Api
from tests.visits_samples import sample

SECRETS = {"head_name": "赵六七", "citizen_id": "50022819860413771X", "phone": "+86 138 2270 4519"}


def keys_of(api: Api):
    return api.deps.sealer.keys.store


@pytest.mark.parametrize(
    ("slug", "subject_field", "personal"),
    [
        ("households", "household_id", SECRETS),
        ("cadres", "cadre_id", {"name": SECRETS["head_name"], "phone": SECRETS["phone"]}),
    ],
)
async def test_a_registry_record_is_produced_sealed(api: Api, codec, slug, subject_field, personal):
    body = sample(slug, personal=dict(personal))
    response = await api.post(f"/v1/{slug}", body, role="operator")
    assert response.status == 202, await response.text()
    [(_, _, frame)] = api.sink.records
    for value in personal.values():
        assert value.encode("utf-8") not in frame
    record = codec.decode(frame).record
    assert record["personal"] is None
    subject = Subject("household" if slug == "households" else "cadre", body[subject_field])
    key = await keys_of(api).get_or_create(subject)
    assert unseal(record["personal_sealed"], subject, body["event_id"], key) == personal


async def test_a_resent_registry_record_is_a_duplicate_not_a_conflict(api: Api) -> None:
    body = sample("households", personal=dict(SECRETS))
    first = await api.post("/v1/households", body, role="operator")
    again = await api.post("/v1/households", body, role="operator")
    assert (first.status, again.status) == (202, 202)
    assert (await again.json())["duplicate"] is True
    assert len(api.sink.records) == 1


async def test_a_retry_of_an_acknowledged_record_needs_no_key(api: Api) -> None:
    # A field app retries when it missed the answer. By then the key may be out of the cache
    # with the store down, or erased (`personal forget`): the retry is still the duplicate
    # it is (202), not a 503 nor, sealed under a new key, a 409 "event id reused".
    body = sample("households", personal=dict(SECRETS))
    subject = Subject("household", body["household_id"])
    assert (await api.post("/v1/households", body, role="operator")).status == 202
    api.deps.sealer.keys.forget(subject)
    keys_of(api).failing = True
    again = await api.post("/v1/households", body, role="operator")
    assert again.status == 202, await again.text()
    assert (await again.json())["duplicate"] is True
    keys_of(api).failing = False
    await keys_of(api).shred(subject, "operator:li", "erasure request")
    api.deps.sealer.keys.forget(subject)
    again = await api.post("/v1/households", body, role="operator")
    assert again.status == 202 and (await again.json())["duplicate"] is True
    assert len(api.sink.records) == 1


async def test_no_key_store_means_503_with_retry_after_and_nothing_produced(api: Api) -> None:
    keys_of(api).failing = True
    response = await api.post("/v1/households", sample("households"), role="operator")
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert (await response.json())["type"] == problem_type("unavailable")
    batch = await api.post(
        "/v1/households:batch",
        {"records": [sample("households") for _ in range(3)]},
        role="operator",
    )
    assert batch.status == 503
    assert api.sink.records == []


async def test_a_record_without_personal_data_needs_no_key(api: Api, codec) -> None:
    keys_of(api).failing = True
    response = await api.post(
        "/v1/households", sample("households", personal=None), role="operator"
    )
    assert response.status == 202
    [(_, _, frame)] = api.sink.records
    assert codec.decode(frame).record["personal_sealed"] is None


async def test_a_client_cannot_send_a_sealed_blob(api: Api) -> None:
    body = sample("households", personal_sealed={"key_id": "k", "algorithm": "x"})
    response = await api.post("/v1/households", body, role="operator")
    assert response.status == 422
    problems = (await response.json())["errors"]
    assert {"field": "personal_sealed", "message": "sealed by the server; send the plain "
            "`personal` object"} in problems  # fmt: skip
    assert api.sink.records == []


async def test_personal_values_reach_no_log_metric_or_answer(api: Api, caplog) -> None:
    keys_of(api).failing = True
    bad = sample("households", personal={**SECRETS, "head_name": " "})
    good = sample("households", personal=dict(SECRETS))
    with caplog.at_level("DEBUG"):
        answers = [
            await api.post("/v1/households", good, role="operator"),
            await api.post("/v1/households", bad, role="operator"),
        ]
        keys_of(api).failing = False
        answers.append(await api.post("/v1/households", good, role="operator"))
    texts = [caplog.text, await (await api.client.get("/metrics")).text()]
    texts += [await a.text() for a in answers]
    assert [a.status for a in answers] == [503, 422, 202]
    for text in texts:
        for value in SECRETS.values():
            assert value not in text


async def test_a_batch_of_new_households_gets_its_keys_together_and_each_record_opens(
    api: Api, codec
) -> None:
    bodies = [
        sample("households", personal=dict(SECRETS), household_id=f"H-500228-000{i}")
        for i in (1, 2, 3, 2, 4)  # a subject twice: one key
    ]
    calls = []
    store = keys_of(api)
    many = store.get_or_create_many

    async def counted(subjects):
        calls.append(list(subjects))
        return await many(subjects)

    store.get_or_create_many = counted
    response = await api.post("/v1/households:batch", {"records": bodies}, role="operator")
    assert response.status == 202, await response.text()
    assert len(calls) == 1 and len(calls[0]) == 4  # the distinct subjects, in one call
    assert len(api.sink.records) == 5
    for body, (_, _, frame) in zip(bodies, api.sink.records, strict=True):
        record = codec.decode(frame).record
        subject = Subject("household", body["household_id"])
        key = await store.get_or_create(subject)
        assert unseal(record["personal_sealed"], subject, body["event_id"], key) == SECRETS


async def test_a_batch_with_the_key_store_down_is_refused_record_by_record(api: Api) -> None:
    keys_of(api).failing = True
    bodies = [sample("households", personal=dict(SECRETS)) for _ in range(3)]
    response = await api.post("/v1/households:batch", {"records": bodies}, role="operator")
    assert response.status == 503, await response.text()
    assert api.sink.records == []
