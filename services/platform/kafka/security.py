"""How Kafka clients authenticate and encrypt: SASL/SCRAM and TLS settings from the environment.

Every client the services make (aiokafka producers, consumers, admin clients and faust apps)
takes its settings from one `KafkaSecurity`, so a deployment sets them once:

KAFKA_SECURITY_PROTOCOL: PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL.
KAFKA_SASL_MECHANISM: SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN (PLAIN only with SASL_SSL);
    required with SASL.
KAFKA_SASL_USERNAME: the SASL user; required with SASL.
KAFKA_SASL_PASSWORD / KAFKA_SASL_PASSWORD_FILE: the password, or a file holding it (a mounted
    secret; one trailing newline is dropped). Exactly one of the two with SASL.
KAFKA_SSL_CAFILE: PEM file of the CA(s) that signed the brokers' certificates; default: the
    system's trusted CAs.
KAFKA_SSL_CERTFILE / KAFKA_SSL_KEYFILE: the client's certificate and key (PEM) for mutual TLS;
    both or neither. KAFKA_SSL_KEY_PASSWORD(_FILE): the key's passphrase, if it has one.
KAFKA_SSL_CHECK_HOSTNAME: 1 (default) or 0; 0 only for brokers whose certificates do not name
    the host the client dials.
"""

from __future__ import annotations

import enum
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.platform.config import SettingsError


class KafkaSecuritySettingsError(SettingsError):
    """A Kafka security variable that is missing, contradictory or unusable.

    The message names the variable and why; it never contains a password.
    """


