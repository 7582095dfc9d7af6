"""Through the visits API, as field apps and department feeds would: `POST /v1/{kind}:batch`.

The API sets `recorded_at`, `source` and `actor` itself (from the clock and the bearer token), so
they are left out of the JSON; with one token every record's actor becomes the token's holder,
and `recorded_at` becomes the time of the request. The stream is sent in its own order, so what
arrives late in the campaign still arrives late. Re-sending a record is safe: the API answers a
duplicate `event_id` as accepted, which is what makes retries after a 503 harmless.

Review decisions are a level's (services/visits/domain/levels.py): given `level_tokens`, each is
posted with the token of its `approving_level` for the household's township and village, which
the sink knows from the registry records it posted; without, every record goes with `token`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from itertools import groupby
from typing import Any, Protocol

import aiohttp

from services.platform.unreachable import ServerUnreachable
from services.tools.simulation import records as rec
from services.tools.simulation.sinks.base import EventSink, SinkError
from services.tools.simulation.sinks.jsonl import to_json
from services.tools.simulation.stream import Event

# Route segment per event type, as served by services/visits (see its openapi.json).
ROUTES = {
    rec.VISIT: "visits",
    rec.REGISTRY: "households",
    rec.INCOME: "income-updates",
    rec.HARDSHIP: "hardships",
    rec.MEASURE: "measure-steps",
    rec.PROBLEM: "problems",
    rec.REVIEW: "review-decisions",
    rec.CADRE: "cadres",
}
SERVER_FIELDS = ("recorded_at", "source", "actor")


class LevelTokens(Protocol):
    """Where review decisions get their token (services/tools/demo/level_tokens.py is one)."""

    async def secret(self, level: str, township: str | None, village: str | None) -> str:
        """The bearer token for a decision of `level` about a household of that place."""


class ApiSink(EventSink):
    """Posts batches to the visits API and returns once every record is accepted (202)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        max_batch: int = 500,
        request_timeout: float = 30.0,
        retry_for_seconds: float = 120.0,
        level_tokens: LevelTokens | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.level_tokens = level_tokens
        self.places: dict[str, tuple[str, str | None]] = {}  # household → (township, village)
        self.max_batch = max_batch
        self.request_timeout = request_timeout
        self.retry_for_seconds = retry_for_seconds
        self.accepted = 0
        self.duplicates = 0
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=aiohttp.ClientTimeout(total=self.request_timeout),
        )

    async def probe(self, named_by: str) -> None:
        """One GET of /healthz: ServerUnreachable (naming `named_by`, where the URL came from)
        when nothing answers at the base URL. A run's writes retry for minutes, which suits a
        server that restarts mid-run, not one that was never there."""
        if self._session is None:
            raise RuntimeError("ApiSink used before start()")
        try:
            async with self._session.get(f"{self.base_url}/healthz"):
                pass
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise ServerUnreachable("the visits API", self.base_url, named_by, detail) from exc

    async def write(self, events: Sequence[Event]) -> None:
        # Runs of one type keep the stream's order across types (registry before visits).
        for event_type, run in groupby(events, key=lambda e: e.event_type):
            run = list(run)
            if event_type == rec.REGISTRY:
                for event in run:
                    record = event.record
                    self.places[record["household_id"]] = (record["township"], record["village"])
            if event_type == rec.REVIEW and self.level_tokens is not None:
                keyed = [(await self._level_secret(e.record), e) for e in run]
                for secret, part in groupby(keyed, key=lambda pair: pair[0]):
                    await self._post_all(event_type, [e for _, e in part], secret)
            else:
                await self._post_all(event_type, run, None)

    async def _level_secret(self, record: dict[str, Any]) -> str:
        assert self.level_tokens is not None
        township, village = self.places.get(record["household_id"], (None, None))
        return await self.level_tokens.secret(record["approving_level"], township, village)

    async def _post_all(self, event_type: str, run: list[Event], secret: str | None) -> None:
        for first in range(0, len(run), self.max_batch):
            await self._post(event_type, run[first : first + self.max_batch], secret)

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _post(self, event_type: str, events: list[Event], secret: str | None = None) -> None:
        if self._session is None:
            raise RuntimeError("ApiSink used before start()")
        url = f"{self.base_url}/v1/{ROUTES[event_type]}:batch"
        body = {"records": [request_json(e) for e in events]}
        deadline = time.monotonic() + self.retry_for_seconds
        delay = 0.5
        while True:
            try:
                headers = {"Authorization": f"Bearer {secret}"} if secret else None
                async with self._session.post(url, json=body, headers=headers) as response:
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
                    answer = await _json_or_text(response)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, retry_after, answer = None, None, f"{type(exc).__name__}: {exc}"
            if status in (202, 207):
                self._check(url, events, answer)
                return
            # 429: shed by the API's admission (services/visits/README.md "Fair admission"),
            # retried after the Retry-After it names, like a 503.
            if status is not None and status not in (429, 503) and status < 500:
                raise SinkError(f"POST {url} answered {status}: {_short(answer)}")
            if time.monotonic() > deadline:
                raise SinkError(f"POST {url} kept failing ({status or answer}); gave up")
            wait = float(retry_after) if retry_after and retry_after.isdigit() else delay
            await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 10.0)

    def _check(self, url: str, events: list[Event], answer: Any) -> None:
        results = answer.get("results", []) if isinstance(answer, dict) else []
        refused = [r for r in results if r.get("status") != 202]
        if refused or len(results) != len(events):
            first = refused[0] if refused else {}
            raise SinkError(
                f"POST {url}: {len(refused)} of {len(events)} records refused; first: "
                f"{_short(first)}"
            )
        self.accepted += len(results)
        self.duplicates += sum(1 for r in results if r.get("duplicate"))


def request_json(event: Event) -> dict[str, Any]:
    """The JSON a client sends for `event`: the record without the server-set fields."""
    return to_json({k: v for k, v in event.record.items() if k not in SERVER_FIELDS})


async def _json_or_text(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    try:
        return json.loads(text)
    except ValueError:
        return text


def _short(value: Any, limit: int = 400) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"
