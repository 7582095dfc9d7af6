"""The garbage collector's young generation raised while a server answers requests in bursts,
or a stream worker applies batches (`kafka.faust.running`).

A batch request holds thousands of small containers (its JSON, the records made of it, their
outcomes) until it is answered. With CPython's default young-generation threshold (700
allocations) they are collected, survive and are promoted again and again while the request
runs, and what is promoted sets off full collections over the whole heap: in the visits API's
B1 bench (batches of 500) those were 30-60% of the process's CPU (measured with gc.callbacks).
A larger young generation lets a request's objects die before they are ever looked at.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

_holders = 0  # servers inside `young_generation_at_least` in this process
_saved: tuple[int, int, int] | None = None  # the process's thresholds before the first


@contextlib.contextmanager
def young_generation_at_least(threshold: int) -> Iterator[None]:
    """The young generation's threshold at least `threshold` while inside (the older ones
    unchanged); the process's own thresholds come back when the last holder leaves."""
    global _holders, _saved
    if _holders == 0:
        _saved = gc.get_threshold()
        young, *older = _saved
        gc.set_threshold(max(young, threshold), *older)
    _holders += 1
    try:
        yield
    finally:
        _holders -= 1
        if _holders == 0 and _saved is not None:
            gc.set_threshold(*_saved)
            _saved = None


def while_serving(threshold: int) -> Callable[[Any], AsyncIterator[None]]:
    """An aiohttp cleanup context holding `young_generation_at_least(threshold)` from the
    application's start to its cleanup."""

    async def context(app: Any) -> AsyncIterator[None]:
        with young_generation_at_least(threshold):
            yield

    return context
