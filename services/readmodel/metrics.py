"""The read model's Prometheus metrics: the projector's and the operator API's, each built
from a registry passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ProjectorMetrics:
    """The projector's Prometheus metrics, registered on the registry passed in."""

    def __init__(self, registry: CollectorRegistry):
        self.events = Counter(
            "shouwang_projector_events_total",
            "Events applied to the read model, by topic",
            ["topic"],
            registry=registry,
        )
        self.skipped = Counter(
            "shouwang_projector_skipped_total",
            "Records skipped: already applied (redelivered) or undecodable",
            ["reason"],
            registry=registry,
        )
        self.rows = Counter(
            "shouwang_projector_rows_written_total",
            "Row statements executed, by table",
            ["table"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "shouwang_projector_batch_seconds",
            "Time to apply one batch (one transaction)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.lag_events = Gauge(
            "shouwang_projector_lag_events",
            "Records behind the partition high-water mark, by topic",
            ["topic"],
            registry=registry,
        )
        self.lag_seconds = Gauge(
            "shouwang_projector_lag_seconds",
            "Age of the newest applied record's Kafka timestamp",
            ["topic"],
            registry=registry,
        )


class ApiMetrics:
    """Requests by route and status, and their duration; built from a registry passed in."""

    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "shouwang_support_api_requests_total",
            "Operator API requests by route template, method and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "shouwang_support_api_request_duration_seconds",
            "Operator API request duration",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
