"""The demo's lag check survives a group coordinator that is not ready yet (CI failure: a
fresh broker answered GroupCoordinatorNotAvailable and the demo crashed), and still fails on
errors that retrying cannot fix."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import GroupAuthorizationFailedError, GroupCoordinatorNotAvailableError

from services.tools.demo import catch_up


class Admin:
    error: Exception | None = None

    def __init__(self, bootstrap, **kwargs):
        self.closed = False

    async def start(self):
        return None

    async def close(self):
        self.closed = True

    async def list_consumer_group_offsets(self, group_id):
        raise self.error


def test_a_coordinator_not_ready_reads_as_no_commits_yet(monkeypatch):
    Admin.error = GroupCoordinatorNotAvailableError("loading")
    monkeypatch.setattr(catch_up.kafka_clients, "admin", Admin)
    assert asyncio.run(catch_up.group_offsets("127.0.0.1:1", "shouwang-monitoring")) == {}


def test_an_error_retrying_cannot_fix_is_raised(monkeypatch):
    Admin.error = GroupAuthorizationFailedError("denied")
    monkeypatch.setattr(catch_up.kafka_clients, "admin", Admin)
    with pytest.raises(GroupAuthorizationFailedError):
        asyncio.run(catch_up.group_offsets("127.0.0.1:1", "shouwang-monitoring"))
