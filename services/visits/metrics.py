"""Prometheus metrics of the ingest API, built on a registry passed in (never the global one).

Label values are bounded: route templates (not paths), status codes, event types, and a fixed
set of rejection reasons. No household id, token or personal value ever becomes a label.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.platform.auth.tokens import TOKEN_KINDS
from services.visits.adapters.household_view import UNAVAILABLE_REASONS
from services.visits.domain.procedure import UNJUDGED

# Why a review decision's procedure order went unchecked at the door (accepted; the fold judges).
UNCHECKED_REASONS = UNAVAILABLE_REASONS + UNJUDGED

# Produce latency is dominated by the broker round trip and linger: ~1 ms locally, tens of ms
# across a data centre, seconds when the broker struggles (the request timeout caps it).
PRODUCE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

SHED_REASONS = ("token_concurrency", "token_rate", "overloaded")  # the limits of admission.py

REJECTION_REASONS = (
    "malformed_json",
    "invalid",
    "missing_step",  # 422: a review decision skips a step of the procedure (domain/procedure.py)
    "unauthenticated",
    "forbidden",
    "unsupported_media_type",
    "body_too_large",
    "batch_too_large",
    "conflict",
    "unavailable",
    "overloaded",  # shed with 429: too many writes already wait for the broker
    "token_concurrency",  # shed with 429: the token has as many requests open as it may
    "token_rate",  # shed with 429: the token's bucket is empty
    "body_timeout",  # 408: the body did not arrive within SHOUWANG_VISITS_BODY_TIMEOUT_SECONDS
    "not_found",
    "method_not_allowed",
)


class VisitsMetrics:
    """Every metric of the visits service, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.requests = Counter(
            "shouwang_visits_requests_total",
            "HTTP requests by route template, method and status code.",
            ("route", "method", "status"),
            registry=registry,
        )
        self.request_seconds = Histogram(
            "shouwang_visits_request_duration_seconds",
            "HTTP request duration by route template.",
            ("route",),
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "shouwang_visits_requests_in_flight",
            "HTTP requests being served now.",
            registry=registry,
        )
        self.produced = Counter(
            "shouwang_visits_records_produced_total",
            "Records acknowledged by the broker, by event type.",
            ("event_type",),
            registry=registry,
        )
        self.duplicates = Counter(
            "shouwang_visits_duplicate_records_total",
            "Records re-sent with an event_id acknowledged recently (answered without producing).",
            ("event_type",),
            registry=registry,
        )
        self.produce_seconds = Histogram(
            "shouwang_visits_produce_duration_seconds",
            "Time from send to broker acknowledgement, by event type.",
            ("event_type",),
            buckets=PRODUCE_BUCKETS,
            registry=registry,
        )
        self.rejections = Counter(
            "shouwang_visits_rejections_total",
            "Requests or batch records refused, by reason.",
            ("reason",),
            registry=registry,
        )
        for reason in REJECTION_REASONS:
            self.rejections.labels(reason)  # export zeros, so rate() works from the start
        self.shed = Counter(
            "shouwang_visits_shed_requests_total",
            "Requests answered 429 by admission, by token kind and the limit that refused them "
            "(token_concurrency, token_rate, overloaded: no broker slot free to the kind).",
            ("token_kind", "reason"),
            registry=registry,
        )
        self.broker_slots = Gauge(
            "shouwang_visits_broker_slots_in_use",
            "Write requests holding a broker slot (read, checked, waiting for the broker's "
            "acknowledgement); at SHOUWANG_VISITS_MAX_IN_FLIGHT, writes are shed.",
            registry=registry,
        )
        self.body_timeouts = Counter(
            "shouwang_visits_body_timeouts_total",
            "Requests answered 408 because their body did not arrive in time, by token kind.",
            ("token_kind",),
            registry=registry,
        )
        self.procedure_unchecked = Counter(
            "shouwang_visits_procedure_unchecked_total",
            "Review decisions accepted without checking their procedure order against the "
            "monitoring view (the fold still refuses a skipped step), by reason: not_configured, "
            "unreachable, refused, unreadable, not_in_view (the view cannot answer), view_behind "
            "(it has not folded a decision this door accepted), earlier_than_recorded (the "
            "decision comes before one the view has folded).",
            ("reason",),
            registry=registry,
        )
        for reason in UNCHECKED_REASONS:
            self.procedure_unchecked.labels(reason)
        self.procedure_checks = Counter(
            "shouwang_visits_procedure_checks_total",
            "Review decisions whose procedure order was judged against the monitoring view, by "
            "outcome: taken, or refused (422 missing_step).",
            ("outcome",),
            registry=registry,
        )
        for outcome in ("taken", "refused"):
            self.procedure_checks.labels(outcome)
        for kind in TOKEN_KINDS:
            self.body_timeouts.labels(kind)
            for reason in SHED_REASONS:
                self.shed.labels(kind, reason)

    def reject(self, reason: str, count: int = 1) -> None:
        if reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        self.rejections.labels(reason).inc(count)
