"""The monitoring service's Prometheus metrics, built from a registry passed in.

No household ids in labels: households are counted by workflow state, category and township
(26 townships and streets in a county), which keeps every label set small and bounded.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.monitoring.domain.row import Summary

LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    900,
    3600,
    21600,
    86400,
    604800,
)  # phones sync up to weeks late
APPLY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class MonitoringMetrics:
    """Events applied, assessments changed, household gauges, problems, dead letters, latency."""

    def __init__(self, registry: CollectorRegistry):
        self.events_applied = Counter(
            "shouwang_monitoring_events_applied_total",
            "Input events folded into a household's state, by event type",
            ["event_type"],
            registry=registry,
        )
        self.duplicates = Counter(
            "shouwang_monitoring_duplicate_events_total",
            "Input events whose event_id the household had already seen (ignored)",
            ["event_type"],
            registry=registry,
        )
        self.assessments_changed = Counter(
            "shouwang_monitoring_assessments_changed_total",
            "Risk assessments emitted because the assessment or workflow changed, by workflow",
            ["workflow"],
            registry=registry,
        )
        self.policy_exceptions = Counter(
            "shouwang_monitoring_policy_exceptions_total",
            "Review decisions recorded against the policy or the workflow, by code",
            ["code"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "shouwang_monitoring_dead_letters_total",
            "Records dead-lettered, by kind and topic",
            ["kind", "topic"],
            registry=registry,
        )
        self.households = Gauge(
            "shouwang_monitoring_households",
            "Households owned by this worker, by workflow state, category and township",
            ["workflow", "category", "township"],
            registry=registry,
        )
        self.overdue = Gauge(
            "shouwang_monitoring_overdue_households",
            "Households with a missed deadline, by kind (decision_overdue, visit_overdue, "
            "problem_overdue, procedure_step_overdue) and township",
            ["kind", "township"],
            registry=registry,
        )
        self.open_problems = Gauge(
            "shouwang_monitoring_open_problems",
            "Open problems (three lists), by township",
            ["township"],
            registry=registry,
        )
        self.problems_found = Gauge(
            "shouwang_monitoring_problems_found",
            "Problems found on visits (open or rectified), by township: the ratio's denominator",
            ["township"],
            registry=registry,
        )
        self.problems_rectified = Gauge(
            "shouwang_monitoring_problems_rectified",
            "Problems rectified, by township: summed over townships for the county's ratio",
            ["township"],
            registry=registry,
        )
        self.rectification_rate = Gauge(
            "shouwang_monitoring_rectification_ratio",
            "Rectified problems over all problems found, by township (1 when none found)",
            ["township"],
            registry=registry,
        )
        self.latency = Histogram(
            "shouwang_monitoring_event_latency_seconds",
            "From an input event's recorded_at to its assessment by this worker",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.apply_seconds = Histogram(
            "shouwang_monitoring_apply_seconds",
            "Time to decode, fold, assess and store one input record",
            buckets=APPLY_BUCKETS,
            registry=registry,
        )

    def set_households(self, summaries: Iterable[Summary]) -> None:
        """Replace the household gauges with counts over `summaries` (this worker's own)."""
        by_state: Tally[tuple[str, str, str]] = Tally()
        overdue: Tally[tuple[str, str]] = Tally()
        open_problems: Tally[str] = Tally()
        found: Tally[str] = Tally()
        rectified: Tally[str] = Tally()
        townships: set[str] = set()
        for s in summaries:
            townships.add(s.township)
            by_state[(s.workflow, s.category or "NONE", s.township)] += 1
            for kind in s.overdue:
                overdue[(kind, s.township)] += 1
            open_problems[s.township] += s.open_problems
            found[s.township] += s.problems
            rectified[s.township] += s.rectified
        gauges = (self.households, self.overdue, self.open_problems, self.problems_found,
                  self.problems_rectified, self.rectification_rate)  # fmt: skip
        for gauge in gauges:
            gauge.clear()
        for labels, count in by_state.items():
            self.households.labels(*labels).set(count)
        for labels, count in overdue.items():
            self.overdue.labels(*labels).set(count)
        for township in townships:
            self.open_problems.labels(township).set(open_problems[township])
            total = found[township]
            self.problems_found.labels(township).set(total)
            self.problems_rectified.labels(township).set(rectified[township])
            self.rectification_rate.labels(township).set(
                rectified[township] / total if total else 1.0
            )
