"""A sink that sends each window of the stream as one batch per event type, registry first.

The campaign stream interleaves event types, and the visits API takes one type per batch, so
`ApiSink` on its own posts runs of one or two records (one broker round trip each). Field apps
and feeds post their queues in batches; this wrapper does the same for each window the
simulation writes (500 events): registries first, so a household's baseline precedes its visits
within a window. Order across types inside a window changes, which the system must tolerate
anyway (offline phones sync late): the monitoring fold and the projections are order-independent.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.tools.simulation import records as rec
from services.tools.simulation.sinks.base import EventSink
from services.tools.simulation.stream import Event

ORDER = {event_type: n for n, event_type in enumerate(rec.INPUT_TYPES)}  # registry, cadres, ...


class TypeBatchingSink(EventSink):
    """Wraps another sink; each `write` is regrouped by event type (stable within a type)."""

    def __init__(self, inner: EventSink):
        self.inner = inner

    async def start(self) -> None:
        await self.inner.start()

    async def write(self, events: Sequence[Event]) -> None:
        await self.inner.write(sorted(events, key=lambda e: ORDER.get(e.event_type, len(ORDER))))

    async def close(self) -> None:
        await self.inner.close()
