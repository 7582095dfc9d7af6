"""A scenario's verdict: its checks and counts, PASS or FAIL, and waiting on a condition with a
deadline (never a bare sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.tools.faults.processes import Worker


class ScenarioFailed(AssertionError):
    """A check of a scenario did not hold; the message says which and with what counts."""


@dataclass
class Result:
    """One scenario's outcome: PASS/FAIL, the counts behind it, and the failed checks."""

    name: str
    counts: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)

    def render(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        counts = ", ".join(f"{k}={v}" for k, v in self.counts.items())
        lines = [f"{verdict} {self.name} ({self.seconds:.0f} s): {counts}"]
        lines += [f"    failed: {f}" for f in self.failures]
        return "\n".join(lines)


async def wait_for(
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool],
    seconds: float,
    what: str,
    poll: float = 0.5,
    alive: Iterable[Worker] = (),
) -> None:
    """Poll `condition` until true; ScenarioFailed after `seconds` or when a worker died."""
    deadline = time.monotonic() + seconds
    while True:
        answer = condition()
        if asyncio.iscoroutine(answer):
            answer = await answer
        if answer:
            return
        for worker in alive:
            if not worker.running:
                raise ScenarioFailed(
                    f"{worker.name} exited ({worker.returncode}) while waiting for {what}; "
                    f"log: {worker.log_path}, ending:\n{worker.log_tail()}"
                )
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"timed out after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(poll)
