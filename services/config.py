"""Settings from the environment (12-factor), validated once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.contract.topics import TopicLayout


class SettingsError(ValueError):
    """An environment variable with a value the system cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable; each field documented in the README's table."""

    kafka_bootstrap: str | None  # KAFKA_BOOTSTRAP_SERVERS; None = the local stack's broker
    database_url: str | None  # DATABASE_URL; None = embedded PostgreSQL
    home: Path  # SHOUWANG_HOME: local stack data, logs, pid files
    layout: TopicLayout

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        try:
            layout = TopicLayout(
                household_partitions=_positive(env, "SHOUWANG_PARTITIONS", 12),
                other_partitions=_positive(env, "SHOUWANG_OTHER_PARTITIONS", 3),
                replication_factor=_positive(env, "SHOUWANG_REPLICATION_FACTOR", 1),
                min_insync_replicas=_positive(env, "SHOUWANG_MIN_INSYNC_REPLICAS", 1),
            )
        except ValueError as exc:
            raise SettingsError(f"topic layout: {exc}") from exc
        return cls(
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            database_url=env.get("DATABASE_URL") or None,
            home=Path(env.get("SHOUWANG_HOME") or ".shouwang").resolve(),
            layout=layout,
        )


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
    if value < 1:
        raise SettingsError(f"{name}={raw!r}: must be at least 1")
    return value
