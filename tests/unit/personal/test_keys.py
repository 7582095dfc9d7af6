"""The master key from the environment, the key cache, the sealer and the `show` listing."""

from __future__ import annotations

import base64
import datetime as dt
import os

import pytest

from services.contract.personal import Subject
from services.personal.subject_data import check_access_arguments
from services.platform.config import SettingsError
from services.platform.personal.keys import (
    MASTER_KEY_ENV,
    MASTER_KEY_FILE_ENV,
    CachedKeys,
    InMemoryKeyStore,
    KeysUnavailable,
    ensure_master_key_file,
    load_master_key,
)
from services.platform.personal.opening import Entry, entries_of
from services.platform.personal.sealer import PersonalSealer

HOUSEHOLDS = "shouwang.events.HouseholdRegistryRecorded"
CADRES = "shouwang.events.CadreRegistryRecorded"
PERSONAL = {"head_name": "王五", "citizen_id": "500228196001010022", "phone": None}


def test_the_master_key_comes_from_the_variable_or_its_file(tmp_path):
    raw = os.urandom(32)
    assert load_master_key({MASTER_KEY_ENV: base64.b64encode(raw).decode()}) == raw
    assert load_master_key({MASTER_KEY_ENV: raw.hex()}) == raw
    path = ensure_master_key_file(tmp_path / "keys" / "master.key")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    first = load_master_key({MASTER_KEY_FILE_ENV: str(path)})
    assert len(first) == 32
    ensure_master_key_file(path)  # an existing key is never replaced
    assert load_master_key({MASTER_KEY_FILE_ENV: str(path)}) == first


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({}, "no personal-data master key: set SHOUWANG_PERSONAL_MASTER_KEY"),
        ({MASTER_KEY_ENV: "c2hvcnQ="}, "must be 32 random bytes"),
        ({MASTER_KEY_ENV: "not base64 at all!"}, "must be 32 random bytes"),
        ({MASTER_KEY_FILE_ENV: "/nonexistent/master.key"}, "cannot read /nonexistent"),
        ({MASTER_KEY_ENV: "x", MASTER_KEY_FILE_ENV: "y"}, "not both"),
    ],
)
def test_a_missing_or_malformed_master_key_fails_fast_without_echoing_it(environ, problem):
    with pytest.raises(SettingsError, match=problem) as caught:
        load_master_key(environ)
    assert "not base64 at all" not in str(caught.value)


async def test_the_cache_serves_known_subjects_while_the_store_is_down_and_stays_bounded():
    store, clock = InMemoryKeyStore(), [0.0]
    keys = CachedKeys(store, ttl=60, max_entries=2, monotonic=lambda: clock[0])
    a, b, c = (Subject("household", h) for h in ("H-a", "H-b", "H-c"))
    key_a = await keys.key_for(a)
    await keys.key_for(b)
    store.failing = True
    assert await keys.key_for(a) == key_a  # cached: the outage is invisible
    with pytest.raises(KeysUnavailable):
        await keys.key_for(c)  # never seen: refused, nothing sealed
    store.failing = False
    await keys.key_for(c)
    assert len(keys) == 2  # b, least recently used, was dropped
    clock[0] = 61.0
    store.failing = True
    with pytest.raises(KeysUnavailable):
        await keys.key_for(a)  # expired: asks the store again


async def test_warming_caches_like_key_for_and_keeps_the_subjects_used_last():
    store = InMemoryKeyStore()
    keys = CachedKeys(store, ttl=60, max_entries=3, monotonic=lambda: 0.0)
    a, b, c, d = (Subject("household", h) for h in ("H-a", "H-b", "H-c", "H-d"))
    key_a = await keys.key_for(a)
    await keys.warm([b, c, d, b])
    assert len(keys) == 3 and store.created == 4  # a, least recently used, was dropped
    store.failing = True
    assert [await keys.key_for(s) for s in (b, c, d)] == [store.keys[s][0] for s in (b, c, d)]
    with pytest.raises(KeysUnavailable):
        await keys.key_for(a)
    store.failing = False
    assert await keys.key_for(a) == key_a  # the store's key, not a new one


async def test_the_sealer_seals_registry_records_and_passes_others_through():
    store = InMemoryKeyStore()
    sealer = PersonalSealer(CachedKeys(store))
    record = {"event_id": "e-1", "household_id": "H-1", "personal": dict(PERSONAL)}
    sealed = await sealer.seal(HOUSEHOLDS, record)
    assert sealed["personal"] is None and sealed["personal_sealed"]["ciphertext"]
    assert record["personal"] == PERSONAL  # the caller's record is not changed
    cadre = await sealer.seal(CADRES, {"event_id": "e-2", "cadre_id": "C-1", "personal": None})
    assert cadre["personal_sealed"] is None and store.created == 1  # no key for nothing
    visit = {"event_id": "e-3", "household_id": "H-1"}
    assert await sealer.seal("shouwang.events.VisitRecorded", visit) is visit
    assert sealer.seals(CADRES) and not sealer.seals("shouwang.events.VisitRecorded")


