"""BatchRecovery restores the monitoring tables exactly as faust's own recovery does.

The same changelog records (overwrites of a key, a tombstone, two tables, two partitions each)
go once through faust's stock `Recovery._slurp_changelogs` (one record at a time, through the
changelog queue) and once through `BatchRecovery.apply_changelog_events` (in batches of
uneven sizes, partitions interleaved), on the monitoring app's real tables, memory and RocksDB
stores. Every key's value, the tracked offsets and the end-of-recovery signal must come out the
same, and the tables must hold the last value written per key.
"""

from __future__ import annotations

import asyncio
import gc
import random
import uuid
from pathlib import Path

import faust
import pytest
from faust.tables.recovery import Recovery
from faust.types import TP, Message
from prometheus_client import CollectorRegistry

from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.entrypoints.app import build_app
from services.monitoring.metrics import MonitoringMetrics
from services.platform.kafka.faust import recovery as faust_recovery
from services.platform.kafka.faust import redelivery as faust_redelivery

PARTITIONS = 2


def monitoring_app(store: str, datadir: Path):
    app = build_app(
        app_id=f"recovery-test-{uuid.uuid4().hex[:6]}",
        bootstrap="127.0.0.1:9",
        codec=Codec.default(),
        policies=load_policies(),
        metrics=MonitoringMetrics(CollectorRegistry()),
        layout=TopicLayout(household_partitions=PARTITIONS),
        store=store,
        datadir=datadir,
    )
    app.finalize()
    app.flow_control.resume()
    return app


def changelog(seed: int) -> dict[tuple[str, int], list[tuple[bytes, bytes | None]]]:
    """(table, partition) -> the (key, value) records of its changelog, in offset order."""
    rng = random.Random(seed)
    logs = {}
    for table in ("monitoring-households", "monitoring-summaries"):
        for partition in range(PARTITIONS):
            keys = [f"DJ9{partition}{i:08d}".encode() for i in range(300)]
            records = [(k, rng.randbytes(rng.randint(1, 3000))) for k in keys]
            records += [(rng.choice(keys), rng.randbytes(50)) for _ in range(200)]  # overwrites
            records.append((keys[7], None))  # a tombstone: the key is gone
            logs[(table, partition)] = records
    return logs


def expected(logs) -> dict[str, dict[bytes, bytes]]:
    tables: dict[str, dict[bytes, bytes]] = {}
    for (table, _), records in logs.items():
        rows = tables.setdefault(table, {})
        for key, value in records:
            if value is None:
                rows.pop(key, None)
            else:
                rows[key] = value
    return tables


def events_of(app, logs) -> dict[TP, list]:
    """Each changelog partition's records as faust events, decoded by the table's topic."""

    async def decode():
        out = {}
        for (name, partition), records in logs.items():
            table = app.tables[name]
            topic = table.changelog_topic_name
            tp = TP(topic, partition)
            out[tp] = [
                await table.changelog_topic.decode(
                    Message(topic, partition, offset, 0.0, 0, [], key, value, None, tp=tp),
                    propagate=True,
                )
                for offset, (key, value) in enumerate(records)
            ]
        return out

    return asyncio.run(decode())


def start_recovery(app, recovery, events: dict[TP, list]) -> None:
    for tp, evs in events.items():
        recovery.add_active(recovery.tables._changelogs[tp.topic], tp)
        recovery.active_highwaters[tp] = evs[-1].message.offset
        # as faust's _build_offsets for an empty store: without it a partition not yet read
        # counts as nothing remaining, and a batch order that finishes one partition first
        # would end recovery early
        recovery.active_offsets[tp] = -1
    recovery._set_recovery_started()


def contents(app) -> dict[str, dict[bytes, bytes]]:
    """Every key of every table, all partitions (a RocksDB table lists only the partitions
    assigned to the worker, and this app has no assignment: its databases are read whole)."""
    out = {}
    for name, table in app.tables.items():
        store = table.data
        if hasattr(store, "_db_for_partition"):
            out[name] = {
                k: v
                for p in range(PARTITIONS)
                for k, v in store._visible_items(store._db_for_partition(p))
            }
        else:
            out[name] = dict(table.items())
    return out


def offsets(recovery) -> dict[tuple[str, int], int]:
    """The tracked offsets by (table, partition): the two apps' topic names differ."""
    return {
        (recovery.tp_to_table[tp].name, tp.partition): offset
        for tp, offset in recovery.active_offsets.items()
    }


async def stock_recovery(app, events: dict[TP, list]) -> Recovery:
    """faust's own loop, fed through the changelog queue one record at a time."""
    recovery = Recovery(app, app.tables)
    start_recovery(app, recovery, events)
    ended = asyncio.ensure_future(recovery.signal_recovery_end.wait())
    loop = asyncio.ensure_future(Recovery._slurp_changelogs.fun(recovery))
    try:
        iterators = [iter(evs) for evs in events.values()]
        for group in zip(*iterators, strict=True):  # partitions interleaved
            for event in group:
                await app.tables.changelog_queue.put(event)
        await asyncio.wait_for(ended, 30)
    finally:
        loop.cancel()
    return recovery


