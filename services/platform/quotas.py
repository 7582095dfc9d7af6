"""Request quotas of a token: how many requests it may have open at once and how fast it may
send them (a token bucket), by token kind, overridable in the token's record.

Pure data, no I/O: the settings read the kinds' defaults from the environment
(config.VisitsSettings), a token's record may override any part (tokens.Token, migration 0008),
and the visits API enforces the result (services/visits/admission.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    """At most `concurrency` requests open at once; `rate_per_second` on average, with bursts of
    up to `burst` requests (the bucket's size: a full bucket refills in burst / rate seconds)."""

    concurrency: int
    rate_per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency: must be at least 1")
        if not (math.isfinite(self.rate_per_second) and self.rate_per_second > 0):
            raise ValueError("rate_per_second: must be a number above 0")
        if self.burst < 1:
            raise ValueError("burst: must be at least 1")


# Defaults by token kind. A cadre's phone syncs its own backlog (batches of up to 500 records),
# a department feed pushes a few parallel streams, operators run imports and repairs: each gets
# room for honest use and no more, so one leaked or runaway token cannot take the API from the
# others. Operators also keep a reserved share of the API's broker slots (VisitsSettings).
# An auditor writes nothing, so the visits API only ever refuses it (403): a cadre's room bounds
# what a confused or leaked auditor token can cost.
DEFAULT_QUOTAS: dict[str, Quota] = {
    "cadre": Quota(concurrency=4, rate_per_second=10.0, burst=30),
    "feed": Quota(concurrency=16, rate_per_second=100.0, burst=200),
    "operator": Quota(concurrency=64, rate_per_second=1000.0, burst=2000),
    "auditor": Quota(concurrency=4, rate_per_second=10.0, burst=30),
}


@dataclass(frozen=True)
class QuotaOverride:
    """A token record's own limits; None keeps its kind's default."""

    concurrency: int | None = None
    rate_per_second: float | None = None
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("max_concurrent: must be at least 1")
        if self.rate_per_second is not None and not (
            math.isfinite(self.rate_per_second) and self.rate_per_second > 0
        ):
            raise ValueError("rate_per_second: must be a number above 0")
        if self.burst is not None and self.burst < 1:
            raise ValueError("burst: must be at least 1")

    @property
    def empty(self) -> bool:
        return self.concurrency is None and self.rate_per_second is None and self.burst is None

    def over(self, default: Quota) -> Quota:
        """`default` with this override's parts in place of its own."""
        return Quota(
            concurrency=default.concurrency if self.concurrency is None else self.concurrency,
            rate_per_second=(
                default.rate_per_second if self.rate_per_second is None else self.rate_per_second
            ),
            burst=default.burst if self.burst is None else self.burst,
        )

    def describe(self) -> str:
        """For `tokens list`: the overridden parts, e.g. `concurrency=2 rate=0.5/s`."""
        parts = []
        if self.concurrency is not None:
            parts.append(f"concurrency={self.concurrency}")
        if self.rate_per_second is not None:
            parts.append(f"rate={self.rate_per_second:g}/s")
        if self.burst is not None:
            parts.append(f"burst={self.burst}")
        return " ".join(parts)


NO_OVERRIDE = QuotaOverride()