class Protocol(enum.Enum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def uses_sasl(self) -> bool:
        return self in (Protocol.SASL_PLAINTEXT, Protocol.SASL_SSL)

    @property
    def uses_tls(self) -> bool:
        return self in (Protocol.SSL, Protocol.SASL_SSL)


# GSSAPI and OAUTHBEARER need a Kerberos or token service we neither run nor test. PLAIN is
# accepted because some managed clusters offer nothing else, but only over TLS: over a
# plaintext connection it sends the password readable to anyone on the path.
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")
# A password or key longer than this is a wrong file (a certificate, a dump), not a secret.
_MAX_SECRET_BYTES = 4096


@dataclass(frozen=True)
class KafkaSecurity:
    """The security settings of every Kafka client; the default is PLAINTEXT, no auth.

    `password` is left out of repr() so that it never reaches a log or a traceback.
    """

    protocol: Protocol = Protocol.PLAINTEXT
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    key_password: str | None = field(default=None, repr=False)
    check_hostname: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
        """Parse and check the KAFKA_* security variables (see the module docstring).

        Raises KafkaSecuritySettingsError naming the first variable that is wrong and why.
        Variables that the chosen protocol does not use are refused too, because a SASL
        username set beside PLAINTEXT almost always means a forgotten protocol, and failing
        at start-up is kinder than connecting without the intended protection.
        """
        env = os.environ if environ is None else environ
        raw_protocol = _get(env, "KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT"
        try:
            protocol = Protocol(raw_protocol.upper())
        except ValueError:
            raise KafkaSecuritySettingsError(
                f"KAFKA_SECURITY_PROTOCOL={raw_protocol!r}: expected one of "
                + ", ".join(p.value for p in Protocol)
            ) from None

        sasl_names = (
            "KAFKA_SASL_MECHANISM",
            "KAFKA_SASL_USERNAME",
            "KAFKA_SASL_PASSWORD",
            "KAFKA_SASL_PASSWORD_FILE",
        )
        tls_names = (
            "KAFKA_SSL_CAFILE",
            "KAFKA_SSL_CERTFILE",
            "KAFKA_SSL_KEYFILE",
            "KAFKA_SSL_KEY_PASSWORD",
            "KAFKA_SSL_KEY_PASSWORD_FILE",
            "KAFKA_SSL_CHECK_HOSTNAME",
        )
        unused = [
            name
            for name in (() if protocol.uses_sasl else sasl_names)
            + (() if protocol.uses_tls else tls_names)
            if _get(env, name) is not None
        ]
        if unused:
            raise KafkaSecuritySettingsError(
                f"{unused[0]} is set but KAFKA_SECURITY_PROTOCOL={protocol.value} does not use "
                "it; set the protocol that needs it, or unset it"
            )

        mechanism = username = password = None
        if protocol.uses_sasl:
            raw_mechanism = _get(env, "KAFKA_SASL_MECHANISM")
            if raw_mechanism is None:
                # No default: a client and broker that disagree fail with a vague handshake
                # error, so the deployment names the mechanism its broker enables.
                raise KafkaSecuritySettingsError(
                    f"KAFKA_SASL_MECHANISM is required with KAFKA_SECURITY_PROTOCOL="
                    f"{protocol.value}: one of " + ", ".join(MECHANISMS)
                )
            mechanism = raw_mechanism.upper()
            if mechanism not in MECHANISMS:
                raise KafkaSecuritySettingsError(
                    f"KAFKA_SASL_MECHANISM={env['KAFKA_SASL_MECHANISM']!r}: expected one of "
                    + ", ".join(MECHANISMS)
                )
            if mechanism == "PLAIN" and not protocol.uses_tls:
                raise KafkaSecuritySettingsError(
                    "KAFKA_SASL_MECHANISM=PLAIN sends the password in clear text; it is only "
                    "allowed with KAFKA_SECURITY_PROTOCOL=SASL_SSL (or use SCRAM-SHA-512)"
                )
            username = _get(env, "KAFKA_SASL_USERNAME")
            if username is None:
                raise KafkaSecuritySettingsError(
                    f"KAFKA_SASL_USERNAME is required with KAFKA_SECURITY_PROTOCOL={protocol.value}"
                )
            if username != username.strip() or any(ord(c) < 32 for c in username):
                raise KafkaSecuritySettingsError(
                    "KAFKA_SASL_USERNAME: has surrounding spaces or control characters"
                )
            password = _secret(env, "KAFKA_SASL_PASSWORD", required=True)

        cafile = certfile = keyfile = key_password = None
        check_hostname = True
        if protocol.uses_tls:
            cafile = _readable_file(env, "KAFKA_SSL_CAFILE")
            certfile = _readable_file(env, "KAFKA_SSL_CERTFILE")
            keyfile = _readable_file(env, "KAFKA_SSL_KEYFILE")
            if (certfile is None) != (keyfile is None):
                missing = "KAFKA_SSL_KEYFILE" if keyfile is None else "KAFKA_SSL_CERTFILE"
                raise KafkaSecuritySettingsError(
                    f"{missing} is required too: a client certificate and its key go together"
                )
            key_password = _secret(env, "KAFKA_SSL_KEY_PASSWORD", required=False)
            if key_password is not None and keyfile is None:
                raise KafkaSecuritySettingsError(
                    "KAFKA_SSL_KEY_PASSWORD is set without KAFKA_SSL_KEYFILE"
                )
            raw_check = _get(env, "KAFKA_SSL_CHECK_HOSTNAME")
            if raw_check is not None:
                if raw_check.lower() in _TRUE:
                    check_hostname = True
                elif raw_check.lower() in _FALSE:
                    check_hostname = False
                else:
                    raise KafkaSecuritySettingsError(
                        f"KAFKA_SSL_CHECK_HOSTNAME={raw_check!r}: expected 1 or 0"
                    )

        security = cls(
            protocol=protocol,
            mechanism=mechanism,
            username=username,
            password=password,
            cafile=cafile,
            certfile=certfile,
            keyfile=keyfile,
            key_password=key_password,
            check_hostname=check_hostname,
        )
        if protocol.uses_tls:
            security.ssl_context()  # a CA or key file that does not load fails here, at start-up
        return security

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context (None without TLS): verifies the broker, checks its name."""
        if not self.protocol.uses_tls:
            return None
        from aiokafka.helpers import create_ssl_context

        try:
            context = create_ssl_context(
                cafile=str(self.cafile) if self.cafile else None,
                certfile=str(self.certfile) if self.certfile else None,
                keyfile=str(self.keyfile) if self.keyfile else None,
                password=self.key_password,
            )
        except (ssl.SSLError, OSError) as exc:
            # The library's message names the file's problem, never the passphrase.
            names = (
                "KAFKA_SSL_CAFILE" if self.certfile is None else "KAFKA_SSL_CAFILE/CERTFILE/KEYFILE"
            )
            raise KafkaSecuritySettingsError(
                f"{names}: cannot build a TLS context: {type(exc).__name__}: {exc}"
            ) from None
        context.check_hostname = self.check_hostname
        return context

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol.value}
        if self.protocol.uses_sasl:
            kwargs |= {
                "sasl_mechanism": self.mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password,
            }
        if self.protocol.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def faust_settings(self) -> dict[str, Any]:
        """Settings for faust.App: `broker_credentials`, or nothing for PLAINTEXT."""
        import faust

        if self.protocol is Protocol.PLAINTEXT:
            return {}
        if self.protocol is Protocol.SSL:
            return {"broker_credentials": faust.SSLCredentials(self.ssl_context())}
        # faust picks SASL_SSL over SASL_PLAINTEXT by whether it is given a context.
        return {
            "broker_credentials": faust.SASLCredentials(
                username=self.username,
                password=self.password,
                mechanism=self.mechanism,
                ssl_context=self.ssl_context(),
            )
        }


def _get(env: Mapping[str, str], name: str) -> str | None:
    # An empty value counts as unset: compose files and CI templates often leave `NAME=`.
    value = env.get(name)
    return value if value else None


def _secret(env: Mapping[str, str], name: str, *, required: bool) -> str | None:
    direct = _get(env, name)
    file_name = f"{name}_FILE"
    path = _get(env, file_name)
    if direct is not None and path is not None:
        raise KafkaSecuritySettingsError(f"{name} and {file_name} are both set; set only one")
    if path is not None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise KafkaSecuritySettingsError(
                f"{file_name}={path!r}: cannot read it: {exc.strerror or exc}"
            ) from None
        if len(data) > _MAX_SECRET_BYTES:
            raise KafkaSecuritySettingsError(
                f"{file_name}={path!r}: {len(data)} bytes is too long for a password"
            )
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise KafkaSecuritySettingsError(f"{file_name}={path!r}: not UTF-8 text") from None
        # Secret files usually end with the newline an editor or `echo` adds; only that goes.
        direct = text.removesuffix("\n").removesuffix("\r")
        if not direct:
            raise KafkaSecuritySettingsError(f"{file_name}={path!r}: the file is empty")
        if "\n" in direct or "\r" in direct:
            raise KafkaSecuritySettingsError(
                f"{file_name}={path!r}: more than one line; expected only the password"
            )
    if direct is None and required:
        raise KafkaSecuritySettingsError(
            f"{name} or {file_name} is required with SASL authentication"
        )
    return direct


def _readable_file(env: Mapping[str, str], name: str) -> Path | None:
    raw = _get(env, name)
    if raw is None:
        return None
    path = Path(raw)
    if not path.is_file():
        raise KafkaSecuritySettingsError(f"{name}={raw!r}: no such file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise KafkaSecuritySettingsError(
            f"{name}={raw!r}: cannot read it: {exc.strerror or exc}"
        ) from None
    return path
