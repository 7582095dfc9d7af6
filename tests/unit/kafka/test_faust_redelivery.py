"""The redelivering consumer: nothing fetched is silently dropped.

faust's fetch loop (`_drain_messages`) delivers a record when its read offset for the
partition is None or not above the record's offset; these tests apply that same rule to what
`RedeliveringConsumer.getmany` yields, over a stand-in for the fetch (`_wait_next_records`),
so they fail if a stale read offset is kept or a paused partition's records are skipped
without a seek back. The fault harness (`tests/integration/faults`) covers the real worker.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

import faust
from aiokafka import TopicPartition
from intervaltree import IntervalTree

from services.platform.kafka.faust import redelivery as faust_redelivery
from services.platform.kafka.faust.redelivery import RedeliveringConsumer

REGISTRY = TopicPartition("household.registry", 3)
VISITS = TopicPartition("household.visits", 0)


class Consumer(RedeliveringConsumer):
    should_stop = False  # a plain attribute: no faust Service behind this stand-in


def consumer_over(batch: dict, active: set, read: dict | None = None) -> Consumer:
    consumer = object.__new__(Consumer)
    consumer._read_offset = defaultdict(lambda: None, read or {})
    consumer._buffered_partitions = set()
    consumer.flow_active = True
    consumer.redelivered = consumer.refetched = 0
    consumer.app = SimpleNamespace(
        consumer_generation_id=1,
        monitor=SimpleNamespace(track_tp_end_offset=lambda tp, offset: None),
        tables=SimpleNamespace(recovery=None),  # faust's recovery: no changelog batches
        topics=SimpleNamespace(_tp_index={}),  # no batch-taking stream unless a test adds one
    )
    consumer.scheduler = SimpleNamespace(
        iterate=lambda records: ((tp, r) for tp, rs in records.items() for r in rs)
    )
    consumer.highwater = lambda tp: 0
    consumer._to_message = lambda tp, record: record
    consumer.sought = []

    async def wait_next_records(timeout):  # noqa: ASYNC109
        return {
            tp: [SimpleNamespace(offset=o) for o in offsets] for tp, offsets in batch.items()
        }, active

    async def seek(tp, offset):
        consumer.sought.append((tp, offset))
        consumer._read_offset[tp] = offset or None

    consumer._wait_next_records = wait_next_records
    consumer.seek = seek
    return consumer


def drain(consumer) -> dict:
    """faust's delivery rule over one fetched batch: what reaches the streams, by partition."""

    async def run():
        delivered = defaultdict(list)
        async for tp, message in consumer.getmany(timeout=1.0):
            read = consumer._read_offset[tp]
            if read is None or message.offset >= read:
                delivered[tp].append(message.offset)
                consumer._read_offset[tp] = message.offset
        return dict(delivered)

    return asyncio.run(run())


def test_records_fetched_again_after_a_seek_back_are_delivered():
    # faust had read up to 72; the seek to the committed offset 47 fetches 47.. again
    consumer = consumer_over({REGISTRY: range(47, 80)}, {REGISTRY}, read={REGISTRY: 72})
    assert drain(consumer) == {REGISTRY: list(range(47, 80))}
    assert consumer.redelivered == 1  # cleared once, then the offsets follow in order


def test_records_in_order_pass_untouched():
    consumer = consumer_over({VISITS: range(10, 20)}, {VISITS}, read={VISITS: 9})
    assert drain(consumer) == {VISITS: list(range(10, 20))}
    assert consumer.redelivered == 0 and consumer.sought == []


def test_records_of_a_paused_partition_are_fetched_again_not_skipped():
    consumer = consumer_over({REGISTRY: range(5, 9), VISITS: range(0, 3)}, {VISITS})
    assert drain(consumer) == {VISITS: [0, 1, 2]}
    assert consumer.sought == [(REGISTRY, 5)]  # the first record not handed out
    # resumed: the fetch from 5 is delivered (the seek set the read offset to it)
    again = consumer_over({REGISTRY: range(5, 9)}, {REGISTRY}, read=dict(consumer._read_offset))
    assert drain(again) == {REGISTRY: [5, 6, 7, 8]}


