"""The read model's Prometheus metrics: the projector's and the operator API's, each built
from a registry passed in."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LAG_SECONDS = "shouwang_projector_lag_seconds"


SKIP_REASONS = ("redelivered", "undecodable", "refused")


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
            "Records not applied: already applied (redelivered), undecodable, or refused by the "
            "read model's constraints",
            ["reason"],
            registry=registry,
        )
        # Every reason exported from the start, at 0: increase() and rate() then see the first
        # skip, and a scrape shows the same series whatever the run's timing.
        for reason in SKIP_REASONS:
            self.skipped.labels(reason)
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
        self.unapplied = UnappliedAge()
        registry.register(self.unapplied)


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
        self.rectification = Rectification()
        registry.register(self.rectification)
        self.procedures = Procedures()
        registry.register(self.procedures)


class UnappliedAge(Collector):
    """`shouwang_projector_lag_seconds{topic}`: how long the oldest record not yet applied has
    been waiting (now − its Kafka timestamp), the most of any partition of the topic; 0 when
    every assigned partition is caught up. Computed at scrape time, so a stalled projector's
    lag keeps growing on the graph instead of freezing at its last value.

    The projector tells it what it fetched and applied. The oldest unapplied record of a
    partition is the first of a fetched batch until the batch is applied; after that, while
    the partition is still behind its high-water mark, the next record has not been fetched
    yet, so the last applied record's timestamp stands in for it (an upper bound on the age,
    by the gap between two records) until the next fetch gives the real one.
    """

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()  # the HTTP server's thread collects while the loop writes
        self._oldest: dict[tuple[str, int], float | None] = {}  # (topic, partition) → epoch s

    def fetched(self, topic: str, partition: int, first_timestamp_ms: int) -> None:
        """A batch of the partition arrived, starting with a record of this timestamp."""
        with self._lock:
            self._oldest[(topic, partition)] = first_timestamp_ms / 1000

    def applied(self, topic: str, partition: int, last_timestamp_ms: int, behind: bool) -> None:
        """The batch up to a record of this timestamp is applied; `behind`: more remain."""
        with self._lock:
            self._oldest[(topic, partition)] = last_timestamp_ms / 1000 if behind else None

    def caught_up(self, topic: str, partition: int) -> None:
        """The partition's position is at its high-water mark."""
        with self._lock:
            self._oldest[(topic, partition)] = None

    def forget(self, keep: set[tuple[str, int]]) -> None:
        """Drop partitions no longer assigned (a rebalance gave them to another projector)."""
        with self._lock:
            for key in self._oldest.keys() - keep:
                del self._oldest[key]

    def ages(self) -> dict[str, float]:
        now = self._clock()
        with self._lock:
            items = list(self._oldest.items())
        ages: dict[str, float] = {}
        for (topic, _), oldest in items:
            age = 0.0 if oldest is None else max(0.0, now - oldest)
            ages[topic] = max(age, ages.get(topic, 0.0))
        return ages

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            LAG_SECONDS,
            "Age of the oldest record not yet applied (now minus its Kafka timestamp), the "
            "most of any assigned partition, by topic; 0 when caught up",
            labels=["topic"],
        )
        for topic, age in sorted(self.ages().items()):
            family.add_metric([topic], age)
        yield family

    def describe(self) -> list[GaugeMetricFamily]:
        # Describing without collecting keeps registration from calling ages() (and the
        # registry's duplicate-name check still sees the name).
        return [GaugeMetricFamily(LAG_SECONDS, "", labels=["topic"])]


RECTIFICATION_RATIO = "shouwang_readmodel_rectification_ratio"
COUNTY_RECTIFICATION_RATIO = "shouwang_readmodel_county_rectification_ratio"
PROBLEMS = "shouwang_readmodel_problems"
PROBLEM_STATES = ("found", "rectified", "open", "overdue")


class Rectification(Collector):
    """Problems and the rectification ratio by township and for the county, from the read model
    (every source: visits and the problem list). The operator API's /metrics handler queries
    the database and hands the answer to `update` before the scrape's collection (at most every
    `refresh_seconds`, as the campaign gauges), so the series are as fresh as the read model; a
    township no longer seen drops out. A ratio is
    exported only where problems were found (an empty township is unknown, not perfect).
    Problems of households without a known township are labelled township="".
    """

    def __init__(self, refresh_seconds: float = 15.0) -> None:
        self.refresh_seconds = refresh_seconds  # at most one query per this, however many scrape
        self.refreshed_at: float | None = None
        self._lock = threading.Lock()
        self._snapshot: dict | None = None

    def due(self, now: float) -> bool:
        return self.refreshed_at is None or now - self.refreshed_at >= self.refresh_seconds

    def update(self, snapshot: dict, now: float) -> None:
        """`queries.rectification`'s answer for the whole county, read at `now` (monotonic)."""
        with self._lock:
            self._snapshot = snapshot
            self.refreshed_at = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            snapshot = self._snapshot
        counts = GaugeMetricFamily(
            PROBLEMS,
            "Problems from visits and the problem list, by township and state (found = all; "
            "overdue = open past the due date)",
            labels=["township", "state"],
        )
        ratio = GaugeMetricFamily(
            RECTIFICATION_RATIO,
            "Rectified problems over problems found, by township",
            labels=["township"],
        )
        county = GaugeMetricFamily(
            COUNTY_RECTIFICATION_RATIO, "Rectified problems over problems found, county-wide"
        )
        if snapshot is not None:
            for item in snapshot["townships"]:
                township = item["township"] or ""
                for state in PROBLEM_STATES:
                    counts.add_metric([township, state], item[state])
                if item["rate"] is not None:
                    ratio.add_metric([township], item["rate"])
            if snapshot["total"]["rate"] is not None:
                county.add_metric([], snapshot["total"]["rate"])
        yield from (counts, ratio, county)

    def describe(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(PROBLEMS, "", labels=["township", "state"]),
            GaugeMetricFamily(RECTIFICATION_RATIO, "", labels=["township"]),
            GaugeMetricFamily(COUNTY_RECTIFICATION_RATIO, ""),
        ]


