"""When a batch-taking agent waits for its next record (`worker._next_coming`): only for a
record faust will hand out, and only while the last fetch still has records to hand out; and
how it takes a fetched batch (`FetchedBatch`, the consumer's direct hand-off)."""

from __future__ import annotations

import asyncio
from collections import deque
from types import SimpleNamespace

from services.platform.kafka.faust.redelivery import FetchedBatch
from services.platform.kafka.worker import HAND_OUT_TURNS, Worker, _next_coming


class App:
    def __init__(self, handing_out: int = 0, active: bool = True, generation: int = 1):
        self._consumer = SimpleNamespace(handing_out=handing_out)
        self.flow_control = SimpleNamespace(is_active=lambda: active)
        self.consumer_generation_id = generation


def event(generation: int = 1):
    return SimpleNamespace(message=SimpleNamespace(generation_id=generation))


def queue(*items):
    return SimpleNamespace(_queue=deque(items), _errors=deque())


def test_a_record_in_the_queue_is_taken_into_the_batch():
    assert asyncio.run(_next_coming(queue(event()), App()))


def test_an_empty_queue_with_nothing_left_to_hand_out_ends_the_batch():
    assert not asyncio.run(_next_coming(queue(), App(handing_out=0)))


def test_a_record_faust_will_skip_ends_the_batch():
    # a rebalance: an older generation's record, or the flow stopped
    assert not asyncio.run(_next_coming(queue(event(generation=1)), App(generation=2)))
    assert not asyncio.run(_next_coming(queue(event()), App(active=False)))


def test_a_fetched_batch_is_at_hand_unless_a_rebalance_began():
    assert asyncio.run(_next_coming(queue(FetchedBatch([event()], 1)), App()))
    assert not asyncio.run(_next_coming(queue(FetchedBatch([event()], 1)), App(generation=2)))
    assert not asyncio.run(_next_coming(queue(FetchedBatch([event()], 1)), App(active=False)))


class Stream:
    """faust's stream as the agent sees it: values out of the queue, `current_event` set for a
    record (None for a batch), `ack` per event."""

    def __init__(self, app, items):
        self.app, self.items, self.acked = app, items, []
        self.channel = SimpleNamespace(queue=queue())
        self.current_event = None

    async def __aiter__(self):
        for item in self.items:
            self.current_event = None if type(item) is FetchedBatch else item
            yield item

    async def ack(self, done):
        self.acked.append(done.message.offset)


def fetched(offsets, generation=1):
    return FetchedBatch(
        [
            SimpleNamespace(message=SimpleNamespace(offset=o, topic="t", tracked=False))
            for o in offsets
        ],
        generation,
    )


def test_fetched_batches_are_tracked_applied_and_acked_within_the_limit():
    app = App()
    tracked = []
    app.consumer = SimpleNamespace(track_message=lambda m: tracked.append(m.offset))
    app.topics = SimpleNamespace(acking_topics={"t"})
    stream = Stream(app, [fetched([0, 1, 2]), fetched([3, 4]), fetched([5], generation=0)])
    handled = []

    async def handle_batch(events):
        assert [e.message.offset for e in events if e.message.offset not in tracked] == []
        handled.append([e.message.offset for e in events])

    worker = Worker(dead_letters=None)
    asyncio.run(worker.consume_batches(stream, handle_batch, limit=4))
    # the second batch would pass the limit: the first goes alone; an older generation's
    # batch (a rebalance began) is neither tracked, applied nor acked
    assert handled == [[0, 1, 2], [3, 4]]
    assert stream.acked == [0, 1, 2, 3, 4] and tracked == [0, 1, 2, 3, 4]


def test_the_batch_waits_for_the_fetch_loop_to_hand_out_the_next_record():
    pending = queue()
    app = App(handing_out=3)

    async def run():
        async def fetch_loop():
            for _ in range(5):  # a few turns of the loop per record, as faust's fetch loop
                await asyncio.sleep(0)
            pending._queue.append(event())
            app._consumer.handing_out -= 1

        loop = asyncio.create_task(fetch_loop())
        coming = await _next_coming(pending, app)
        await loop
        return coming

    assert asyncio.run(run())


def test_the_wait_is_bounded_when_the_fetch_loop_hands_out_nothing():
    pending = queue()
    app = App(handing_out=5)  # e.g. the fetch loop waits for the producer to drain

    async def run():
        turns = 0

        async def count():
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        counter = asyncio.create_task(count())
        coming = await _next_coming(pending, app)
        counter.cancel()
        return coming, turns

    coming, turns = asyncio.run(run())
    assert not coming and turns <= HAND_OUT_TURNS + 1
