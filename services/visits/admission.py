"""Fair admission: no token's requests starve another's.

Three limits, each answered 429 with Retry-After and a code naming it:
- `token_concurrency`: a token has as many requests open (from its check to its answer, the
  body read included) as its quota allows;
- `token_rate`: its token bucket is empty (the answer says when the next request is allowed);
- `overloaded`: the broker slots are taken (writes that hold their records until the broker
  acknowledges them, the memory bound). Slots are taken only once a request's body is read
  and checked, so a client that trickles its body holds a token slot, not a broker slot; and
  the last `reserved` slots are for operator tokens only.

State is per process (limits of a fleet of N processes are N times these) and keyed by token
id; the clock is passed in. No aiohttp here: the HTTP entrypoint turns `Shed` into the answer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from services.platform.auth.tokens import Token
from services.platform.quotas import Quota

RESERVED_KIND = "operator"  # the kind that may use the reserved broker slots
MAX_TRACKED = 10_000  # token states kept; beyond, idle ones are forgotten (a full bucket again)


class Shed(Exception):
    """A request refused by a limit: `reason` (the problem's code), when to retry, and why."""

    def __init__(self, reason: str, retry_after: int, message: str):
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after
        self.message = message


@dataclass
class _TokenState:
    open: int
    tokens: float  # what is left in the bucket
    updated: float  # when `tokens` was last refilled


class AdmissionLimits(Protocol):
    """The settings admission reads on every request (service.Limits has them), so a change
    of limits applies to the next request without losing the counts of those open."""

    quotas: Mapping[str, Quota]
    max_in_flight: int
    operator_reserve: float
    retry_after_seconds: int


def reserved_slots(limits: AdmissionLimits) -> int:
    """Broker slots only operator tokens may take; at least one stays open to every kind."""
    wanted = math.ceil(limits.max_in_flight * limits.operator_reserve)
    return max(0, min(limits.max_in_flight - 1, wanted))


class Admission:
    """Per-token concurrency and rate, and the shared broker slots with an operator reserve."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.writing = 0  # broker slots taken
        self._states: dict[str, _TokenState] = {}

    @staticmethod
    def quota_of(token: Token, limits: AdmissionLimits) -> Quota:
        """The token's kind's quota with the token record's own overrides."""
        return token.quota.over(limits.quotas[token.kind])

    @contextmanager
    def request(self, token: Token, limits: AdmissionLimits) -> Iterator[None]:
        """Hold one of the token's open requests for the block; Shed when the token has all its
        requests open or has used its rate (nothing is held then)."""
        quota = self.quota_of(token, limits)
        now = self.clock()
        state = self._state(token.token_id, quota, now)
        if state.open >= quota.concurrency:
            raise Shed(
                "token_concurrency",
                1,
                f"this token already has {state.open} requests open, its limit; "
                "retry when one is answered",
            )
        state.tokens = min(
            float(quota.burst), state.tokens + (now - state.updated) * quota.rate_per_second
        )
        state.updated = now
        if state.tokens < 1:
            wait = (1 - state.tokens) / quota.rate_per_second
            raise Shed(
                "token_rate",
                max(1, math.ceil(wait)),
                f"this token may send {quota.rate_per_second:g} requests per second "
                f"(bursts of {quota.burst}); retry after {wait:.2f} s",
            )
        state.tokens -= 1
        state.open += 1
        try:
            yield
        finally:
            state.open -= 1

    @contextmanager
    def broker_slot(self, token: Token, limits: AdmissionLimits) -> Iterator[None]:
        """Hold one broker slot for the block; Shed (`overloaded`) when none is free to this
        token's kind (the reserved ones are for operators)."""
        reserved = 0 if token.kind == RESERVED_KIND else reserved_slots(limits)
        limit = limits.max_in_flight - reserved
        if self.writing >= limit:
            kept = f" ({reserved} more are kept for operator tokens)" if reserved else ""
            retry = limits.retry_after_seconds
            raise Shed(
                "overloaded",
                retry,
                f"{limit} writes are already waiting for the event log{kept}; nothing was "
                f"written, retry after {retry} s",
            )
        self.writing += 1
        try:
            yield
        finally:
            self.writing -= 1

    def _state(self, token_id: str, quota: Quota, now: float) -> _TokenState:
        state = self._states.get(token_id)
        if state is None:
            if len(self._states) >= MAX_TRACKED:
                self._states = {k: s for k, s in self._states.items() if s.open}
            state = self._states[token_id] = _TokenState(0, float(quota.burst), now)
        return state
