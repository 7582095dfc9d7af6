"""The services authenticate to a broker that requires SASL/SCRAM (over plaintext and over TLS)
with the settings the environment gives them; a wrong password or an untrusted certificate
fails fast, says why, and never shows the password."""

from __future__ import annotations

import logging
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from services.contract.codec import Codec
from services.contract.topics import RISK, TopicLayout, topic_for
from services.platform.kafka import clients
from services.platform.kafka.admin import ensure_topics
from services.platform.kafka.log import KafkaLog
from services.platform.kafka.producer import BrokerUnavailable, KafkaSink
from services.platform.localstack.ports import free_ports
from services.platform.localstack.processes import stop_child
from services.tools.workers import monitoring_env, start_monitoring_worker
from tests.integration.kafka.pki import make_pki
from tests.seed_households import marginal

pytestmark = pytest.mark.integration
CODEC = Codec.default()
LAYOUT = TopicLayout(household_partitions=2, other_partitions=1)
USER = "shouwang-svc"


def scram_env(password: str, mechanism: str = "SCRAM-SHA-256") -> dict[str, str]:
    return {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": USER,
        "KAFKA_SASL_PASSWORD": password,
    }


def start_monitoring(bootstrap: str, home: Path, env: dict[str, str]) -> subprocess.Popen:
    (port,) = free_ports(1)
    home.mkdir(parents=True, exist_ok=True)
    worker_env = monitoring_env(
        bootstrap,
        home,
        f"scram-it-{uuid.uuid4().hex[:6]}",
        port,
        base={k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")},
        SHOUWANG_PARTITIONS=str(LAYOUT.household_partitions),
        SHOUWANG_OTHER_PARTITIONS=str(LAYOUT.other_partitions),
        **env,
    )
    return start_monitoring_worker(worker_env, home / "worker.log")


async def produce_and_read_back(bootstrap: str) -> tuple[str, list[str], list]:
    """The visits producer writes a household's records; the audit log reader reads them back."""
    household = f"sec-{uuid.uuid4().hex[:8]}"
    records = marginal(household)
    sink = KafkaSink(bootstrap, timeout=60)
    try:
        for event_type, record in records:
            await sink.send(
                topic_for(f"shouwang.events.{event_type}").name,
                household.encode(),
                CODEC.encode(event_type, record),
            )
    finally:
        await sink.close()
    topics = sorted({topic_for(f"shouwang.events.{t}").name for t, _ in records})
    read = [r async for batch in KafkaLog(bootstrap, topics).batches() for r in batch]
    ids = {str(CODEC.decode(r.value).record["event_id"]) for r in read}
    assert ids == {str(record["event_id"]) for _, record in records}
    return household, topics, read


async def assert_worker_assesses(
    bootstrap: str, household: str, home: Path, env: dict[str, str]
) -> None:
    """A monitoring worker (faust) run with `env` assesses the household; its output is read
    from the risk topic with the test's own settings (the environment)."""
    worker = start_monitoring(bootstrap, home, env)
    watcher = clients.consumer(
        RISK.name,
        bootstrap=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await clients.start(watcher, bootstrap)
    try:
        # The registry entry and the income are on different topics, so the worker may assess
        # the household after either one first: wait for the assessment of both.
        seen: list[tuple[str, str]] = []
        deadline = time.monotonic() + 300
        while not seen or seen[-1] != ("FLAGGED", "MARGINAL"):
            log = home / "worker.log"
            assert worker.poll() is None, f"the worker exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"assessments {seen}: {log.read_text()[-2000:]}"
            for batch in (await watcher.getmany(timeout_ms=500)).values():
                for r in batch:
                    decoded = CODEC.decode(r.value).record
                    if decoded["household_id"] == household:
                        seen.append((decoded["workflow"], decoded["category"]))
    finally:
        await watcher.stop()
        stop_child(worker)


async def test_services_authenticate_with_scram_and_a_wrong_password_is_refused(
    local_kafka_factory, tmp_path, monkeypatch, caplog
):
    password = f"pw-{uuid.uuid4().hex}"
    wrong = f"wrong-{uuid.uuid4().hex}"
    kafka = local_kafka_factory(scram_users={USER: password})
    kafka.start(timeout=300)
    bootstrap = kafka.sasl_bootstrap
    # The in-process clients read the environment, as the services do; the password comes
    # from a file here (a mounted secret), and directly for the worker below.
    secret = tmp_path / "kafka-password"
    secret.write_text(password + "\n")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", USER)
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret))
    await ensure_topics(bootstrap, LAYOUT)
    household, topics, read = await produce_and_read_back(bootstrap)

    # A faust worker (monitoring) authenticates with SCRAM-SHA-512 and assesses the household.
    env = scram_env(password, "SCRAM-SHA-512")
    await assert_worker_assesses(bootstrap, household, tmp_path / "worker", env)

    # A wrong password: the client gives up at once (no retry loop until a timeout), aiokafka's
    # log says the credentials were refused, and the password appears nowhere.
    monkeypatch.delenv("KAFKA_SASL_PASSWORD_FILE")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", wrong)
    caplog.set_level(logging.ERROR, logger="aiokafka")
    refused = KafkaSink(bootstrap, timeout=120)
    with pytest.raises(BrokerUnavailable) as failure:
        await refused.send(topics[0], household.encode(), b"never written")
    await refused.close()
    # The refusal, not "no acknowledgement within 120 s": it failed by itself, and says why.
    assert str(failure.value).startswith(
        f"KafkaAccessRefused: Kafka at {bootstrap} refused SCRAM-SHA-256 authentication as '{USER}'"
    ), failure.value
    assert "invalid credentials" in str(failure.value)
    assert "SaslAuthenticationFailed" in caplog.text  # aiokafka's own log line
    assert wrong not in caplog.text and wrong not in str(failure.value)
    producer = clients.producer(bootstrap, request_timeout_ms=30_000)
    with pytest.raises(clients.KafkaAccessRefused, match="refused SCRAM-SHA-256 authentication"):
        await clients.start(producer, bootstrap)
    await producer.stop()
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", password)
    after = [r async for batch in KafkaLog(bootstrap, topics).batches() for r in batch]
    assert len(after) == len(read)  # nothing was written with the wrong password

    # The worker with a wrong password stops with the reason instead of hanging.
    refused_worker = start_monitoring(bootstrap, tmp_path / "refused", scram_env(wrong))
    try:
        code = refused_worker.wait(240)
    finally:
        stop_child(refused_worker)
    output = (tmp_path / "refused" / "worker.log").read_text(errors="replace")
    assert code == 3, output[-2000:]  # a server refusing us (README "Exit status")
    assert (
        f"shouwang monitoring: Kafka at {bootstrap} refused SCRAM-SHA-256 authentication as "
        f"'{USER}'"
    ) in output, output[-2000:]
    assert wrong not in output and password not in output


