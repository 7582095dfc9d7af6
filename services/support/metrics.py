"""The support service's Prometheus metrics, built from a registry passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class SupportMetrics:
    """Recommendations, pool use and capacity, waiting households, releases and support's own
    cancellations, dead letters."""

    def __init__(self, registry: CollectorRegistry):
        self.recommendations = Counter(
            "shouwang_support_recommendations_total",
            "Measures recommended with a slot (or without a capacity limit), by measure type",
            ["measure_type"], registry=registry)  # fmt: skip
        self.waiting = Gauge(
            "shouwang_support_waiting_households",
            "Needs waiting for capacity, by pool instance (county or township:pool)",
            ["pool"], registry=registry)  # fmt: skip
        self.pool_used = Gauge(
            "shouwang_support_pool_used", "Slots held in a pool instance", ["pool"],
            registry=registry)  # fmt: skip
        self.pool_capacity = Gauge(
            "shouwang_support_pool_capacity",
            "Slots of a pool instance (for cadre pools: the active cadres' maximum households)",
            ["pool"], registry=registry)  # fmt: skip
        self.releases = Counter(
            "shouwang_support_releases_total", "Capacity released (completed or cancelled)",
            ["step"], registry=registry)  # fmt: skip
        self.cancellations = Counter(
            "shouwang_support_cancellations_total",
            "Measures support cancelled because their household left the served workflow states "
            "(CANCELLED steps on support.measures), by measure type",
            ["measure_type"], registry=registry)  # fmt: skip
        self.dead_letters = Counter(
            "shouwang_support_dead_letters_total", "Records dead-lettered, by kind", ["kind"],
            registry=registry)  # fmt: skip