PROCEDURE_HOUSEHOLDS = "shouwang_readmodel_procedure_households"
PROCEDURE_OVERDUE = "shouwang_readmodel_procedure_overdue"
EXCEPTIONS = "shouwang_readmodel_exceptions_total"  # a counter family: the name as exported


class Procedures(Collector):
    """The entry and exit procedure from the read model (`procedure_queries`): households by
    township, direction and the step they await; those whose step is overdue; and the
    exceptions recorded (procedure_exception, policy_exception) by township and code, a count
    that only grows while the log does (a counter: `increase()` shows new ones). Refreshed by
    the operator API's /metrics handler at most every `refresh_seconds`, as the rectification
    series; a combination no longer seen drops out. Township "" for households without one."""

    def __init__(self, refresh_seconds: float = 15.0) -> None:
        self.refresh_seconds = refresh_seconds
        self.refreshed_at: float | None = None
        self._lock = threading.Lock()
        self._steps: list[dict] = []
        self._exceptions: list[dict] = []

    def due(self, now: float) -> bool:
        return self.refreshed_at is None or now - self.refreshed_at >= self.refresh_seconds

    def update(self, steps: list[dict], exceptions: list[dict], now: float) -> None:
        """`procedure_counts` and `exception_counts` for the county, read at `now`."""
        with self._lock:
            self._steps, self._exceptions = steps, exceptions
            self.refreshed_at = now

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self._lock:
            steps, exceptions = self._steps, self._exceptions
        labels = ["township", "direction", "awaiting"]
        households = GaugeMetricFamily(
            PROCEDURE_HOUSEHOLDS,
            "Households whose entry or exit procedure awaits a step (village_deliberation, "
            "notice, notice_running, township_review, county_approval), by township",
            labels=labels,
        )
        overdue = GaugeMetricFamily(
            PROCEDURE_OVERDUE,
            "Households whose awaited procedure step is past its last day, by township",
            labels=labels,
        )
        recorded = CounterMetricFamily(
            EXCEPTIONS,
            "Exceptions that took effect (procedure_exception: a step skipped with the "
            "county's approval; policy_exception: a decision the policy's conditions did not "
            "allow), by township and code",
            labels=["township", "code"],
        )
        for row in steps:
            key = [row["township"] or "", row["direction"], row["awaiting"]]
            households.add_metric(key, row["households"])
            overdue.add_metric(key, row["overdue"])
        for row in exceptions:
            recorded.add_metric([row["township"] or "", row["code"]], row["exceptions"])
        yield from (households, overdue, recorded)

    def describe(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        labels = ["township", "direction", "awaiting"]
        return [
            GaugeMetricFamily(PROCEDURE_HOUSEHOLDS, "", labels=labels),
            GaugeMetricFamily(PROCEDURE_OVERDUE, "", labels=labels),
            CounterMetricFamily(EXCEPTIONS, "", labels=["township", "code"]),
        ]


class CampaignGauges:
    """The epidemic campaign's totals (`queries.campaign_totals`) as gauges: per township and
    for the county (two names, so that `sum()` over townships does not count the county too).
    Refreshed from the read model when /metrics is scraped, at most every `refresh_seconds`."""

    def __init__(self, registry: CollectorRegistry, refresh_seconds: float = 15.0):
        self.refresh_seconds = refresh_seconds
        self.refreshed_at: float | None = None
        self.county = Gauge(
            "shouwang_campaign_county",
            "Epidemic five-visits campaign figure over the whole county (see the operator "
            "API's /v1/campaign for each figure's meaning)",
            ["figure"],
            registry=registry,
        )
        self.township = Gauge(
            "shouwang_campaign_township",
            "Epidemic five-visits campaign figure by township",
            ["figure", "township"],
            registry=registry,
        )

    def due(self, now: float) -> bool:
        return self.refreshed_at is None or now - self.refreshed_at >= self.refresh_seconds

    def set(self, rows: list[dict], figures: tuple[str, ...], now: float) -> None:
        """Replace the figures with those of `rows` (the query's answer)."""
        self.township.clear()  # a township with no block any more must not keep its old figure
        for row in rows:
            for figure in figures:
                if row["total"]:
                    self.county.labels(figure).set(row[figure])
                else:
                    self.township.labels(figure, row["township"] or "").set(row[figure])
        self.refreshed_at = now
