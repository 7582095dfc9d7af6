"""A province's and the nation's year on N workers, EXTRAPOLATED from this run's measured rates.

Nothing here is measured: each row is arithmetic on figures the same run measured, and says so
in its name. The per-worker rate is B10's end-to-end rate with one worker of each service (at
the largest scale measured, where start-up weighs least), or, without a 1-worker run, the
smallest worker count's rate divided by its workers. "Linear" rows assume what this 2-core
machine cannot show: each worker process on a core of its own, and the broker and database
keeping up, up to the partition count (12 per household topic: a 13th worker of a group gets
no partition). The measured curve — B10's and B8's 2-worker rate over their 1-worker rate — is
in each row's note, next to the linear assumption it replaces.
"""

from __future__ import annotations

import math

from bench.report import Figure

PROVINCE_YEAR = 10_000_000  # events: the "a province's year"
NATIONAL_YEAR = 1_500_000_000  # events: "a national year"
PARTITIONS = 12  # household topics (TopicLayout default): the most workers a group uses
DAY = 86_400.0


def per_worker(figures: list[Figure]) -> tuple[float, float, int, float | None] | None:
    """(events/s per worker, scale, workers it came from, measured 2-vs-1 speed-up) from the
    B10 rows of `figures`, or None when B10 measured nothing."""
    runs = [f for f in figures if f.bench == "B10" and "workers" in f.detail]
    if not runs:
        return None
    scale = max(f.detail["scale"] for f in runs)
    at_scale = {f.detail["workers"]: f.value for f in runs if f.detail["scale"] == scale}
    fewest = min(at_scale)
    speedup = at_scale[2] / at_scale[1] if {1, 2} <= at_scale.keys() else None
    return at_scale[fewest] / fewest, scale, fewest, speedup


def b8_speedup(figures: list[Figure]) -> float | None:
    """B8's 2-worker over 1-worker rate on 12 partitions, when this run measured B8."""
    rates = {
        f.detail["workers"]: f.value
        for f in figures
        if f.bench == "B8" and f.detail.get("partitions") == PARTITIONS
    }
    return rates[2] / rates[1] if {1, 2} <= rates.keys() else None


def figures(measured: list[Figure]) -> list[Figure]:
    """The EXTRAPOLATED rows for what `measured` holds (none without a B10 run)."""
    found = per_worker(measured)
    if found is None:
        return []
    rate, scale, workers, speedup = found
    b8 = b8_speedup(measured)
    curve = "; measured here (2 shared cores): 2 workers each = " + (
        f"{speedup:.2f}× 1 worker end to end (B10)" if speedup else "not run (B10)"
    )
    if b8:
        curve += f", {b8:.2f}× for monitoring alone (B8, 12 partitions)"
    source = (
        f"per worker {rate:,.0f} events/s: B10 at scale {scale:g}, {workers} worker"
        f"{'s' * (workers > 1)} each"
    )
    if scale < 1:
        # the services' start-up and the settle's fixed seconds are most of a small run
        source += " (a small county: start-up weighs, the rate is a floor)"
    linear = f"linear: a core per worker process, up to {PARTITIONS} partitions"

    def row(what: str, value: float, unit: str, note: str) -> Figure:
        return Figure("B10", f"EXTRAPOLATED: {what}", value, unit, note=note, detail={})

    out = [
        row(
            "a province's year (10 M events) through the pipeline, 1 worker each",
            PROVINCE_YEAR / rate / 3600,
            "hours",
            f"{source}{curve}",
        ),
        row(
            f"a province's year (10 M events), {PARTITIONS} workers each",
            PROVINCE_YEAR / (rate * PARTITIONS) / 3600,
            "hours",
            f"{source}; {linear}{curve}",
        ),
        row(
            f"a national year (1.5 G events), {PARTITIONS} workers each",
            NATIONAL_YEAR / (rate * PARTITIONS) / DAY,
            "days",
            f"{source}; {linear}{curve}",
        ),
        row(
            "workers of each service for a national year in 24 hours",
            float(math.ceil(NATIONAL_YEAR / (rate * DAY))),
            "workers",
            f"{source}; as many partitions per household topic (today {PARTITIONS}), "
            f"{linear.split(',')[0]}{curve}",
        ),
    ]
    monitoring = [f for f in measured if f.bench == "B2"]
    if monitoring:
        b2 = monitoring[0].value
        out.append(
            row(
                f"a national year (1.5 G events), monitoring alone, {PARTITIONS} workers",
                NATIONAL_YEAR / (b2 * PARTITIONS) / DAY,
                "days",
                f"per worker {b2:,.0f} records/s (B2, pre-loaded inputs, start-up included); "
                f"{linear}{curve}",
            )
        )
    return out