async def test_show_lists_opened_erased_plaintext_and_unknown_keys():
    store = InMemoryKeyStore(clock=lambda: dt.datetime(2026, 11, 29, tzinfo=dt.UTC))
    sealer = PersonalSealer(CachedKeys(store))
    at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)

    def record(event_id: str, days: int, personal=PERSONAL) -> dict:
        return {
            "event_id": event_id,
            "household_id": "H-1",
            "occurred_at": at + dt.timedelta(days=days),
            "personal": personal,
            "personal_sealed": None,
        }

    old = record("e-old", 0)  # written before sealing
    sealed = await sealer.seal(HOUSEHOLDS, record("e-sealed", 1))
    empty = record("e-none", 2, None)
    stranger = await PersonalSealer(CachedKeys(InMemoryKeyStore())).seal(
        HOUSEHOLDS, record("e-stranger", 3)
    )
    entries = await entries_of(HOUSEHOLDS, [stranger, empty, sealed, old], store)
    assert [e.status for e in entries] == ["plaintext", "sealed", "none", "unknown-key"]
    assert entries[1].personal == PERSONAL

    await store.shred(Subject("household", "H-1"), "op-7", "erasure request 42")
    entries = await entries_of(HOUSEHOLDS, [sealed], store)
    assert [e.status for e in entries] == ["erased"]
    assert "erased on 2026-11-29 by op-7" in entries[0].line()
    assert entries[0].as_json()["erased"]["by"] == "op-7"
    assert PERSONAL["citizen_id"] not in entries[0].line()

    tampered = {**sealed, "personal_sealed": {**sealed["personal_sealed"], "key_id": "x"}}
    store2 = InMemoryKeyStore()
    [unreadable] = await entries_of(HOUSEHOLDS, [tampered], store2)
    assert unreadable.status == "unknown-key"


async def test_show_says_which_event_does_not_authenticate():
    store = InMemoryKeyStore()
    sealer = PersonalSealer(CachedKeys(store))
    at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    sealed = await sealer.seal(
        HOUSEHOLDS,
        {"event_id": "e-1", "household_id": "H-1", "occurred_at": at, "personal": PERSONAL},
    )
    moved = {**sealed, "event_id": "e-2"}  # a blob copied into another event
    [entry] = await entries_of(HOUSEHOLDS, [moved], store)
    assert entry.status == "unreadable" and "e-2" in entry.line()
    assert PERSONAL["head_name"] not in entry.line()
    assert isinstance(entry, Entry)


@pytest.mark.parametrize(
    ("actor", "reason", "problem"),
    [
        ("", "why", "--actor: must name who"),
        ("x" * 129, "why", "--actor: at most 128"),
        ("op li", "why", "--actor: no spaces"),
        ("op", " ", "--reason: required"),
        ("op", "x" * 1001, "--reason: at most 1000"),
        ("op", "why\x1b[2J", "--reason: no control"),
    ],
)
def test_show_and_forget_need_a_recordable_actor_and_a_reason(actor, reason, problem):
    with pytest.raises(SettingsError, match=problem):
        check_access_arguments(actor, reason)


def test_the_actor_defaults_to_the_operator_running_the_command(monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "li")
    assert check_access_arguments(None, " appeal 7 ") == ("operator:li", "appeal 7")


async def test_a_deletion_that_cannot_be_recorded_keeps_the_key():
    store = InMemoryKeyStore()
    subject = Subject("household", "H-9")
    key = await store.get_or_create(subject)
    recorded: list[str] = []

    async def refused(key_id: str) -> None:
        recorded.append(key_id)
        raise RuntimeError("broker down")

    with pytest.raises(RuntimeError, match="broker down"):
        await store.shred(subject, "op", "why", before_delete=refused)
    assert recorded == [key.key_id] and await store.find(key.key_id) == key

    async def accepted(key_id: str) -> None:
        recorded.append(key_id)

    [shredded] = await store.shred(subject, "op", "why", before_delete=accepted)
    assert shredded.key_id == key.key_id and recorded == [key.key_id] * 2
    assert await store.shred(subject, "op", "again", before_delete=accepted) == [shredded]
    assert len(recorded) == 2, "nothing left to delete: nothing to record"


def test_the_direct_kafka_sink_cannot_be_built_without_a_way_to_seal():
    from services.contract.topics import TopicLayout
    from services.tools.simulation.sinks.base import SinkError
    from services.tools.simulation.sinks.kafka import KafkaSink

    with pytest.raises(SinkError, match="seals personal data: give it a sealer"):
        KafkaSink("127.0.0.1:9", TopicLayout())