async def test_services_authenticate_over_tls_and_an_untrusted_broker_is_refused(
    local_kafka_factory, tmp_path, monkeypatch
):
    password = f"pw-{uuid.uuid4().hex}"
    pki = make_pki(tmp_path / "pki")
    stranger = make_pki(tmp_path / "stranger", name="someone-else")
    kafka = local_kafka_factory(scram_users={USER: password}, tls_keystore=pki.keystore)
    kafka.start(timeout=300)
    bootstrap = kafka.sasl_bootstrap
    tls_env = {
        **scram_env(password, "SCRAM-SHA-512"),
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SSL_CAFILE": str(pki.ca),
    }
    for name, value in tls_env.items():
        monkeypatch.setenv(name, value)
    await ensure_topics(bootstrap, LAYOUT)
    household, _, _ = await produce_and_read_back(bootstrap)
    await assert_worker_assesses(bootstrap, household, tmp_path / "worker", tls_env)

    # A CA that did not sign the broker's certificate: refused before any password is sent.
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(stranger.ca))
    with pytest.raises(clients.KafkaAccessRefused, match="is not trusted") as untrusted:
        await ensure_topics(bootstrap, LAYOUT)
    assert password not in str(untrusted.value)

    # The certificate names 127.0.0.1, not "localhost": the name check refuses a bootstrap
    # address it does not cover, unless it is turned off.
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(pki.ca))
    by_name = f"localhost:{kafka.sasl_port}"
    with pytest.raises(clients.KafkaAccessRefused, match="is not trusted"):
        await ensure_topics(by_name, LAYOUT)
    monkeypatch.setenv("KAFKA_SSL_CHECK_HOSTNAME", "0")
    assert await ensure_topics(by_name, LAYOUT) == []  # reached it: every topic is there