async def batch_recovery(app, events: dict[TP, list], seed: int):
    recovery = app.tables.recovery
    assert isinstance(recovery, faust_recovery.BatchRecovery)
    start_recovery(app, recovery, events)
    rng = random.Random(seed)
    pending = {tp: list(evs) for tp, evs in events.items()}
    while pending:
        tp = rng.choice(sorted(pending))
        size = rng.choice((1, 2, 17, 150, 999, 1001))
        batch, pending[tp] = pending[tp][:size], pending[tp][size:]
        if not pending[tp]:
            del pending[tp]
        assert not recovery.signal_recovery_end.is_set()
        await recovery.apply_changelog_events(tp, batch)
    assert recovery.signal_recovery_end.is_set()
    return recovery


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_batches_restore_what_faust_restores_record_by_record(store, tmp_path):
    logs = changelog(seed=8)
    stock_app = monitoring_app(store, tmp_path / "stock")
    batch_app = monitoring_app(store, tmp_path / "batch")
    stock = asyncio.run(stock_recovery(stock_app, events_of(stock_app, logs)))
    batch = asyncio.run(batch_recovery(batch_app, events_of(batch_app, logs), seed=8))

    want = expected(logs)
    assert contents(stock_app) == want  # the reference itself restores what was written
    assert contents(batch_app) == want
    assert offsets(batch) == offsets(stock) == {t: len(records) - 1 for t, records in logs.items()}
    assert not batch.in_recovery and not batch.app.in_recovery
    assert not batch.buffers or all(not b for b in batch.buffers.values())


def test_records_at_or_below_the_tracked_offset_are_not_applied_again(tmp_path):
    app = monitoring_app("memory://", tmp_path)
    logs = changelog(seed=3)
    events = events_of(app, logs)
    recovery = app.tables.recovery
    start_recovery(app, recovery, events)
    tp = next(iter(events))
    first = events[tp][:100]
    asyncio.run(recovery.apply_changelog_events(tp, first))
    # a fetch from an earlier offset (a seek back) hands the same records again, changed
    # same offsets, other values: must be ignored
    stale = [type(e)(app, e.key, b"stale", {}, e.message) for e in events[tp][50:100]]
    asyncio.run(recovery.apply_changelog_events(tp, stale))
    recovery.flush_buffers()
    table = recovery.tables._changelogs[tp.topic]
    assert b"stale" not in set(contents(app)[table.name].values())
    assert recovery.active_offsets[tp] == 99


def test_records_of_an_unassigned_partition_are_skipped(tmp_path):
    app = monitoring_app("memory://", tmp_path)
    events = events_of(app, changelog(seed=4))
    recovery = app.tables.recovery
    tps = list(events)
    start_recovery(app, recovery, {tps[0]: events[tps[0]]})
    asyncio.run(recovery.apply_changelog_events(tps[1], events[tps[1]]))
    recovery.flush_buffers()
    assert all(not rows for rows in contents(app).values())


def test_install_refuses_an_app_whose_tables_exist(tmp_path):
    app = monitoring_app("memory://", tmp_path)
    with pytest.raises(RuntimeError):
        faust_recovery.install(app)


def test_the_gc_threshold_is_raised_while_recovering_only(tmp_path):
    app = monitoring_app("memory://", tmp_path)
    events = events_of(app, changelog(seed=5))
    recovery = app.tables.recovery
    before = gc.get_threshold()
    start_recovery(app, recovery, events)
    recovery._set_recovery_started()  # faust calls it twice per recovery
    assert gc.get_threshold()[0] >= faust_recovery.RECOVERY_GC_THRESHOLD
    assert gc.get_threshold()[1:] == before[1:]

    async def recover():
        for tp, evs in events.items():
            await recovery.apply_changelog_events(tp, evs)

    asyncio.run(recover())
    assert recovery.signal_recovery_end.is_set() and gc.get_threshold() == before


def test_raw_changelog_events_are_the_events_faust_decodes(tmp_path):
    """The consumer builds the tables' changelog events directly (raw bytes both ways): the
    same class, key, value, headers and message as the channel's decode."""
    app = monitoring_app("memory://", tmp_path)
    queue = app.tables.changelog_queue
    rng = random.Random(6)
    for table in app.tables.values():
        channel = table.changelog_topic.clone_using_queue(queue)
        event_class = faust_redelivery.raw_event_class(app, channel)
        assert event_class is not None
        topic = table.changelog_topic_name
        tp = TP(topic, 1)
        cases = [(rng.randbytes(12), rng.randbytes(n)) for n in (0, 1, 5000)]
        cases += [(b"DJ9000000001", None), (None, b"x")]
        for offset, (key, value) in enumerate(cases):
            headers = [("h", b"1")] if offset % 2 else []
            message = Message(topic, 1, offset, 0.0, 0, headers, key, value, None, tp=tp)
            decoded = asyncio.run(channel.decode(message, propagate=True))
            built = event_class(app, message.key, message.value, message.headers, message)
            assert type(built) is type(decoded)
            assert (built.key, built.value, built.headers) == (
                decoded.key,
                decoded.value,
                decoded.headers,
            )
            assert built.message is decoded.message is message