def test_a_rebalance_mid_batch_stops_handing_out():
    consumer = consumer_over({VISITS: range(0, 5)}, {VISITS})

    async def run():
        out = []
        async for _, message in consumer.getmany(timeout=1.0):
            out.append(message.offset)
            consumer.app.consumer_generation_id = 2  # a rebalance began after the first
        return out

    assert asyncio.run(run()) == [0]  # recovery seeks to the committed offsets afterwards


def test_install_gives_the_app_the_redelivering_consumer():
    app = faust.App("redelivery-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    faust_redelivery.install(app)
    assert isinstance(app.transport, faust_redelivery.RedeliveringTransport)
    assert app.transport.Consumer is RedeliveringConsumer


def watched(committed=40, read=45, acked=(41, 42), busy=False, queued=0, end=60, **app):
    consumer = consumer_over({}, set())
    consumer.highwater = lambda tp: end
    consumer.assignment = lambda: {VISITS}
    consumer._committed_offset = defaultdict(lambda: None, {VISITS: committed})
    consumer._read_offset = defaultdict(lambda: None, {VISITS: read})
    consumer._acked_index = defaultdict(set, {VISITS: set(acked)})
    consumer._gap = defaultdict(lambda: None)
    consumer._paused_partitions = set()
    consumer._unacked_messages = [SimpleNamespace(tp=VISITS)] if busy else []
    consumer._is_changelog_tp = lambda tp: False
    channel = SimpleNamespace(queue=SimpleNamespace(qsize=lambda: queued))
    consumer.app.topics = SimpleNamespace(_tp_index={VISITS: [channel]})
    consumer.app.in_recovery = app.get("in_recovery", False)
    consumer.app.rebalancing = False
    consumer._suspects = None
    return consumer


def test_an_offset_handed_out_and_vanished_is_lost():
    assert watched().lost_partitions() == {VISITS: 40}
    # sought to the commit, the log has more, yet nothing comes: fetched again too
    assert watched(read=40, acked=(), end=45).lost_partitions() == {VISITS: 40}


def test_an_offset_still_on_its_way_or_done_is_not_lost():
    assert watched(acked=(40, 41)).lost_partitions() == {}  # the next commit passes it
    assert watched(busy=True).lost_partitions() == {}  # a stream is processing it
    assert watched(queued=3).lost_partitions() == {}  # waiting in a stream's queue
    assert watched(read=39).lost_partitions() == {}  # not handed out yet
    # just sought to the commit at the end of the log: nothing to read, nothing lost
    assert watched(read=40, acked=(), end=40).lost_partitions() == {}
    assert watched(in_recovery=True).lost_partitions() == {}


def test_a_lost_partition_is_fetched_again_on_the_second_sighting_only():
    consumer = watched()
    asyncio.run(consumer.fetch_lost_again())
    assert consumer.sought == []  # a moment's state, perhaps
    asyncio.run(consumer.fetch_lost_again())
    assert consumer.sought == [(VISITS, 40)] and consumer.recovered == 1


def test_a_hole_in_the_handed_out_offsets_is_not_counted_as_read():
    # faust would count 41..43 as acked ("gap") when 44 follows 40; they were lost in flight
    consumer = consumer_over({VISITS: [44, 45]}, {VISITS}, read={VISITS: 40})
    assert drain(consumer) == {VISITS: [44, 45]}
    assert consumer.holes == 1
    # the commit stays at 41; the check sees it lost and fetches again from it
    lost = watched(committed=41, read=45, acked=(44, 45))
    assert lost.lost_partitions() == {VISITS: 41}


def test_a_real_hole_is_accepted_after_three_fetches():
    consumer = watched(committed=41, read=45, acked=(44, 45))
    gaps = []

    async def add_gap(tp, start, end):
        gaps.append((tp, start, end))

    consumer._add_gap = add_gap
    for _ in range(8):  # a sighting, then a fetch per check, the hole never filling
        asyncio.run(consumer.fetch_lost_again())
    assert len(consumer.sought) == 3
    assert VISITS in consumer.gaps_accepted and gaps == [(VISITS, 41, 43)]


def committing(committed, acked, gap=()) -> Consumer:
    """A stand-in with faust's commit bookkeeping for VISITS: its stored committed offset (the
    next offset to read, as faust's `_commit_offsets` stores it), acked offsets, gap intervals."""
    consumer = watched(committed=committed, acked=acked)
    consumer._acked = defaultdict(list, {VISITS: list(acked)})
    consumer._gap = defaultdict(IntervalTree)
    for start, end in gap:
        consumer._gap[VISITS].addi(start, end)
    return consumer


def test_the_commit_never_passes_a_record_missing_at_its_head():
    # 40 was lost in flight; 41 and 42 were processed. faust's own rule commits 43 (it lets the
    # first acked offset be one past the committed one): 40 would never be processed.
    faust_rule = faust_redelivery.faust_aiokafka.Consumer._new_offset
    assert faust_rule(committing(40, (41, 42)), VISITS) == 43
    assert committing(40, (41, 42))._new_offset(VISITS) is None
    assert committing(40, (40, 41, 42))._new_offset(VISITS) == 43  # once 40 is done
    assert committing(40, (38, 39, 41))._new_offset(VISITS) == 40  # redelivered below: no move
    assert committing(None, (5, 6))._new_offset(VISITS) == 7  # nothing known to wait for


def test_a_hole_taken_as_a_gap_lets_the_commit_pass():
    assert committing(40, (43, 44), gap=[(40, 43)])._new_offset(VISITS) == 45
    accepted = committing(40, (41, 42))
    accepted.gaps_accepted = {VISITS}  # after MAX_REFETCHES: faust's rule again
    assert accepted._new_offset(VISITS) == 43


def test_a_never_committed_partition_starts_its_commits_at_its_first_offset(monkeypatch):
    """faust keeps no committed offset for a partition the group never committed; after the
    seek to its first offset (here 0, which faust would also drop) that offset is recorded, so
    the head rule above and the lost-record check hold for it too."""
    consumer = watched(committed=None, read=None, acked=())
    consumer.app.conf = SimpleNamespace(consumer_auto_offset_reset="earliest")
    consumer.app.topics.acks_enabled_for = lambda topic: True
    consumer.restarted = 0
    sought = []

    async def aiokafka_seek_to_committed(self):
        return {VISITS: None}

    async def earliest_offsets(*tps):
        return dict.fromkeys(tps, 0)

    async def raw_seek(tp, offset):
        sought.append((tp, offset))

    monkeypatch.setattr(
        faust_redelivery.faust_aiokafka.Consumer, "seek_to_committed", aiokafka_seek_to_committed
    )
    consumer.earliest_offsets = earliest_offsets
    consumer._seek = raw_seek
    asyncio.run(consumer.perform_seek())
    assert sought == [(VISITS, 0)]
    assert consumer._committed_offset[VISITS] == 0
    # 0 lost, 1 processed: no commit, and the check fetches 0 again
    consumer._acked = defaultdict(list, {VISITS: [1]})
    consumer._acked_index = defaultdict(set, {VISITS: {1}})
    consumer._read_offset[VISITS] = 1
    assert consumer._new_offset(VISITS) is None
    assert consumer.lost_partitions() == {VISITS: 0}


def test_flush_empties_the_table_write_buffer_before_offsets_are_committed(monkeypatch):
    class SlowBuffer:
        """faust's buffer flush: gives up after a quiet moment, one message sent per call."""

        def __init__(self, n):
            self.size = n

        async def flush(self):
            self.size = max(0, self.size - 1)

    flushed = []

    async def parent_flush(self):
        flushed.append(self.buffer.size)

    monkeypatch.setattr(faust_redelivery.faust_aiokafka.Producer, "flush", parent_flush)
    producer = object.__new__(faust_redelivery.DrainingProducer)
    producer.buffer = SlowBuffer(5)
    asyncio.run(producer.flush())
    assert flushed == [0]  # the broker-level flush only once nothing waits in the buffer


CHANGELOG = TopicPartition("app-monitoring-households-changelog", 1)


def with_batched_recovery(consumer: Consumer, subscribers: int = 1) -> list:
    """The stand-in's app given a batch-taking recovery (faust_recovery.BatchRecovery's
    interface) and the changelog channel as the changelog partition's subscriber."""
    handed: list = []
    queue = object()  # the table manager's changelog queue

    class Recovery:
        async def apply_changelog_events(self, tp, events):
            handed.append((tp, [(e.offset, e.decoded) for e in events]))

    class Channel:
        schema = None  # not raw bytes: decoded by the channel, as faust does

        def __init__(self, q):
            self.queue = q

        async def decode(self, message, *, propagate=False):
            assert propagate  # as the conductor: a decode error reaches the channel
            return SimpleNamespace(offset=message.offset, decoded=True)

    async def nothing():
        return None

    consumer.app.tables = SimpleNamespace(
        recovery=Recovery(), changelog_queue=queue, changelog_topics={CHANGELOG.topic}
    )
    channels = {Channel(queue)} | {Channel(object()) for _ in range(subscribers - 1)}
    consumer.app.topics = SimpleNamespace(_tp_index={CHANGELOG: channels})
    consumer.app.flow_control = SimpleNamespace(acquire=nothing)
    consumer.app.producer = SimpleNamespace(buffer=SimpleNamespace(wait_until_ebb=nothing))
    consumer._is_changelog_tp = lambda tp: tp.topic in consumer.app.tables.changelog_topics
    consumer._to_message = lambda tp, record: SimpleNamespace(
        offset=record.offset, incref=lambda n=1: None
    )
    return handed


def test_changelog_records_go_to_a_batch_recovery_in_order_in_chunks():
    chunk = faust_redelivery.CHANGELOG_CHUNK
    end = 3 + 2 * chunk + 5
    consumer = consumer_over({CHANGELOG: range(3, end), VISITS: range(0, 2)}, {CHANGELOG, VISITS})
    handed = with_batched_recovery(consumer)
    assert drain(consumer) == {VISITS: [0, 1]}  # the inputs go faust's way, as before
    assert [len(events) for _, events in handed] == [chunk, chunk, 5]
    assert [o for tp, events in handed for o, decoded in events if tp == CHANGELOG and decoded] == (
        list(range(3, end))
    )
    assert consumer._read_offset[CHANGELOG] == end - 1  # as faust's fetch loop leaves it


def test_changelog_records_of_a_paused_partition_are_fetched_again_not_handed():
    consumer = consumer_over({CHANGELOG: range(3, 9)}, {VISITS})
    handed = with_batched_recovery(consumer)
    assert drain(consumer) == {}
    assert handed == [] and consumer.sought == [(CHANGELOG, 3)]


def test_a_changelog_with_another_subscriber_keeps_faust_path():
    consumer = consumer_over({CHANGELOG: range(3, 6)}, {CHANGELOG})
    handed = with_batched_recovery(consumer, subscribers=2)
    assert drain(consumer) == {CHANGELOG: [3, 4, 5]} and handed == []


def test_a_rebalance_before_the_hand_off_hands_out_nothing():
    consumer = consumer_over({CHANGELOG: range(3, 6), VISITS: range(0, 2)}, {CHANGELOG, VISITS})
    handed = with_batched_recovery(consumer)

    async def rebalancing():
        consumer.app.consumer_generation_id = 2  # a rebalance began while waiting

    consumer.app.flow_control = SimpleNamespace(acquire=rebalancing)
    assert drain(consumer) == {} and handed == []


def test_the_records_left_to_hand_out_are_counted_down_to_zero():
    # a batch-taking agent waits for these rather than taking each record as it trickles in
    consumer = consumer_over({VISITS: range(0, 3), REGISTRY: range(7, 9)}, {VISITS, REGISTRY})

    async def run():
        left = []
        async for _ in consumer.getmany(timeout=1.0):
            left.append(consumer.handing_out)
        return left

    assert asyncio.run(run()) == [4, 3, 2, 1, 0]
    assert consumer.handing_out == 0


def test_a_fetch_left_unfinished_leaves_nothing_to_wait_for():
    consumer = consumer_over({VISITS: range(0, 5)}, {VISITS})

    async def run():
        fetch = consumer.getmany(timeout=1.0)
        await fetch.__anext__()
        assert consumer.handing_out == 4
        await fetch.aclose()  # the fetch loop stopped (a stop, a crash)

    asyncio.run(run())
    assert consumer.handing_out == 0


def with_batch_stream(consumer: Consumer, limit: int = 4, subscribers: int = 1) -> asyncio.Queue:
    """The stand-in's app given a batch-taking stream (`take_batches` on its queue) as the one
    subscriber of VISITS; the queue the consumer hands `FetchedBatch` items to."""
    queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
    faust_redelivery.take_batches(queue, limit)
    channel = SimpleNamespace(queue=queue)
    others = [SimpleNamespace(queue=asyncio.Queue()) for _ in range(subscribers - 1)]
    consumer.app.topics = SimpleNamespace(_tp_index={VISITS: [channel, *others]})

    async def nothing():
        return None

    consumer.app.flow_control = SimpleNamespace(acquire=nothing)
    consumer.app.producer = SimpleNamespace(buffer=SimpleNamespace(wait_until_ebb=nothing))
    consumer._commit_every = None
    consumer.holes = 0
    consumer._to_message = lambda tp, record: SimpleNamespace(
        offset=record.offset, key=b"k", value=b"v", headers=[], incref=lambda n=1: None
    )
    return queue


def raw_events(monkeypatch) -> None:
    """Raw-bytes events, as `raw_event_class` gives for the monitoring inputs."""

    def event(app, key, value, headers, message):
        return SimpleNamespace(key=key, value=value, message=message)

    monkeypatch.setattr(faust_redelivery, "raw_event_class", lambda app, channel: event)


def handed_batches(queue: asyncio.Queue) -> list[list[int]]:
    items = []
    while not queue.empty():
        item = queue.get_nowait()
        assert type(item) is faust_redelivery.FetchedBatch and item.generation_id == 1
        items.append([event.message.offset for event in item.events])
    return items


def test_a_batch_taking_stream_gets_each_fetched_partition_as_batches_in_order(monkeypatch):
    raw_events(monkeypatch)
    consumer = consumer_over({VISITS: range(5, 11), REGISTRY: range(0, 2)}, {VISITS, REGISTRY})
    queue = with_batch_stream(consumer, limit=4)

    async def run():  # the stream takes each batch as it comes (the feed's limit: 4 records)
        taken = []

        async def stream():
            while len(taken) < 2:
                taken.append(await queue.get())

        reader = asyncio.create_task(stream())
        delivered = drain_async(consumer)
        result = await delivered
        await reader
        return result, [[e.message.offset for e in batch.events] for batch in taken]

    delivered, taken = asyncio.run(run())
    assert delivered == {REGISTRY: [0, 1]}  # another subscriber's partition: faust's way
    assert taken == [[5, 6, 7, 8], [9, 10]]
    assert consumer._read_offset[VISITS] == 10  # as faust's fetch loop leaves it


def test_co_partitioned_inputs_are_handed_out_partition_by_partition(monkeypatch):
    # aiokafka returns a fetch topic by topic; a household's records of every topic share a
    # partition number, so those are handed out together (one agent batch, one assessment)
    raw_events(monkeypatch)
    fetched = [TopicPartition(topic, p) for topic in ("household.visits", "household.registry")
               for p in (1, 0)]  # fmt: skip
    consumer = consumer_over({tp: range(0, 2) for tp in fetched}, set(fetched))
    queue = with_batch_stream(consumer, limit=100)
    channel = consumer.app.topics._tp_index[VISITS][0]
    consumer.app.topics = SimpleNamespace(_tp_index={tp: [channel] for tp in fetched})
    consumer._to_message = lambda tp, record: SimpleNamespace(
        tp=tp, offset=record.offset, key=b"k", value=b"v", headers=[], incref=lambda n=1: None
    )
    assert drain(consumer) == {}
    handed = []
    while not queue.empty():
        handed.append(
            {(e.message.tp.topic, e.message.tp.partition) for e in queue.get_nowait().events}
        )
    assert handed == [
        {("household.registry", 0)},
        {("household.visits", 0)},
        {("household.registry", 1)},
        {("household.visits", 1)},
    ]


def test_a_full_stream_queue_holds_the_fetch_until_the_stream_takes(monkeypatch):
    raw_events(monkeypatch)
    consumer = consumer_over({VISITS: range(0, 6)}, {VISITS})
    queue = with_batch_stream(consumer, limit=4)

    async def run():
        fetch = asyncio.create_task(drain_async(consumer))
        for _ in range(50):
            await asyncio.sleep(0)
        waiting = [[e.message.offset for e in item.events] for item in list(queue._queue)]
        assert not fetch.done()  # 4 records wait: the next 2 would pass the limit
        first = queue.get_nowait()
        faust_redelivery.take_batches(queue, 4).taken.set()
        await fetch
        return waiting, [e.message.offset for e in first.events]

    waiting, first = asyncio.run(run())
    assert waiting == [[0, 1, 2, 3]] and first == [0, 1, 2, 3]
    assert handed_batches(queue) == [[4, 5]]


def test_a_rebalance_before_a_batch_hand_off_hands_out_nothing(monkeypatch):
    raw_events(monkeypatch)
    consumer = consumer_over({VISITS: range(0, 3), REGISTRY: range(0, 2)}, {VISITS, REGISTRY})
    queue = with_batch_stream(consumer)

    async def rebalancing():
        consumer.app.consumer_generation_id = 2

    consumer.app.flow_control = SimpleNamespace(acquire=rebalancing)
    assert drain(consumer) == {} and queue.empty()
    assert consumer._read_offset[VISITS] is None  # not read: fetched again after the seek


def test_batches_of_a_paused_partition_are_fetched_again_not_handed(monkeypatch):
    raw_events(monkeypatch)
    consumer = consumer_over({VISITS: range(3, 6)}, {REGISTRY})
    queue = with_batch_stream(consumer)
    assert drain(consumer) == {} and queue.empty()
    assert consumer.sought == [(VISITS, 3)]


def test_batches_keep_the_redelivery_and_the_unacked_holes(monkeypatch):
    raw_events(monkeypatch)
    # read up to 7 before a seek back to 4: delivered again, not dropped; 9 is missing
    consumer = consumer_over({VISITS: [4, 5, 6, 7, 8, 10]}, {VISITS}, read={VISITS: 7})
    queue = with_batch_stream(consumer, limit=10)
    gaps = []

    async def add_gap(tp, start, end):
        gaps.append((tp, start, end))

    consumer._add_gap = add_gap
    assert drain(consumer) == {}
    assert handed_batches(queue) == [[4, 5, 6, 7, 8, 10]]
    assert consumer.redelivered == 1 and consumer.holes == 1
    assert gaps == []  # the hole is not counted as read: the commit stops at 9
    consumer = consumer_over({VISITS: [8, 10]}, {VISITS}, read={VISITS: 7})
    queue = with_batch_stream(consumer, limit=10)
    consumer._add_gap = add_gap
    consumer.gaps_accepted = {VISITS}  # a hole fetched three times: faust's gap from then on
    assert drain(consumer) == {}
    assert handed_batches(queue) == [[8, 10]] and gaps == [(VISITS, 9, 10)]


def test_a_partition_with_two_subscribers_keeps_faust_path(monkeypatch):
    raw_events(monkeypatch)
    consumer = consumer_over({VISITS: range(0, 3)}, {VISITS})
    queue = with_batch_stream(consumer, subscribers=2)
    assert drain(consumer) == {VISITS: [0, 1, 2]} and queue.empty()


async def drain_async(consumer) -> dict:
    delivered = defaultdict(list)
    async for tp, message in consumer.getmany(timeout=1.0):
        delivered[tp].append(message.offset)
    return dict(delivered)
