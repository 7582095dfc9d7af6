"""The console's settings from the environment, checked once at start-up.

SHOUWANG_CONSOLE_PORT: TCP port of the console (default 8084; the monitoring worker has 8083); it
    listens on SHOUWANG_BIND_HOST.
SHOUWANG_CONSOLE_VISITS_URL: where the visits API answers, the console's only way to write
    (default http://127.0.0.1:$SHOUWANG_VISITS_PORT, itself 8081 by default).
SHOUWANG_CONSOLE_SESSION_MINUTES: a session unused this long is forgotten (default 30); a
    session lasts at most 12 hours whatever its use.
SHOUWANG_CONSOLE_SECURE_COOKIE: 1 marks the session cookie Secure (sent over HTTPS only): set it
    behind a TLS proxy. Default 0: the console serves plain HTTP on loopback; a request that
    arrives over TLS gets a Secure cookie whatever this says.
SHOUWANG_CONSOLE_LANGUAGE: the language before a person picks one, zh (default) or en.
SHOUWANG_POLICY_DIR: the policy files, as the monitoring worker reads them (default: the shipped
    ones); the queue's deadlines come from the version each assessment names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.platform.config import SettingsError

LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class ConsoleSettings:
    port: int = 8084
    visits_url: str = "http://127.0.0.1:8081"
    session_minutes: int = 30
    secure_cookie: bool = False
    language: str = "zh"
    policy_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ConsoleSettings:
        port = _port(env, "SHOUWANG_CONSOLE_PORT", cls.port)
        visits_port = _port(env, "SHOUWANG_VISITS_PORT", 8081)
        visits_url = env.get("SHOUWANG_CONSOLE_VISITS_URL") or f"http://127.0.0.1:{visits_port}"
        scheme, sep, rest = visits_url.partition("://")
        if (
            scheme not in ("http", "https")
            or not sep
            or not rest
            or any(c.isspace() for c in visits_url)
        ):
            raise SettingsError(
                f"SHOUWANG_CONSOLE_VISITS_URL={visits_url!r}: expected an http(s):// URL"
            )
        minutes = _whole(env, "SHOUWANG_CONSOLE_SESSION_MINUTES", cls.session_minutes)
        if not 1 <= minutes <= 720:
            raise SettingsError(f"SHOUWANG_CONSOLE_SESSION_MINUTES={minutes}: between 1 and 720")
        secure = env.get("SHOUWANG_CONSOLE_SECURE_COOKIE", "0")
        if secure not in ("0", "1", ""):
            raise SettingsError(f"SHOUWANG_CONSOLE_SECURE_COOKIE={secure!r}: expected 0 or 1")
        language = env.get("SHOUWANG_CONSOLE_LANGUAGE") or cls.language
        if language not in LANGUAGES:
            raise SettingsError(
                f"SHOUWANG_CONSOLE_LANGUAGE={language!r}: one of {', '.join(LANGUAGES)}"
            )
        return cls(
            port=port,
            visits_url=visits_url.rstrip("/"),
            session_minutes=minutes,
            secure_cookie=secure == "1",
            language=language,
            policy_dir=Path(env["SHOUWANG_POLICY_DIR"]) if env.get("SHOUWANG_POLICY_DIR") else None,
        )


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    value = _whole(env, name, default)
    if not 1 <= value <= 65535:
        raise SettingsError(f"{name}={value}: not a TCP port")
    return value
