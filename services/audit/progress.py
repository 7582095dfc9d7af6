"""Progress of a long read of the log: a bar on a terminal, a plain line every few seconds else."""

from __future__ import annotations

import time
from typing import Any, TextIO


class Progress:
    """A one-line bar with events/second on a terminal; a plain line every few seconds else."""

    def __init__(self, out: TextIO, label: str, every: float = 5.0):
        self.out, self.label, self.every = out, label, every
        self.tty = out.isatty()
        self.started = self.last = time.monotonic()
        self.total: int | None = None
        self.count = 0

    def __call__(self, count: int) -> None:
        self.count = count
        now = time.monotonic()
        if now - self.last < (0.2 if self.tty else self.every):
            return
        self.last = now
        self._show(now)

    def _show(self, now: float, end: str = "") -> None:
        rate = self.count / max(now - self.started, 1e-9)
        if self.tty:
            if self.total:
                done = min(self.count / self.total, 1.0)
                bar = "#" * int(done * 30)
                text = f"\r{self.label} [{bar:<30}] {self.count}/{self.total} {rate:,.0f} ev/s"
            else:
                text = f"\r{self.label} {self.count} records {rate:,.0f} ev/s"
            self.out.write(text + end)
        else:
            of = f"/{self.total}" if self.total else ""
            self.out.write(f"{self.label}: {self.count}{of} records, {rate:,.0f} events/s\n")
        self.out.flush()

    def done(self) -> float:
        now = time.monotonic()
        self._show(now, "\n" if self.tty else "")
        return self.count / max(now - self.started, 1e-9)


async def feed_batches(source, replay_or_sink: Any, progress: Progress) -> int:
    """Feed every record of `source`'s batches to `replay_or_sink`, counting on `progress`."""
    count = 0
    async for batch in source:
        if progress.total is None and getattr(replay_or_sink, "total", None):
            progress.total = replay_or_sink.total
        for record in batch:
            replay_or_sink.feed(record)
        count += len(batch)
        progress(count)
    return count
