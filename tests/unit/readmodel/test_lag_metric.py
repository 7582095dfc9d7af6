"""`shouwang_projector_lag_seconds` is the age of the oldest record not yet applied: it grows
while a fetched batch waits, stays up while the partition is behind, and is 0 once caught up."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from services.readmodel.metrics import ProjectorMetrics


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def lag(registry: CollectorRegistry, topic: str) -> float | None:
    prefix = f'shouwang_projector_lag_seconds{{topic="{topic}"}} '
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return None


def metrics_at(clock: Clock) -> tuple[CollectorRegistry, ProjectorMetrics]:
    registry = CollectorRegistry()
    metrics = ProjectorMetrics(registry)
    metrics.unapplied._clock = clock
    return registry, metrics


def test_the_lag_is_the_age_of_the_oldest_unapplied_record_and_zero_when_caught_up():
    clock = Clock(1_000.0)
    registry, metrics = metrics_at(clock)
    age = metrics.unapplied
    assert lag(registry, "household.visits") is None  # nothing assigned yet: no series

    age.fetched("household.visits", 0, 900_000)  # oldest fetched record stamped at 900 s
    age.fetched("household.visits", 1, 990_000)
    assert lag(registry, "household.visits") == 100.0  # the older partition's record
    clock.now = 1_030.0
    assert lag(registry, "household.visits") == 130.0  # still waiting: the age keeps growing

    # applied up to a record stamped 950 s, with more behind it: that stands in for the next
    age.applied("household.visits", 0, 950_000, behind=True)
    assert lag(registry, "household.visits") == 80.0
    age.applied("household.visits", 0, 995_000, behind=False)
    age.caught_up("household.visits", 1)
    assert lag(registry, "household.visits") == 0.0


def test_a_partition_given_away_in_a_rebalance_no_longer_counts():
    clock = Clock(500.0)
    registry, metrics = metrics_at(clock)
    metrics.unapplied.fetched("household.risk", 3, 100_000)
    metrics.unapplied.caught_up("household.risk", 4)
    assert lag(registry, "household.risk") == 400.0
    metrics.unapplied.forget({("household.risk", 4)})
    assert lag(registry, "household.risk") == 0.0
