"""A client library's connection error, told as one line: which server, where, which variable."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError

from services.platform.config import Settings
from services.platform.kafka.clients import KafkaAccessRefused
from services.platform.kafka.producer import BrokerUnavailable
from services.platform.unreachable import ServerUnreachable, probe_database, recognise
from tests.cli_env import closed_port

SETTINGS = Settings.from_env(
    {
        "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092,kafka-2:9092",
        "DATABASE_URL": "postgresql://owner:secret@db-owner:5432/shouwang",
        "SHOUWANG_READER_DATABASE_URL": "postgresql://reader:secret@db-replica:6432/shouwang",
    }
)


def _raised_in(module: str, exc: BaseException) -> BaseException:
    """`exc` as if raised by code of `module` (the frames are what recognise looks at)."""
    namespace = {"__name__": module, "exc": exc}
    try:
        exec("def connect():\n    raise exc\nconnect()", namespace)
    except BaseException as raised:  # handed back to the test
        return raised
    raise AssertionError("not raised")


def test_kafka_by_type_and_through_our_wrapper():
    direct = recognise(KafkaConnectionError("Unable to bootstrap"), SETTINGS)
    assert str(direct) == (
        "cannot reach Kafka at kafka-1:9092,kafka-2:9092 (KAFKA_BOOTSTRAP_SERVERS): "
        "no bootstrap server answered"
    )
    wrapped = recognise(BrokerUnavailable("no acknowledgement within 10 s"), SETTINGS)
    assert str(wrapped).startswith("cannot reach Kafka at kafka-1:9092,kafka-2:9092 (")


def test_a_refusal_keeps_its_own_words():
    refused = KafkaAccessRefused("Kafka at kafka-1:9092 refused SCRAM-SHA-256 authentication")
    assert str(recognise(refused, SETTINGS)) == str(refused)


def test_postgresql_names_the_variable_whose_address_failed():
    error = ConnectionRefusedError(111, "Connect call failed ('db-replica', 6432)")
    found = recognise(_raised_in("asyncpg.connect_utils", error), SETTINGS)
    assert (found.server, found.where, found.variable) == (
        "PostgreSQL",
        "db-replica:6432",
        "SHOUWANG_READER_DATABASE_URL",
    )
    assert "secret" not in str(found)


def test_an_os_error_outside_the_clients_is_not_a_server():
    assert recognise(_raised_in("services.audit.archive", FileNotFoundError("x")), SETTINGS) is None
    assert recognise(ValueError("a bug"), SETTINGS) is None


def test_a_probe_of_a_closed_port_is_recognised_as_postgresql():
    port = closed_port()
    url = f"postgresql://u:secret@127.0.0.1:{port}/db"
    settings = Settings.from_env({"DATABASE_URL": url})
    with pytest.raises(OSError) as failed:
        asyncio.run(probe_database(url, connect_timeout=10))
    found = recognise(failed.value, settings)
    assert isinstance(found, ServerUnreachable)
    assert str(found).startswith(f"cannot reach PostgreSQL at 127.0.0.1:{port} (DATABASE_URL): ")
    assert "secret" not in str(found)
