"""Server-side sessions: the cookie holds a random id, the token stays in this process.

A session remembers the token's secret (to re-check it on every request, so a revocation ends
the session within a second, and to write through the visits API as its holder), the CSRF
token of its forms, and when it was made and last used. Sessions live in memory: a restart logs
everyone out, which is the safe side for a console of a few dozen reviewers.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_AGE_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000


@dataclass
class Session:
    session_id: str
    secret: str  # the bearer token; never sent back to the browser
    csrf: str
    created: float
    last_used: float
    language: str | None = None


@dataclass
class Sessions:
    """The live sessions, forgotten after `idle_seconds` unused or MAX_AGE_SECONDS."""

    idle_seconds: float
    clock: Callable[[], float]
    _live: dict[str, Session] = field(default_factory=dict)

    def open(self, secret: str) -> Session:
        now = self.clock()
        if len(self._live) >= MAX_SESSIONS:
            self._expire(now)
        if len(self._live) >= MAX_SESSIONS:  # still full of live ones: drop the oldest
            oldest = min(self._live.values(), key=lambda s: s.last_used)
            del self._live[oldest.session_id]
        session = Session(secrets.token_urlsafe(32), secret, secrets.token_urlsafe(32), now, now)
        self._live[session.session_id] = session
        return session

    def find(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._live.get(session_id)
        if session is None:
            return None
        now = self.clock()
        if now - session.last_used > self.idle_seconds or now - session.created > MAX_AGE_SECONDS:
            del self._live[session_id]
            return None
        session.last_used = now
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._live.pop(session_id, None)

    def _expire(self, now: float) -> None:
        for sid, s in list(self._live.items()):
            if now - s.last_used > self.idle_seconds or now - s.created > MAX_AGE_SECONDS:
                del self._live[sid]


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
