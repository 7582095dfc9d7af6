"""The one place Kafka clients are made, so each gets the deployment's security settings.

Call sites say what the client is for (group, isolation, timeouts); these factories add the
SASL/TLS keyword arguments. `security=None` reads them from the environment (KAFKA_SECURITY_*,
see services/platform/kafka/security.py) when the client is made, never at import time.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError, SaslAuthenticationFailed

from services.platform.kafka.security import KafkaSecurity


class KafkaAccessRefused(KafkaError):
    """The broker refused our credentials or we refused its certificate: retrying cannot help
    (KafkaError's `retriable` is False), a person has to fix the settings."""

    def __str__(self) -> str:
        # KafkaError prefixes its class name; ours is read by people, the message says it all.
        return str(self.args[0]) if self.args else "access to Kafka refused"


def _secured(security: KafkaSecurity | None, options: dict[str, Any]) -> dict[str, Any]:
    given = {
        "security_protocol",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "ssl_context",
    }
    clash = sorted(given & options.keys())
    if clash:
        # Security is configured in one place; a call site passing its own would silently win.
        raise TypeError(f"pass security settings through `security`, not {', '.join(clash)}")
    return {**(security or KafkaSecurity.from_env()).aiokafka_kwargs(), **options}


def producer(
    bootstrap: str, *, security: KafkaSecurity | None = None, **options: Any
) -> AIOKafkaProducer:
    """An AIOKafkaProducer on `bootstrap`; `options` go to aiokafka unchanged."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap, **_secured(security, options))


def consumer(
    *topics: str, bootstrap: str, security: KafkaSecurity | None = None, **options: Any
) -> AIOKafkaConsumer:
    """An AIOKafkaConsumer on `bootstrap`, subscribed to `topics` if any."""
    return AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, **_secured(security, options))


def admin(
    bootstrap: str, *, security: KafkaSecurity | None = None, **options: Any
) -> AIOKafkaAdminClient:
    """An AIOKafkaAdminClient on `bootstrap`."""
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, **_secured(security, options))


def faust_settings(security: KafkaSecurity | None = None) -> dict[str, Any]:
    """Keyword arguments for faust.App: its broker credentials (none for PLAINTEXT)."""
    return (security or KafkaSecurity.from_env()).faust_settings()


async def start(
    client: AIOKafkaProducer | AIOKafkaConsumer | AIOKafkaAdminClient,
    bootstrap: str,
    security: KafkaSecurity | None = None,
) -> None:
    """Start `client`; if it cannot reach the cluster because of authentication or TLS, raise
    KafkaAccessRefused saying so.

    aiokafka only logs why each bootstrap server failed and raises "Unable to bootstrap",
    which reads like a broker that is down; a wrong password deserves its own message.
    """
    try:
        await client.start()
    except KafkaConnectionError as exc:
        # A client whose start failed still holds its connections and, for a consumer, its
        # coordinator task: stopped here, or asyncio reports it unclosed after the error.
        with contextlib.suppress(Exception):
            await client.stop()
        refusal = await access_refusal(bootstrap, security)
        if refusal is not None:
            raise KafkaAccessRefused(refusal) from exc
        raise


async def access_refusal(
    bootstrap: str, security: KafkaSecurity | None = None, timeout_ms: int = 10_000
) -> str | None:
    """Why the first bootstrap server that answers refuses us (SASL or TLS), or None when one
    accepts or none can be reached. The message names the user, never the password."""
    security = security or KafkaSecurity.from_env()
    for host, port, _ in collect_hosts(bootstrap, randomize=False):
        try:
            conn = await create_conn(
                host, port, request_timeout_ms=timeout_ms, **security.aiokafka_kwargs()
            )
        except SaslAuthenticationFailed as exc:
            return (
                f"Kafka at {host}:{port} refused {security.mechanism} authentication as "
                f"{security.username!r} (check KAFKA_SASL_USERNAME and the password): {exc}"
            )
        except ssl.SSLCertVerificationError as exc:
            return (
                f"the TLS certificate of Kafka at {host}:{port} is not trusted (check "
                f"KAFKA_SSL_CAFILE and KAFKA_SSL_CHECK_HOSTNAME): {exc.verify_message}"
            )
        except (OSError, KafkaError, TimeoutError):
            continue  # down or unreachable: not a refusal; try the next server
        conn.close()
        return None
    return None
