"""When a batch-taking agent waits for its next record (`worker._next_coming`): only for a
record faust will hand out, and only while the last fetch still has records to hand out."""

from __future__ import annotations

import asyncio
from collections import deque
from types import SimpleNamespace

from services.platform.kafka.worker import HAND_OUT_TURNS, _next_coming


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
