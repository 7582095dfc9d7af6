"""The console's only way to write: the visits API, called with the logged-in person's token.

The console never writes the database or Kafka itself. A review decision is posted to the
visits API as the person whose session it is, so the API's own checks (scope, township,
validation) decide, and the record's actor is that person (the API takes it from the token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Answer:
    """What the visits API said: its status and, for a refusal, the problem's message and the
    fields it names."""

    status: int
    message: str = ""
    errors: tuple[tuple[str, str], ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status in (200, 201, 202)


class VisitsUnreachable(RuntimeError):
    """The visits API did not answer (down, wrong URL, timed out)."""


class VisitsClient:
    def __init__(self, http: aiohttp.ClientSession, base_url: str):
        self.http = http
        self.base_url = base_url

    async def post(self, slug: str, secret: str, record: dict[str, Any]) -> Answer:
        """POST one record to /v1/{slug} with the bearer `secret`."""
        try:
            async with self.http.post(
                f"{self.base_url}/v1/{slug}",
                json=record,
                headers={"Authorization": f"Bearer {secret}"},
            ) as response:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = {}
                return _answer(response.status, body if isinstance(body, dict) else {})
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise VisitsUnreachable(f"the visits API at {self.base_url}: {exc!r}") from exc


def _answer(status: int, body: dict[str, Any]) -> Answer:
    errors = []
    for item in body.get("errors") or []:
        if isinstance(item, dict):
            field = item.get("field") or item.get("pointer") or item.get("name") or ""
            errors.append((str(field), str(item.get("message") or item.get("detail") or "")))
    message = str(body.get("detail") or body.get("title") or "")
    return Answer(status, message, tuple(errors))
