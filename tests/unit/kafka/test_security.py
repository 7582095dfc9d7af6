"""Kafka security settings from the environment: every bad value is refused with the variable's
name and the reason, and the password never shows in repr, errors or client settings' repr."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer

from services.platform.config import SettingsError
from services.platform.kafka import clients
from services.platform.kafka.security import KafkaSecurity, KafkaSecuritySettingsError, Protocol

PASSWORD = "correct-horse-battery-staple"
SCRAM = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "shouwang",
    "KAFKA_SASL_PASSWORD": PASSWORD,
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A self-signed certificate and its key (PEM), made with the openssl command."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to make a test certificate"
    directory = tmp_path_factory.mktemp("pki")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    garbage = directory / "garbage.pem"
    garbage.write_text("not a certificate\n")
    return {"cert": cert, "key": key, "garbage": garbage}


def refused(env: dict[str, str]) -> str:
    with pytest.raises(KafkaSecuritySettingsError) as error:
        KafkaSecurity.from_env(env)
    assert isinstance(error.value, SettingsError)  # the CLI reports it and exits with 2
    message = str(error.value)
    assert PASSWORD not in message
    return message


def test_nothing_set_is_plaintext_and_changes_no_client_or_app():
    security = KafkaSecurity.from_env({})
    assert security.protocol is Protocol.PLAINTEXT
    assert security.aiokafka_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert security.faust_settings() == {}
    # empty values count as unset (templates often leave `NAME=`)
    assert KafkaSecurity.from_env({k: "" for k in SCRAM}) == security


def test_scram_gives_aiokafka_and_faust_the_credentials():
    security = KafkaSecurity.from_env({**SCRAM, "KAFKA_SECURITY_PROTOCOL": "sasl_plaintext"})
    assert security.aiokafka_kwargs() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "shouwang",
        "sasl_plain_password": PASSWORD,
    }
    credentials = security.faust_settings()["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("shouwang", PASSWORD)
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.protocol.value == "SASL_PLAINTEXT"


async def test_the_password_is_never_in_repr():
    security = KafkaSecurity.from_env(SCRAM)
    assert PASSWORD not in repr(security) and PASSWORD not in str(security)
    assert "shouwang" in repr(security)
    assert PASSWORD not in repr(security.faust_settings())
    consumer = clients.consumer(bootstrap="127.0.0.1:1", security=security)
    assert PASSWORD not in repr(consumer)
    await consumer.stop()


def test_password_from_a_file_drops_one_trailing_newline(tmp_path):
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    env = {**SCRAM, "KAFKA_SASL_PASSWORD": "", "KAFKA_SASL_PASSWORD_FILE": str(secret)}
    assert KafkaSecurity.from_env(env).password == PASSWORD
    secret.write_text(" " + PASSWORD + " \r\n")  # spaces are part of a password
    assert KafkaSecurity.from_env(env).password == " " + PASSWORD + " "


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL"}, "KAFKA_SECURITY_PROTOCOL='SASL': expected one of"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL='TLS': expected one of"),
        ({"KAFKA_SASL_MECHANISM": ""}, "KAFKA_SASL_MECHANISM is required"),
        ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM='GSSAPI': expected one of"),
        ({"KAFKA_SASL_MECHANISM": "SCRAM-SHA-1"}, "KAFKA_SASL_MECHANISM='SCRAM-SHA-1'"),
        ({"KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_SASL_MECHANISM=PLAIN sends the password"),
        ({"KAFKA_SASL_USERNAME": ""}, "KAFKA_SASL_USERNAME is required"),
        ({"KAFKA_SASL_USERNAME": " shouwang"}, "KAFKA_SASL_USERNAME: has surrounding spaces"),
        ({"KAFKA_SASL_USERNAME": "shou\nwang"}, "KAFKA_SASL_USERNAME: has surrounding spaces"),
        ({"KAFKA_SASL_PASSWORD": ""}, "KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE is req"),
        (
            {"KAFKA_SASL_PASSWORD_FILE": "/nonexistent/password"},
            "KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE are both set",
        ),
        ({"KAFKA_SSL_CAFILE": "/etc/ssl/ca.pem"}, "KAFKA_SSL_CAFILE is set but "),
        ({"KAFKA_SSL_CHECK_HOSTNAME": "0"}, "KAFKA_SSL_CHECK_HOSTNAME is set but "),
    ],
)
def test_bad_sasl_settings_are_refused_by_name(change, expected):
    assert expected in refused({**SCRAM, **change})


@pytest.mark.parametrize(
    "name",
    ["KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CAFILE"],
)
def test_a_variable_the_plaintext_protocol_ignores_is_refused(name):
    # a username without a protocol is a forgotten protocol, not a wish to send in the clear
    message = refused({name: "x"})
    assert message.startswith(f"{name} is set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (b"\n", "the file is empty"),
        (PASSWORD.encode() + b"\nsecond line\n", "more than one line"),
        (b"\xff\xfe\x00", "not UTF-8 text"),
        (b"x" * 5000, "5000 bytes is too long for a password"),
    ],
)
def test_bad_password_files_are_refused_without_their_content(tmp_path, content, expected):
    secret = tmp_path / "password"
    secret.write_bytes(content)
    env = {**SCRAM, "KAFKA_SASL_PASSWORD": "", "KAFKA_SASL_PASSWORD_FILE": str(secret)}
    message = refused(env)
    assert message.startswith(f"KAFKA_SASL_PASSWORD_FILE={str(secret)!r}: {expected}")


def test_a_missing_or_unreadable_password_file_is_refused(tmp_path):
    env = {**SCRAM, "KAFKA_SASL_PASSWORD": ""}
    missing = refused({**env, "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "absent")})
    assert "KAFKA_SASL_PASSWORD_FILE=" in missing and "cannot read it" in missing
    directory = refused({**env, "KAFKA_SASL_PASSWORD_FILE": str(tmp_path)})
    assert "cannot read it" in directory


def test_tls_verifies_the_broker_with_the_given_ca(pki):
    security = KafkaSecurity.from_env(
        {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(pki["cert"])}
    )
    kwargs = security.aiokafka_kwargs()
    assert kwargs["security_protocol"] == "SSL"
    context = kwargs["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "localhost"),),)]
    credentials = security.faust_settings()["broker_credentials"]
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol.value == "SSL"


def test_sasl_ssl_with_a_client_certificate_and_no_hostname_check(pki):
    env = {
        **SCRAM,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SSL_CAFILE": str(pki["cert"]),
        "KAFKA_SSL_CERTFILE": str(pki["cert"]),
        "KAFKA_SSL_KEYFILE": str(pki["key"]),
        "KAFKA_SSL_CHECK_HOSTNAME": "false",
    }
    security = KafkaSecurity.from_env(env)
    kwargs = security.aiokafka_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_plain_password"] == PASSWORD
    assert kwargs["ssl_context"].check_hostname is False
    credentials = security.faust_settings()["broker_credentials"]
    assert credentials.protocol.value == "SASL_SSL" and credentials.ssl_context is not None
    # PLAIN is accepted over TLS
    assert KafkaSecurity.from_env({**env, "KAFKA_SASL_MECHANISM": "PLAIN"}).mechanism == "PLAIN"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"},
            "KAFKA_SSL_CAFILE='/nonexistent/ca.pem': no ",
        ),
        ({"KAFKA_SSL_CAFILE": "garbage"}, "KAFKA_SSL_CAFILE: cannot build a TLS context"),
        ({"KAFKA_SSL_CERTFILE": "cert"}, "KAFKA_SSL_KEYFILE is required too"),
        ({"KAFKA_SSL_KEYFILE": "key"}, "KAFKA_SSL_CERTFILE is required too"),
        ({"KAFKA_SSL_KEY_PASSWORD": PASSWORD}, "KAFKA_SSL_KEY_PASSWORD is set without"),
        ({"KAFKA_SSL_CHECK_HOSTNAME": "maybe"}, "KAFKA_SSL_CHECK_HOSTNAME='maybe': expected 1"),
        (
            {"KAFKA_SSL_CERTFILE": "garbage", "KAFKA_SSL_KEYFILE": "key"},
            "KAFKA_SSL_CAFILE/CERTFILE/KEYFILE: cannot build a TLS context",
        ),
    ],
)
def test_bad_tls_settings_are_refused_by_name(pki, change, expected):
    files = {k: str(pki[v]) if v in pki else v for k, v in change.items() if k.endswith("FILE")}
    env = {"KAFKA_SECURITY_PROTOCOL": "SSL", **change, **files}
    assert expected in refused(env)


def test_a_call_site_cannot_override_the_security_settings():
    with pytest.raises(TypeError, match="pass security settings through `security`"):
        clients.producer("127.0.0.1:1", security=KafkaSecurity(), security_protocol="SSL")


async def test_the_factories_read_the_environment_when_no_settings_are_given(monkeypatch):
    for name, value in SCRAM.items():
        monkeypatch.setenv(name, value)
    consumer = clients.consumer("household.visits", bootstrap="127.0.0.1:1")
    assert isinstance(consumer, AIOKafkaConsumer)
    client = consumer._client
    assert (client._security_protocol, client._sasl_mechanism) == (
        "SASL_PLAINTEXT",
        "SCRAM-SHA-512",
    )
    assert client._sasl_plain_password == PASSWORD
    await consumer.stop()
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "KERBEROS")
    with pytest.raises(KafkaSecuritySettingsError, match="KAFKA_SASL_MECHANISM='KERBEROS'"):
        clients.admin("127.0.0.1:1")


async def test_a_broker_that_is_down_is_not_reported_as_a_refusal():
    # Only a broker that answers can refuse credentials; a closed port stays a connection
    # error (retriable), not an access problem.
    from aiokafka.errors import KafkaConnectionError

    security = KafkaSecurity.from_env(SCRAM)
    assert await clients.access_refusal("127.0.0.1:1", security, timeout_ms=2000) is None
    producer = clients.producer("127.0.0.1:1", security=security)
    with pytest.raises(KafkaConnectionError) as failure:
        await clients.start(producer, "127.0.0.1:1", security)
    assert not isinstance(failure.value, clients.KafkaAccessRefused)
    await producer.stop()


def test_a_command_stops_before_it_starts_when_a_variable_is_wrong(monkeypatch, capsys):
    from services.cli import main

    for name, value in SCRAM.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-1")
    assert main(["monitoring"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shouwang monitoring: KAFKA_SASL_MECHANISM='SCRAM-SHA-1': expected")
    assert PASSWORD not in err
