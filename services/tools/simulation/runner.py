"""Run a simulated campaign through a sink at a chosen speed: the library entry point."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from services.tools.simulation.parameters import SimulationParameters
from services.tools.simulation.sinks.base import EventSink
from services.tools.simulation.stream import Event, generate
from services.tools.simulation.summary import Summary


async def simulate(
    parameters: SimulationParameters,
    sink: EventSink,
    *,
    rate: float = 0.0,
    batch_size: int = 500,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """Write the campaign for `parameters` to `sink`, `rate` events per second (0 = flat out).

    The sink must be started (use it as `async with sink:`); every batch is written before the
    next is sent, so when this returns every event has been accepted by the sink. The campaign is
    planned in a worker thread so the event loop stays responsive. Returns the run's summary;
    `progress` is called with it after every batch.
    """
    if rate < 0:
        raise ValueError("rate must be zero (as fast as possible) or positive")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    events: list[Event] = await asyncio.to_thread(lambda: list(generate(parameters)))
    summary = Summary(parameters)
    if rate:
        # Small batches at low rates, so the stream is smooth rather than bursty.
        batch_size = max(1, min(batch_size, int(rate / 20) or 1))
    started = time.monotonic()
    sent = 0
    for first in range(0, len(events), batch_size):
        batch = events[first : first + batch_size]
        await sink.write(batch)
        for event in batch:
            summary.observe(event)
        sent += len(batch)
        if progress is not None:
            progress(summary)
        if rate:
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
    return summary
