"""One contract for both key stores (in memory and PostgreSQL), plus what only PostgreSQL holds:
wrapped keys, the master key check, an unreachable server."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.contract.personal import Subject
from services.platform.personal.keys import (
    InMemoryKeyStore,
    KeyStoreMismatch,
    KeysUnavailable,
    PostgresKeyStore,
    Shredded,
)
from services.platform.postgres.migrate import apply_migrations

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(params=["memory", "postgres"])
async def store(request, pool, personal_master_key):
    if request.param == "memory":
        return InMemoryKeyStore()
    return PostgresKeyStore(pool, personal_master_key)


def subject(kind: str = "household") -> Subject:
    return Subject(kind, f"ks-{uuid.uuid4().hex[:10]}")


async def test_one_key_per_subject_even_for_concurrent_creators(store):
    household = subject()
    keys = await asyncio.gather(*(store.get_or_create(household) for _ in range(8)))
    assert len({k.key_id for k in keys}) == 1 and len({k.secret for k in keys}) == 1
    cadre = Subject("cadre", household.subject_id)  # same id, other kind: another key
    assert (await store.get_or_create(cadre)).key_id != keys[0].key_id
    assert await store.find(keys[0].key_id) == keys[0]
    assert await store.find(str(uuid.uuid4())) is None


async def test_shredding_deletes_the_key_and_records_who_and_why(store):
    household = subject()
    key = await store.get_or_create(household)
    [record] = await store.shred(household, "op-3", "court order 17")
    assert isinstance(record, Shredded)
    assert (record.key_id, record.subject, record.actor, record.reason) == (
        key.key_id,
        household,
        "op-3",
        "court order 17",
    )
    assert await store.find(key.key_id) == record
    again = await store.get_or_create(household)  # a later registry record: a new key
    assert again.key_id != key.key_id and again.secret != key.secret
    assert len(await store.shred(household, "op-4", "second request")) == 2
    assert await store.shred(subject(), "op-3", "never had a key") == []


@pytest.mark.parametrize("failure", [RuntimeError("broker down"), TimeoutError("no ack")])
async def test_a_deletion_its_recorder_refuses_keeps_the_key(store, failure):
    household = subject()
    key = await store.get_or_create(household)
    seen: list[str] = []

    async def refuse(key_id: str) -> None:
        seen.append(key_id)
        raise failure

    # The recorder's own error comes out as itself (a TimeoutError is not "key store down").
    with pytest.raises(type(failure), match=str(failure)):
        await store.shred(household, "op-5", "request 8", before_delete=refuse)
    assert seen == [key.key_id]
    assert await store.find(key.key_id) == key and await store.get_or_create(household) == key

    async def record(key_id: str) -> None:
        seen.append(key_id)

    [shredded] = await store.shred(household, "op-5", "request 8", before_delete=record)
    assert shredded.key_id == key.key_id and seen == [key.key_id, key.key_id]
    assert await store.find(key.key_id) == shredded


async def test_keys_are_stored_wrapped_and_need_the_same_master_key(pool, personal_master_key):
    household = subject()
    key = await PostgresKeyStore(pool, personal_master_key).get_or_create(household)
    row = await pool.fetchrow(
        "SELECT wrapped_key FROM personal_keys WHERE subject_id = $1", household.subject_id
    )
    assert key.secret not in bytes(row["wrapped_key"])
    other = PostgresKeyStore(pool, os.urandom(32))
    with pytest.raises(KeyStoreMismatch, match="wrapped by master key") as caught:
        await other.get_or_create(household)
    assert key.secret.hex() not in str(caught.value)


async def test_an_unreachable_server_is_keys_unavailable(
    local_postgres_factory, personal_master_key
):
    server = local_postgres_factory()
    await asyncio.to_thread(server.start)
    await apply_migrations(server.database_url)
    pool = await asyncpg.create_pool(server.database_url, min_size=1, max_size=1)
    try:
        store = PostgresKeyStore(pool, personal_master_key, timeout=2.0)
        await store.get_or_create(subject())
        await asyncio.to_thread(server.stop)
        with pytest.raises(KeysUnavailable, match="personal key store"):
            await store.get_or_create(subject())
    finally:
        pool.terminate()


async def test_many_subjects_get_the_keys_one_at_a_time_would_give(store):
    """A request's batch of registry records: keys got or made together, the same keys
    `get_or_create` gives before and after, one per subject however often it is named."""
    old, new = subject(), subject()
    existing = await store.get_or_create(old)
    cadre = Subject("cadre", new.subject_id)
    many = await store.get_or_create_many([old, new, new, cadre])
    assert set(many) == {old, new, cadre}
    assert many[old] == existing
    assert many[new] == await store.get_or_create(new) and many[cadre] != many[new]
    racing = [subject() for _ in range(20)]
    first, second = await asyncio.gather(
        store.get_or_create_many(racing), store.get_or_create_many(racing[::-1])
    )
    assert first == second  # concurrent creators agree, as for one subject
    assert await store.get_or_create_many([]) == {}
