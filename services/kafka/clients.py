"""The one place Kafka clients are made, so each gets the deployment's security settings.

Call sites say what the client is for (group, isolation, timeouts); these factories add the
SASL/TLS keyword arguments. `security=None` reads them from the environment (KAFKA_SECURITY_*,
see services/kafka/security.py) when the client is made, never at import time.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from services.kafka.security import KafkaSecurity


def _secured(security: KafkaSecurity | None, options: dict[str, Any]) -> dict[str, Any]:
    given = {"security_protocol", "sasl_mechanism", "sasl_plain_password", "ssl_context"}
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
