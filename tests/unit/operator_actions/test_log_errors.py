"""A broker that refuses our credentials is reported as such, not as "Kafka is down": the
operator commands would otherwise tell the operator to wait for a broker that is up."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError

from services.contract.topics import TopicLayout
from services.platform.actions import log
from services.platform.kafka.clients import KafkaAccessRefused
from services.platform.kafka.producer import BrokerUnavailable


async def test_a_refused_password_is_not_a_broker_outage(monkeypatch) -> None:
    async def refused(*args, **kwargs):
        raise KafkaAccessRefused("the broker refused user shouwang: invalid credentials")

    monkeypatch.setattr(log, "ensure_topics", refused)
    with pytest.raises(KafkaAccessRefused, match="invalid credentials"):
        await log.prepare_topic("127.0.0.1:1", TopicLayout(), wait_seconds=5)


async def test_an_unreachable_broker_is_an_outage(monkeypatch) -> None:
    async def unreachable(*args, **kwargs):
        raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 1)]")

    monkeypatch.setattr(log, "ensure_topics", unreachable)
    with pytest.raises(BrokerUnavailable, match="KafkaConnectionError"):
        await log.prepare_topic("127.0.0.1:1", TopicLayout(), wait_seconds=5)
