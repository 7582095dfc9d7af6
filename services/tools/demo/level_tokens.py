"""The demo's tokens for review decisions, one per level (the visits door's procedure levels,
services/visits/domain/levels.py): a village-level token per township covering the villages the
registry names, a township reviewer per township, and the operator's token for the county.

They are issued when first needed, in this process, as `shouwang tokens issue` does (logged on
operator.actions first): a township and its villages must be in the read model for that, so the
first decision of a township waits until the projector has its households. A village the
township's token does not cover yet (a household registered later) gets a new token of the
township covering it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from services.platform.auth.tokens import new_token, new_token_id
from services.platform.config import Settings
from services.visits.bootstrap import token_store
from services.visits.domain.levels import TOWNSHIP, VILLAGE
from services.visits.token_admin import issue_logged
from services.visits.townships import known_townships, known_villages

ACTOR = "operator:shouwang-demo"
REVIEWS = "ReviewDecided"


class LevelTokens:
    """The secret to post a review decision of a level about a household of a place."""

    def __init__(self, settings: Settings, county_secret: str, wait_seconds: float = 300.0):
        self.settings = settings
        self.county_secret = county_secret
        self.wait_seconds = wait_seconds
        self.issued = 0
        self._reviewers: dict[str, str] = {}
        self._villages: dict[str, tuple[frozenset[str], str]] = {}
        self._lock = asyncio.Lock()

    async def secret(self, level: str, township: str | None, village: str | None) -> str:
        """The county's token for COUNTY (and for a household the sink never saw registered);
        otherwise the township's reviewer or village-level token, issued on first need."""
        if level not in (VILLAGE, TOWNSHIP) or township is None:
            return self.county_secret
        async with self._lock:
            if level == TOWNSHIP:
                if township not in self._reviewers:
                    await self._wait(lambda: self._knows_township(township), township)
                    self._reviewers[township] = await self._issue(
                        f"review-group:{township}", township, (), "township review group"
                    )
                return self._reviewers[township]
            covered = self._villages.get(township)
            if covered is None or village not in covered[0]:
                villages = await self._wait(
                    lambda: self._villages_with(township, village), f"{township}/{village}"
                )
                secret = await self._issue(
                    f"village-committees:{township}", township, villages, "village committees"
                )
                self._villages[township] = (frozenset(villages), secret)
            return self._villages[township][1]

    async def _knows_township(self, township: str) -> set[str] | None:
        return {township} if township in await known_townships(self.settings) else None

    async def _villages_with(self, township: str, village: str | None) -> set[str] | None:
        known = await known_villages(self.settings, township)
        return known if village is None or village in known else None

    async def _wait(self, probe, what: str) -> set[str]:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            found = await probe()
            if found:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the read model did not know {what} within {self.wait_seconds:.0f} s: "
                    "is the projector running?"
                )
            await asyncio.sleep(0.5)

    async def _issue(self, holder: str, township: str, villages, what: str) -> str:
        token = new_token(
            "cadre",
            holder,
            [township],
            [REVIEWS],
            note=f"shouwang demo: {what} of {township}",
            villages=sorted(villages),
        )
        async with token_store(self.settings) as store:
            _, secret, _ = await issue_logged(
                self.settings, store, replace(token, token_id=new_token_id()), ACTOR
            )
        self.issued += 1
        return secret
