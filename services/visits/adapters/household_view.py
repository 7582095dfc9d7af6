"""The monitoring worker's household view, read by the door to check a review decision's
procedure order (domain/procedure.py).

`GET {SHOUWANG_VISITS_MONITORING_URL}/v1/households/{id}` with a read-only (auditor) token: any
worker's URL does, faust's table route answers from the worker that owns the household. The
client is thin on purpose: one GET with a short timeout, the JSON read into the domain's
`Household`; anything else (not configured, unreachable, slow, refused, unreadable, a household
the view does not know) is `ViewUnavailable` with a bounded reason, and the door then accepts the
decision and leaves it to the fold (a 503 would stop county approvals whenever a worker restarts).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from services.visits.domain.procedure import Decision, Household, Procedure

# Why a decision went unchecked: the label values of shouwang_visits_procedure_unchecked_total
# (with the domain's own: view_behind, earlier_than_recorded).
UNAVAILABLE_REASONS = ("not_configured", "unreachable", "refused", "unreadable", "not_in_view")


class ViewUnavailable(RuntimeError):
    """The view cannot answer for the household; `reason` is one of UNAVAILABLE_REASONS."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or reason)
        self.reason = reason


class HouseholdViews(Protocol):
    """Port: the household as the monitoring view reports it."""

    async def household(self, household_id: str) -> Household:
        """The household's workflow, procedure and decisions; ViewUnavailable when the view
        cannot say."""

    async def close(self) -> None:
        """Release the connections."""


class NoView:
    """No monitoring view configured: every decision goes unchecked (and is counted)."""

    async def household(self, household_id: str) -> Household:
        raise ViewUnavailable("not_configured")

    async def close(self) -> None:
        return None


class InMemoryViews:
    """A HouseholdViews over a dict of household id → Household, for unit tests."""

    def __init__(self, known: Mapping[str, Household] | None = None):
        self.known = dict(known or {})
        self.failing: str | None = None  # a reason: every lookup raises ViewUnavailable with it
        self.asked: list[str] = []

    async def household(self, household_id: str) -> Household:
        self.asked.append(household_id)
        if self.failing:
            raise ViewUnavailable(self.failing)
        if household_id not in self.known:
            raise ViewUnavailable("not_in_view")
        return self.known[household_id]

    async def close(self) -> None:
        return None


class MonitoringViews:
    """HouseholdViews over HTTP: the monitoring worker's `GET /v1/households/{id}`.

    After a read that failed to reach the view (timed out, refused the connection), reads are
    not tried for `pause_seconds` (default: five timeouts): each is `unreachable` at once. A
    province's campaign found why: with the workers busy catching up, their web view answered
    in seconds, and every review request waited out the full timeout, one after the other, so
    the door, not the workers, set the pace of the whole ingest. The check is a courtesy (the
    fold refuses a skipped step either way), so it steps aside instead."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout_seconds: float,
        pause_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None  # made on first use, in the loop
        self._pause = 5 * timeout_seconds if pause_seconds is None else pause_seconds
        self._clock = clock
        self._resume_at = -math.inf

    async def household(self, household_id: str) -> Household:
        if self._clock() < self._resume_at:
            raise ViewUnavailable("unreachable", "not tried: the view was unreachable just now")
        try:
            return await self._read(household_id)
        except ViewUnavailable as exc:
            if exc.reason == "unreachable":
                self._resume_at = self._clock() + self._pause
            raise

    async def _read(self, household_id: str) -> Household:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=32)
            )
        url = f"{self.base_url}/v1/households/{quote(household_id, safe='')}"
        try:
            async with self._session.get(url, headers=self._headers) as response:
                if response.status == 404:
                    raise ViewUnavailable("not_in_view")
                if response.status != 200:
                    status = response.status
                    raise ViewUnavailable("refused", f"the household view answered {status}")
                document = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ViewUnavailable("unreachable", type(exc).__name__) from exc
        except ValueError as exc:  # not JSON
            raise ViewUnavailable("unreadable", "the household view's answer is not JSON") from exc
        try:
            return household_of(document)
        except (KeyError, TypeError, ValueError) as exc:
            raise ViewUnavailable("unreadable", f"unexpected household view: {exc!r}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def household_of(document: Any) -> Household:
    """The domain's Household from the view's JSON (services/monitoring/openapi.json)."""
    workflow = document["workflow"]
    raw = workflow.get("procedure")
    procedure = None
    if raw is not None:
        procedure = Procedure(
            direction=str(raw["direction"]),
            awaiting=str(raw["awaiting"]),
            notice_start=_date(raw.get("notice_start")),
            notice_ends=_date(raw.get("notice_ends")),
        )
    if "decisions" not in workflow:
        # A worker older than the door lists no decisions: without them the door cannot tell
        # whether the view is behind, so it does not judge.
        raise ValueError("the view lists no decisions")
    decisions = tuple(
        Decision(str(d["event_id"]), dt.datetime.fromisoformat(d["occurred_at"]))
        for d in workflow["decisions"]
    )
    return Household(str(workflow["status"]), procedure, decisions)


def _date(value: Any) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)
