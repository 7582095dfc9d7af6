"""LocalKafka's SASL listener options: the broker configuration they write, and the names and
passwords they refuse (kafka-storage would misparse them)."""

from __future__ import annotations

import pytest

from services.platform.localstack.errors import LocalStackError
from services.platform.localstack.kafka import LocalKafka, _read_properties


def written_config(kafka: LocalKafka) -> dict[str, str]:
    kafka.data_dir.mkdir(parents=True, exist_ok=True)
    kafka._write_config()
    return _read_properties(kafka.config_file)


def test_without_users_the_broker_has_no_sasl_listener(tmp_path):
    kafka = LocalKafka(tmp_path / "k", port=9001, controller_port=9002)
    config = written_config(kafka)
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:9001,CONTROLLER://127.0.0.1:9002"
    assert not any("sasl" in key for key in config)
    with pytest.raises(LocalStackError, match="no SASL listener"):
        _ = kafka.sasl_bootstrap


def test_scram_users_add_a_sasl_plaintext_listener_that_keeps_its_port(tmp_path):
    kafka = LocalKafka(tmp_path / "k", port=9001, controller_port=9002, scram_users={"svc": "pw-1"})
    config = written_config(kafka)
    sasl = f"SASL_PLAINTEXT://127.0.0.1:{kafka.sasl_port}"
    assert config["listeners"].endswith("," + sasl)
    assert config["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:9001,{sasl}"
    assert config["listener.security.protocol.map"].endswith("SASL_PLAINTEXT:SASL_PLAINTEXT")
    assert config["listener.name.sasl_plaintext.sasl.enabled.mechanisms"] == (
        "SCRAM-SHA-256,SCRAM-SHA-512"
    )
    assert "pw-1" not in kafka.config_file.read_text()  # credentials live in the metadata log
    again = LocalKafka(tmp_path / "k", scram_users={"svc": "pw-1"})
    assert again.sasl_bootstrap == kafka.sasl_bootstrap  # a restart keeps the address


def test_a_tls_keystore_makes_the_listener_sasl_ssl(tmp_path):
    keystore = tmp_path / "broker.pem"
    kafka = LocalKafka(tmp_path / "k", scram_users={"svc": "pw-1"}, tls_keystore=keystore)
    config = written_config(kafka)
    assert f"SASL_SSL://127.0.0.1:{kafka.sasl_port}" in config["listeners"]
    assert config["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert config["listener.name.sasl_ssl.ssl.keystore.location"] == str(keystore.resolve())
    with pytest.raises(LocalStackError, match="give scram_users too"):
        LocalKafka(tmp_path / "other", tls_keystore=keystore)


@pytest.mark.parametrize(
    ("users", "expected"),
    [
        ({"svc,admin": "pw"}, "SCRAM user name 'svc,admin'"),
        ({"": "pw"}, "SCRAM user name ''"),
        ({"svc": "pw]x"}, "SCRAM password of 'svc'"),
        ({"svc": "a b"}, "SCRAM password of 'svc'"),
    ],
)
def test_names_and_passwords_kafka_storage_would_misparse_are_refused(tmp_path, users, expected):
    with pytest.raises(LocalStackError, match=expected) as error:
        LocalKafka(tmp_path / "k", scram_users=users)
    assert "pw]x" not in str(error.value)
