"""The rectification series as a scrape shows them: a ratio only where problems were found, a
township that disappears drops out, and the database is asked at most every refresh period."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.readmodel.metrics import ApiMetrics


def scraped(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if s.name.startswith("shouwang_readmodel_")
    }


def counts(township, found, rectified, open_, overdue):
    rate = rectified / found if found else None
    return {"township": township, "found": found, "rectified": rectified, "open": open_,
            "overdue": overdue, "rate": rate}  # fmt: skip


def test_series_follow_the_latest_answer_and_an_empty_county_has_no_ratio():
    registry = CollectorRegistry()
    rectification = ApiMetrics(registry).rectification
    assert scraped(registry) == {}  # nothing read yet: no series, not zeros
    assert rectification.due(0.0)
    rectification.update(
        {
            "townships": [counts("A", 4, 3, 1, 1), counts(None, 1, 0, 1, 0)],
            "total": counts(None, 5, 3, 2, 1),
        },
        now=0.0,
    )
    got = scraped(registry)
    assert got[("shouwang_readmodel_rectification_ratio", (("township", "A"),))] == 0.75
    assert got[("shouwang_readmodel_rectification_ratio", (("township", ""),))] == 0.0
    assert got[("shouwang_readmodel_county_rectification_ratio", ())] == 0.6
    assert got[("shouwang_readmodel_problems", (("state", "overdue"), ("township", "A")))] == 1
    assert not rectification.due(14.9) and rectification.due(15.0)

    rectification.update({"townships": [], "total": counts(None, 0, 0, 0, 0)}, now=15.0)
    assert scraped(registry) == {}  # no township kept, no ratio of nothing
