"""The wall clock of production, named once: bootstraps pass it to what they wire.

Domain and service code never read it: they take the moment, or a clock, as an argument (the
architecture test checks the domains), so tests and replays can run on any time they choose.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)
