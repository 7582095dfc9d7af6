"""Settings from the environment (12-factor), validated once at start-up."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.contract.topics import TopicLayout
from services.platform.quotas import DEFAULT_QUOTAS, Quota


class SettingsError(ValueError):
    """An environment variable with a value the system cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable; each field documented in the README's table."""

    kafka_bootstrap: str | None  # KAFKA_BOOTSTRAP_SERVERS; None = the local stack's broker
    database_url: str | None  # DATABASE_URL (the owner: migrations); None = embedded PostgreSQL
    home: Path  # SHOUWANG_HOME: local stack data, logs, pid files
    layout: TopicLayout
    # SHOUWANG_BIND_HOST: the address every HTTP server of the system listens on (the visits
    # API, the operator API, the workers' web servers, the projector's metrics). Loopback by
    # default: a deployment opens what it serves (deploy/docker-compose.yml sets 0.0.0.0).
    bind_host: str = "127.0.0.1"
    # Support service and read model (services/support/README.md).
    catalogue_path: Path = (
        Path(__file__).resolve().parents[1] / "contract/catalogues/dianjiang.toml"
    )
    projector_group: str = "shouwang-readmodel"  # SHOUWANG_PROJECTOR_GROUP
    projector_batch_size: int = 2000  # SHOUWANG_PROJECTOR_BATCH
    projector_metrics_port: int | None = None  # SHOUWANG_PROJECTOR_METRICS_PORT
    support_metrics_port: int | None = None  # SHOUWANG_SUPPORT_METRICS_PORT
    support_api_port: int = 8082  # SHOUWANG_SUPPORT_API_PORT
    support_app_id: str = "shouwang-support"  # SHOUWANG_SUPPORT_APP_ID (faust app / group id)
    support_rocksdb: bool = False  # SHOUWANG_SUPPORT_ROCKSDB=1: tables in RocksDB under home
    visits: VisitsSettings = field(default_factory=lambda: VisitsSettings())  # see its docstring
    # Connections by duty (README "Database roles"); None = the owner's, DATABASE_URL.
    projector_database_url: str | None = None  # SHOUWANG_PROJECTOR_DATABASE_URL
    reader_database_url: str | None = None  # SHOUWANG_READER_DATABASE_URL
    tokens_database_url: str | None = None  # SHOUWANG_TOKENS_DATABASE_URL
    visits_database_url: str | None = None  # SHOUWANG_VISITS_DATABASE_URL
    # SHOUWANG_READY_MAX_LAG: /readyz of a consumer (the workers, the projector) answers 503
    # while it is more records than this behind the end of its partitions (platform/health.py).
    ready_max_lag: int = 10_000

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
            database_url=_database_url(env, "DATABASE_URL"),
            home=Path(env.get("SHOUWANG_HOME") or ".shouwang").resolve(),
            layout=layout,
            bind_host=_host(env, "SHOUWANG_BIND_HOST") or cls.bind_host,
            visits=VisitsSettings.from_env(env),
            catalogue_path=Path(env["SHOUWANG_CATALOGUE"]).resolve()
            if env.get("SHOUWANG_CATALOGUE")
            else cls.catalogue_path,
            projector_group=env.get("SHOUWANG_PROJECTOR_GROUP") or cls.projector_group,
            projector_batch_size=_positive(env, "SHOUWANG_PROJECTOR_BATCH", 2000),
            projector_metrics_port=_optional_port(env, "SHOUWANG_PROJECTOR_METRICS_PORT"),
            support_metrics_port=_optional_port(env, "SHOUWANG_SUPPORT_METRICS_PORT"),
            support_api_port=_optional_port(env, "SHOUWANG_SUPPORT_API_PORT") or 8082,
            support_app_id=env.get("SHOUWANG_SUPPORT_APP_ID") or cls.support_app_id,
            support_rocksdb=env.get("SHOUWANG_SUPPORT_ROCKSDB", "") in ("1", "true", "yes"),
            projector_database_url=_database_url(env, "SHOUWANG_PROJECTOR_DATABASE_URL"),
            reader_database_url=_database_url(env, "SHOUWANG_READER_DATABASE_URL"),
            tokens_database_url=_database_url(env, "SHOUWANG_TOKENS_DATABASE_URL"),
            visits_database_url=_database_url(env, "SHOUWANG_VISITS_DATABASE_URL"),
            ready_max_lag=_whole(env, "SHOUWANG_READY_MAX_LAG", cls.ready_max_lag),
        )


