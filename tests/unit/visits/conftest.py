"""An app over in-memory fakes (sink, token store, directory), with a fixed clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from services.contract.codec import Codec
from services.platform.auth.tokens import (
    CachedTokens,
    InMemoryTokenStore,
    hash_secret,
    new_token,
)
from services.platform.kafka.producer import InMemorySink
from services.platform.personal.keys import CachedKeys, InMemoryKeyStore
from services.platform.personal.sealer import PersonalSealer
from services.visits.adapters.directory import CachedDirectory, InMemoryDirectory
from services.visits.entrypoints.http import Dependencies, build_app
from services.visits.entrypoints.openapi import load_document
from services.visits.metrics import VisitsMetrics
from services.visits.service import Limits
from tests.revocation_feeds import complete_feed
from tests.visits_samples import CADRE, OTHER_TOWNSHIP, SAMPLES, TOWNSHIP

REVIEWS = "ReviewDecided"
VILLAGE = SAMPLES["households"]["village"]
NOW = dt.datetime(2020, 5, 17, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture(scope="session")
def codec() -> Codec:
    return Codec.default()


@dataclass
class Api:
    """A running test app and its fakes; `secrets` maps a role to a bearer token."""

    client: TestClient
    deps: Dependencies
    sink: InMemorySink
    store: InMemoryTokenStore
    directory: InMemoryDirectory
    secrets: dict[str, str]

    def auth(self, role: str = "cadre") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[role]}"}

    async def post(self, path: str, body: object, role: str = "cadre", **kwargs):
        headers = {**self.auth(role), **kwargs.pop("headers", {})}
        return await self.client.post(path, json=body, headers=headers, **kwargs)


async def _issue(store: InMemoryTokenStore, role: str, token) -> tuple[str, str]:
    secret = f"sw_test_{role}"
    await store.issue(token, hash_secret(secret))
    return role, secret


@pytest.fixture
async def api(codec: Codec) -> AsyncIterator[Api]:
    store = InMemoryTokenStore()
    directory = InMemoryDirectory({SAMPLES["visits"]["household_id"]: (TOWNSHIP, VILLAGE)})
    sink = InMemorySink()
    secrets = dict(
        [
            await _issue(store, "cadre", new_token("cadre", CADRE, [TOWNSHIP])),
            await _issue(store, "elsewhere", new_token("cadre", "cadre-9", [OTHER_TOWNSHIP])),
            await _issue(store, "feed", new_token("feed", "feed-health", [], ["HardshipReported"])),
            await _issue(store, "operator", new_token("operator", "op-1")),
            await _issue(store, "auditor", new_token("auditor", "audit-1")),
            await _issue(store, "reviewer", new_token("cadre", "rg-1", [TOWNSHIP], [REVIEWS])),
            await _issue(
                store,
                "village",
                new_token("cadre", "vc-1", [TOWNSHIP], [REVIEWS], villages=[VILLAGE]),
            ),
            await _issue(
                store,
                "service-point",
                new_token("cadre", "sp-1", [TOWNSHIP], villages=[VILLAGE], service_point=True),
            ),
            await _issue(
                store,
                "other-service-point",
                new_token("cadre", "sp-2", [TOWNSHIP], villages=["Xinmin"], service_point=True),
            ),
            await _issue(
                store,
                "other-village",
                new_token("cadre", "vc-2", [TOWNSHIP], [REVIEWS], villages=["Xinmin"]),
            ),
            await _issue(store, "revoked", new_token("cadre", CADRE, [TOWNSHIP])),
        ]
    )
    await store.revoke(store.by_hash[hash_secret(secrets["revoked"])].token_id, NOW)
    deps = Dependencies(
        codec=codec,
        sink=sink,
        tokens=CachedTokens(store, complete_feed(), ttl=30),
        directory=CachedDirectory(directory),
        sealer=PersonalSealer(CachedKeys(InMemoryKeyStore())),
        metrics=VisitsMetrics(CollectorRegistry()),
        openapi=load_document(),
        limits=Limits(max_body_bytes=64 * 1024, max_batch=20),
        clock=lambda: NOW,
    )
    client = TestClient(TestServer(build_app(deps)))
    await client.start_server()
    try:
        yield Api(client, deps, sink, store, directory, secrets)
    finally:
        await client.close()