def test_other_schemas_keep_faust_decode():
    app = faust.App("raw-event-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    json_values = app.topic("t", key_type=bytes, value_type=bytes, value_serializer="json")
    typed = app.topic("t", key_type=str, value_type=bytes, key_serializer="raw")
    assert faust_redelivery.raw_event_class(app, json_values) is None
    assert faust_redelivery.raw_event_class(app, typed) is None


def test_a_new_recovery_waits_for_its_own_end(tmp_path):
    # The direct path sets the end signal from the fetcher; faust's loop, waiting on its queue,
    # would clear it only seconds later. A rebalance in between must not find it set.
    app = monitoring_app("memory://", tmp_path)
    events = events_of(app, changelog(seed=6))
    recovery = asyncio.run(batch_recovery(app, events, seed=6))
    assert recovery.signal_recovery_end.is_set()

    for tp, evs in events.items():  # the next generation's changelogs have grown
        recovery.active_highwaters[tp] = evs[-1].message.offset + 10
    recovery._set_recovery_started()
    assert recovery.need_recovery()
    assert not recovery.signal_recovery_end.is_set()


def test_a_record_that_fails_to_apply_does_not_lose_the_rest(tmp_path, monkeypatch):
    # faust's loop logs a record's failure and applies the next; a batch must not drop the
    # rest of its records (their offsets would be passed) nor leave recovery unfinished.
    app = monitoring_app("memory://", tmp_path)
    logs = changelog(seed=9)
    events = events_of(app, logs)
    recovery = app.tables.recovery
    tp = next(iter(events))
    table = recovery.tables._changelogs[tp.topic]
    original = table.on_changelog_event
    failed = []

    async def fails_once(event):
        if event.message.offset == 10 and not failed:
            failed.append(event.message.offset)
            raise OSError("disk full")
        await original(event)

    monkeypatch.setattr(table, "on_changelog_event", fails_once)
    asyncio.run(batch_recovery(app, events, seed=9))
    assert failed == [10]
    assert contents(app) == expected(logs)
    assert not recovery.in_recovery


class StandInConsumer:
    """What `refetch_stalled` asks of the consumer: the assignment, a resume and a seek."""

    def __init__(self, assigned):
        self.assigned = set(assigned)
        self.resumed: set = set()
        self.sought: dict = {}

    def assignment(self):
        return self.assigned

    def resume_partitions(self, tps):
        self.resumed |= set(tps)

    async def seek_wait(self, partitions):
        self.sought.update(partitions)


def test_a_partition_recovery_waits_for_in_vain_is_fetched_again(tmp_path, monkeypatch):
    app = monitoring_app("memory://", tmp_path)
    events = events_of(app, changelog(seed=4))
    recovery = app.tables.recovery
    start_recovery(app, recovery, events)
    fed, starved = list(events)[:2]
    consumer = StandInConsumer(events)
    monkeypatch.setattr(type(app), "consumer", property(lambda self: consumer))
    asyncio.run(recovery.apply_changelog_events(fed, events[fed][:3]))
    started = recovery._recovery_started_at
    soon = started + faust_recovery.STALL_SECONDS / 2
    assert asyncio.run(recovery.refetch_stalled(now=soon)) == {}  # not for long yet
    later = started + faust_recovery.STALL_SECONDS + 1
    sought = asyncio.run(recovery.refetch_stalled(now=later))
    # every partition with records left that has given none for STALL_SECONDS, from its
    # tracked offset: -1 → 0 as faust's own seek for those never read; the fed one stopped
    # after its third record (offset 2) and is fetched again from there
    assert sought[starved] == 0 and sought[fed] == 2
    assert set(sought) == set(events)
    assert consumer.resumed == set(sought) and consumer.sought == sought
    # once per STALL_SECONDS, not on every check
    assert asyncio.run(recovery.refetch_stalled(now=later + 1)) == {}
    # the records come, and recovery ends as it would have
    for tp, evs in events.items():
        asyncio.run(recovery.apply_changelog_events(tp, evs))
    assert recovery.signal_recovery_end.is_set()
    assert contents(app) == expected(changelog(seed=4))


def test_a_partition_no_longer_assigned_is_not_waited_for(tmp_path, monkeypatch):
    app = monitoring_app("memory://", tmp_path)
    events = events_of(app, changelog(seed=5))
    recovery = app.tables.recovery
    start_recovery(app, recovery, events)
    gone, *kept = list(events)
    consumer = StandInConsumer(kept)
    monkeypatch.setattr(type(app), "consumer", property(lambda self: consumer))
    for tp in kept:
        asyncio.run(recovery.apply_changelog_events(tp, events[tp]))
    assert not recovery.signal_recovery_end.is_set()  # still waiting for `gone`
    asyncio.run(recovery.refetch_stalled())
    assert gone not in recovery.active_highwaters and not consumer.sought
    assert recovery.signal_recovery_end.is_set()
