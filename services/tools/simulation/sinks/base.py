"""The sink port: something that durably accepts batches of simulated events."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType

from services.tools.simulation.stream import Event


class EventSink(ABC):
    """Accepts batches of events; `write` returns only when the whole batch is accepted.

    Use as an async context manager: `async with sink: await simulate(parameters, sink)`.
    """

    async def start(self) -> None:  # noqa: B027 (optional hook)
        """Open connections; called on entering the context."""

    @abstractmethod
    async def write(self, events: Sequence[Event]) -> None:
        """Deliver `events` in order; raise SinkError if any could not be delivered."""

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Flush and release resources; called on leaving the context."""

    async def __aenter__(self) -> EventSink:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class SinkError(RuntimeError):
    """A batch that the destination did not accept, with the reason."""


class MemorySink(EventSink):
    """Keeps every event in a list: for tests and for callers that post-process the stream."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def write(self, events: Sequence[Event]) -> None:
        self.events.extend(events)