def kafka_bootstrap(settings: Settings) -> str:
    """KAFKA_BOOTSTRAP_SERVERS, else the broker of the local stack running under the home."""
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    from services.platform.localstack import stack  # looked for only when no broker is named

    kafka = stack.status(settings.home).get("kafka", {})
    if kafka.get("running") and kafka.get("bootstrap"):
        return str(kafka["bootstrap"])
    raise SettingsError(
        "KAFKA_BOOTSTRAP_SERVERS is not set and no local stack runs under "
        f"{settings.home}; run `shouwang stack up` or set it"
    )


def _host(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    # An address (0.0.0.0, ::, 10.1.2.3) or a host name; not a URL, not host:port.
    if len(raw) > 253 or any(c.isspace() or c in "/@[]" for c in raw) or raw.count(":") == 1:
        raise SettingsError(f"{name}={raw!r}: expected an address or host name (e.g. 0.0.0.0)")
    return raw


def _database_url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    # The value may carry a password: errors name the variable and the problem, never the value.
    scheme, sep, _ = raw.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        raise SettingsError(f"{name}: expected a postgresql:// URL")
    if any(c.isspace() for c in raw):
        raise SettingsError(f"{name}: a URL has no spaces (percent-encode them as %20)")
    return raw


def _whole(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        bound = "must not be negative" if minimum == 0 else f"must be at least {minimum}"
        raise SettingsError(f"{name}={raw!r}: {bound}")
    return value


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    return _whole(env, name, default, minimum=1)


def _optional_port(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    value = _positive(env, name, 0)
    if value > 65535:
        raise SettingsError(f"{name}={raw!r}: not a TCP port")
    return value


@dataclass(frozen=True)
class VisitsSettings:
    """The visits ingest API (services/visits/README.md).

    SHOUWANG_VISITS_HOST: address to listen on (default SHOUWANG_BIND_HOST, itself 127.0.0.1).
    SHOUWANG_VISITS_PORT: TCP port of the API (default 8081).
    SHOUWANG_VISITS_MAX_BODY_BYTES: largest request body accepted; larger ones get 413
        (default 1048576, 1 MiB: a 500-record batch of visits is about 0.5 MiB).
    SHOUWANG_VISITS_MAX_BATCH: most records in one batch request; more get 413 (default 500).
    SHOUWANG_VISITS_FUTURE_SKEW_SECONDS: how far in the future `occurred_at` may be (phones'
        clocks drift); further is refused with 422 (default 300).
    SHOUWANG_VISITS_REQUEST_TIMEOUT_SECONDS: longest wait for the broker's acknowledgement of a
        request's records; after it the API answers 503 with Retry-After (default 10).
    SHOUWANG_VISITS_RETRY_AFTER_SECONDS: the Retry-After sent with 503 and 429 answers (default 5).
    SHOUWANG_VISITS_MAX_IN_FLIGHT: write requests allowed to wait for the broker at once; one
        more is answered 429 (`overloaded`) with Retry-After once its body is read and checked,
        so memory stays bounded when Kafka cannot keep up (default 256).
    SHOUWANG_VISITS_OPERATOR_RESERVE: the share of SHOUWANG_VISITS_MAX_IN_FLIGHT only operator
        tokens may use, so an operator can still write while cadres and feeds fill the rest
        (default 0.25; 0 reserves nothing, below 1).
    SHOUWANG_VISITS_BODY_TIMEOUT_SECONDS: longest time a client may take to send a request's
        body once its headers are in; after it the API answers 408 and closes the connection,
        so a client trickling its body holds nothing for long (default 30: a 0.5 MiB batch over
        a 2G link; slower links send smaller batches).
    SHOUWANG_VISITS_{CADRE,FEED,OPERATOR}_CONCURRENCY: requests one token of that kind may have
        open at once (defaults 4, 16, 64); one more is answered 429 (`token_concurrency`).
    SHOUWANG_VISITS_{CADRE,FEED,OPERATOR}_RATE: requests per second one token of that kind may
        send on average (defaults 10, 100, 1000), and
    SHOUWANG_VISITS_{CADRE,FEED,OPERATOR}_BURST: how many it may send at once above that rate
        (a token bucket of this size; defaults 30, 200, 2000); beyond, 429 (`token_rate`) with
        Retry-After when the next request is allowed. A token's record may override any of the
        three (`shouwang tokens issue --max-concurrent --rate --burst`).
    SHOUWANG_TOKEN_CACHE_SECONDS: how long a token read from PostgreSQL is remembered without
        asking again (default 30); every service that checks tokens reads it. A revocation does
        not wait for it: revocations come from operator.actions within a second, and a cached
        token is used only while that feed is current (platform/auth/revocations.py). While
        the database is unreachable, cached tokens keep working for up to 10 minutes unless
        revoked.
    SHOUWANG_VISITS_MONITORING_URL: the monitoring worker's web server (any worker's: the
        household view answers from the one that owns the household), which the door asks
        where a household's entry or exit procedure stands before it takes a review decision
        that may skip a step (services/visits/README.md). Unset: no check (the fold still
        refuses a skipped step; shouwang_visits_procedure_unchecked_total{reason="not_configured"}).
    SHOUWANG_VISITS_MONITORING_TOKEN or SHOUWANG_VISITS_MONITORING_TOKEN_FILE (a file holding
        it): the token the door reads the view with, a read-only one (`shouwang tokens issue
        --kind auditor --holder visits-door`); without it the check is off (a warning at start).
    SHOUWANG_VISITS_MONITORING_TIMEOUT_SECONDS: longest wait for the view's answer (default 2);
        after it the decision is accepted unchecked (reason "unreachable") rather than refused.
    SHOUWANG_PERSONAL_KEY_CACHE_SECONDS: how long a household's or cadre's data key is kept in
        memory for sealing personal data (default 300): registry records of subjects seen
        within it are accepted while PostgreSQL is down; others get 503 with Retry-After.
    """

    host: str = "127.0.0.1"
    port: int = 8081
    max_body_bytes: int = 1_048_576
    max_batch: int = 500
    future_skew_seconds: int = 300
    request_timeout_seconds: float = 10.0
    retry_after_seconds: int = 5
    token_cache_seconds: float = 30.0
    max_in_flight: int = 256
    personal_key_cache_seconds: float = 300.0
    operator_reserve: float = 0.25
    body_timeout_seconds: float = 30.0
    quotas: Mapping[str, Quota] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    monitoring_url: str | None = None
    monitoring_token: str | None = field(default=None, repr=False)  # a secret
    monitoring_timeout_seconds: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> VisitsSettings:
        port = _positive(env, "SHOUWANG_VISITS_PORT", cls.port)
        if port > 65535:
            raise SettingsError(f"SHOUWANG_VISITS_PORT={port}: not a TCP port")
        monitoring_url, monitoring_token = _monitoring_view(env)
        return cls(
            monitoring_url=monitoring_url,
            monitoring_token=monitoring_token,
            monitoring_timeout_seconds=_positive_seconds(
                env, "SHOUWANG_VISITS_MONITORING_TIMEOUT_SECONDS", cls.monitoring_timeout_seconds
            ),
            host=_host(env, "SHOUWANG_VISITS_HOST") or _host(env, "SHOUWANG_BIND_HOST") or cls.host,
            port=port,
            max_body_bytes=_positive(env, "SHOUWANG_VISITS_MAX_BODY_BYTES", cls.max_body_bytes),
            max_batch=_positive(env, "SHOUWANG_VISITS_MAX_BATCH", cls.max_batch),
            future_skew_seconds=_positive(
                env, "SHOUWANG_VISITS_FUTURE_SKEW_SECONDS", cls.future_skew_seconds
            ),
            request_timeout_seconds=_positive_seconds(
                env, "SHOUWANG_VISITS_REQUEST_TIMEOUT_SECONDS", cls.request_timeout_seconds
            ),
            retry_after_seconds=_positive(
                env, "SHOUWANG_VISITS_RETRY_AFTER_SECONDS", cls.retry_after_seconds
            ),
            token_cache_seconds=_positive_seconds(
                env, "SHOUWANG_TOKEN_CACHE_SECONDS", cls.token_cache_seconds
            ),
            max_in_flight=_positive(env, "SHOUWANG_VISITS_MAX_IN_FLIGHT", cls.max_in_flight),
            personal_key_cache_seconds=_positive_seconds(
                env, "SHOUWANG_PERSONAL_KEY_CACHE_SECONDS", cls.personal_key_cache_seconds
            ),
            operator_reserve=_share(env, "SHOUWANG_VISITS_OPERATOR_RESERVE", cls.operator_reserve),
            body_timeout_seconds=_positive_seconds(
                env, "SHOUWANG_VISITS_BODY_TIMEOUT_SECONDS", cls.body_timeout_seconds
            ),
            quotas={kind: _quota(env, kind, quota) for kind, quota in DEFAULT_QUOTAS.items()},
        )


def _monitoring_view(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """SHOUWANG_VISITS_MONITORING_URL and its token (from the variable or the file), both or
    neither; errors never show the token."""
    url = env.get("SHOUWANG_VISITS_MONITORING_URL") or None
    value = env.get("SHOUWANG_VISITS_MONITORING_TOKEN") or None
    path = env.get("SHOUWANG_VISITS_MONITORING_TOKEN_FILE") or None
    if value and path:
        raise SettingsError(
            "set SHOUWANG_VISITS_MONITORING_TOKEN or SHOUWANG_VISITS_MONITORING_TOKEN_FILE, "
            "not both"
        )
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(
                f"SHOUWANG_VISITS_MONITORING_TOKEN_FILE: cannot read {path}: {type(exc).__name__}"
            ) from exc
    if url is None:
        if value is not None:
            raise SettingsError(
                "a monitoring token is set but SHOUWANG_VISITS_MONITORING_URL is not: set the "
                "monitoring worker's URL too"
            )
        return None, None
    scheme, sep, rest = url.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or any(c.isspace() for c in url):
        raise SettingsError(f"SHOUWANG_VISITS_MONITORING_URL={url!r}: expected an http(s):// URL")
    if value is None:
        # A deployment names its worker before the token exists (one is issued once the
        # database is up): the door starts with the check off and says so (bootstrap).
        return url.rstrip("/"), None
    if any(c.isspace() or not c.isprintable() for c in value):
        raise SettingsError("the monitoring token holds spaces or control characters")
    return url.rstrip("/"), value


def _quota(env: Mapping[str, str], kind: str, default: Quota) -> Quota:
    prefix = f"SHOUWANG_VISITS_{kind.upper()}"
    return Quota(
        concurrency=_positive(env, f"{prefix}_CONCURRENCY", default.concurrency),
        rate_per_second=_positive_rate(env, f"{prefix}_RATE", default.rate_per_second),
        burst=_positive(env, f"{prefix}_BURST", default.burst),
    )


def _number(
    env: Mapping[str, str],
    name: str,
    default: float,
    expected: str,
    ok: Callable[[float], bool],
    bounds: str,
) -> float:
    """A number setting: `default` when unset or empty; SettingsError naming the variable, what
    was expected and the bounds otherwise (`ok` also refuses nan and inf by its comparisons)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected {expected}") from None
    if not ok(value):
        raise SettingsError(f"{name}={raw!r}: must be {bounds}")
    return value


def _positive_rate(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, "a number of requests per second",
                   lambda v: 0 < v < 1_000_000, "more than 0 and less than 1000000")  # fmt: skip


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, "a share between 0 and 1 (e.g. 0.25)",
                   lambda v: 0 <= v < 1, "at least 0 and less than 1")  # fmt: skip


def _positive_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, "a number of seconds",
                   lambda v: 0 < v < 86_400, "more than 0 and less than a day")  # fmt: skip


def faust_datadir(home: Path, app_id: str) -> Path:
    """A faust app's data directory (RocksDB tables among it), under the service's home."""
    path = home / "faust" / app_id
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
