"""The no-Docker local stack: a real Kafka broker, its restarts, and the stack commands."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import UnknownTopicOrPartitionError

from services.platform.config import Settings, kafka_bootstrap
from services.platform.localstack import stack
from services.platform.localstack.errors import LocalStackError
from services.platform.localstack.jars import DEFAULT_POM, kafka_version
from services.platform.localstack.kafka import QUICK_RESTART_CONFIG, LocalKafka
from services.platform.localstack.processes import pid_alive
from services.platform.localstack.provision import provide_kafka

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


async def create_topic(bootstrap: str, partitions: int = 3) -> str:
    topic = f"test.localstack.{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=value)
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, count: int) -> list[bytes]:
    """Read `count` records from the start of `topic`, within 30 seconds."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < count:
                batches = await consumer.getmany(timeout_ms=500)
                received += [record.value for records in batches.values() for record in records]
    finally:
        await consumer.stop()
    return received


async def test_broker_round_trips_records(kafka_bootstrap: str) -> None:
    topic = await create_topic(kafka_bootstrap)
    values = [f"record-{n}".encode() for n in range(20)]

    await produce(kafka_bootstrap, topic, values)

    assert sorted(await consume(kafka_bootstrap, topic, len(values))) == sorted(values)


async def test_topics_are_not_created_implicitly(kafka_bootstrap: str) -> None:
    typo = f"test.typo.{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=2000)
    await producer.start()
    try:
        with pytest.raises(UnknownTopicOrPartitionError):
            await producer.send_and_wait(typo, b"x")
    finally:
        await producer.stop()

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert typo not in await admin.list_topics()
    finally:
        await admin.close()


async def test_killed_broker_restarts_with_its_data_and_address(local_kafka_factory) -> None:
    kafka: LocalKafka = local_kafka_factory(extra_config=QUICK_RESTART_CONFIG)
    bootstrap = kafka.start()
    topic = await create_topic(bootstrap)
    values = [f"before-crash-{n}".encode() for n in range(5)]
    await produce(bootstrap, topic, values)

    kafka.kill()
    assert not kafka.is_running
    # A fresh handle, as another process would make: it finds the recorded ports.
    restarted = LocalKafka(kafka.data_dir, extra_config=QUICK_RESTART_CONFIG)
    assert restarted.start() == bootstrap

    assert sorted(await consume(bootstrap, topic, len(values))) == sorted(values)
    restarted.stop()
    assert not restarted.is_running


def test_broker_that_cannot_bind_reports_its_log(local_kafka_factory) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        kafka: LocalKafka = local_kafka_factory(port=taken.getsockname()[1])
        with pytest.raises(LocalStackError, match="Address already in use") as failure:
            kafka.start(timeout=60)
    assert str(kafka.log_file) in str(failure.value)
    assert not kafka.is_running


def test_missing_tools_are_named(local_kafka_factory, tmp_path: Path) -> None:
    with pytest.raises(LocalStackError, match="no-such-java"):
        local_kafka_factory(java="no-such-java").start()

    changed_pom = tmp_path / "pom.xml"  # a new hash, so the cached classpath does not apply
    changed_pom.write_text(DEFAULT_POM.read_text() + "<!-- changed -->\n")
    with pytest.raises(LocalStackError, match="no-such-mvn"):
        local_kafka_factory(pom=changed_pom, mvn="no-such-mvn").start()


def test_version_comes_from_the_pom() -> None:
    assert kafka_version() == "4.1.1"


def test_kafka_from_environment_starts_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    with provide_kafka(tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}) as chosen:
        assert chosen.url == kafka_bootstrap
        assert chosen.server is None
    assert list(tmp_path.iterdir()) == []


def run_stack(home: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.platform.localstack", command, "--home", str(home)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run_shouwang(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`shouwang ARGS` with `home` as SHOUWANG_HOME and no server named in the environment."""
    env = {
        k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS" and "_URL" not in k
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=REPO,
        env={**env, "SHOUWANG_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def test_stack_commands_outlive_their_process(stack_tmp_dir: Path) -> None:
    home = stack_tmp_dir / f"home-{uuid.uuid4().hex[:8]}"
    try:
        started = run_stack(home, "up")
        assert started.returncode == 0, started.stderr
        urls = dict(line.split("=", 1) for line in started.stdout.splitlines())

        # The `up` process has exited; the servers it started are still there.
        status = run_stack(home, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["kafka"]["bootstrap"] == urls["KAFKA_BOOTSTRAP_SERVERS"]
        assert report["postgres"]["database_url"] == urls["DATABASE_URL"]
        topic = await create_topic(urls["KAFKA_BOOTSTRAP_SERVERS"], partitions=1)
        await produce(urls["KAFKA_BOOTSTRAP_SERVERS"], topic, [b"x"])

        assert stack.up(home) == {
            "bootstrap": urls["KAFKA_BOOTSTRAP_SERVERS"],
            "database_url": urls["DATABASE_URL"],
        }
        assert json.loads(run_stack(home, "status").stdout) == report  # same pids: nothing new
        assert run_shouwang(home, "stack", "status").returncode == 0

        # Commands find the running stack's servers when the environment names none.
        named_none = Settings.from_env({"SHOUWANG_HOME": str(home)})
        assert kafka_bootstrap(named_none) == urls["KAFKA_BOOTSTRAP_SERVERS"]
        simulated = run_shouwang(home, "simulate", "--direct", "--scale", "0.002", "--days", "3")
        assert simulated.returncode == 0, simulated.stdout + simulated.stderr

        stopped = run_stack(home, "down")
        assert stopped.returncode == 0, stopped.stderr
        assert run_stack(home, "status").returncode == 3
        assert run_shouwang(home, "stack", "status").returncode == 3  # README "Exit status"
        assert not pid_alive(report["kafka"]["pid"])
        assert not pid_alive(report["postgres"]["pid"])
    finally:
        stack.down(home)
