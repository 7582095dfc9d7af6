"""Gauges from household summaries (no household ids in labels) and the household view."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry, generate_latest

from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.adapters.table_codec import dump_summary, load_summary
from services.monitoring.domain.assess import assess
from services.monitoring.domain.fold import fold
from services.monitoring.domain.row import Summary
from services.monitoring.domain.view import household_document
from services.monitoring.metrics import MonitoringMetrics
from tests.records import at
from tests.seed_households import zhou_uremia
from tests.unit.monitoring.events import domain

DIANJIANG = load_policies().get("dianjiang-2020")


def test_household_gauges_count_by_workflow_category_and_township():
    registry = CollectorRegistry()
    metrics = MonitoringMetrics(registry)
    summaries = [
        Summary("MONITORED", "UNSTABLE_LIFTED", "鹤游镇", "HIGH", ("visit_overdue",), 1, 2, 1),
        Summary("MONITORED", "UNSTABLE_LIFTED", "鹤游镇", "MEDIUM", (), 0, 0, 0),
        Summary("FLAGGED", "MARGINAL", "大石乡", "MEDIUM", ("decision_overdue",), 0, 4, 4),
    ]
    metrics.set_households(load_summary(dump_summary(s)) for s in summaries)
    sample = registry.get_sample_value
    assert (
        sample(
            "shouwang_monitoring_households",
            {"workflow": "MONITORED", "category": "UNSTABLE_LIFTED", "township": "鹤游镇"},
        )
        == 2
    )
    assert (
        sample(
            "shouwang_monitoring_overdue_households",
            {"kind": "decision_overdue", "township": "大石乡"},
        )
        == 1
    )
    assert sample("shouwang_monitoring_rectification_ratio", {"township": "鹤游镇"}) == 0.5
    assert sample("shouwang_monitoring_rectification_ratio", {"township": "大石乡"}) == 1.0
    # a household that left: its label set disappears at the next refresh
    metrics.set_households(summaries[2:])
    assert (
        sample(
            "shouwang_monitoring_households",
            {"workflow": "MONITORED", "category": "UNSTABLE_LIFTED", "township": "鹤游镇"},
        )
        is None
    )
    assert "500231" not in generate_latest(registry).decode()


def test_view_names_the_events_behind_reasons_and_the_deadlines():
    state = fold("500231-zhou", domain(zhou_uremia()))
    assessment = assess(state, DIANJIANG, at("2020-05-16", 21))
    document = json.loads(json.dumps(household_document(state, assessment, DIANJIANG)))
    assert document["state_version"] == len(zhou_uremia())
    assert document["workflow"]["status"] == "FLAGGED"
    # Flagged from the registry row (a seriously ill head, no full labour), not by the medical
    # bill: 7,200 yuan is below last year's household income (6,100 × 2).
    assert document["workflow"]["decision_due"] == "2020-01-15"
    reasons = {r["code"]: r for r in document["assessment"]["reasons"]}
    assert reasons["no_labour"]["event_ids"] == [str(zhou_uremia()[0][1]["event_id"])]
    assert {m["measure_id"] for m in document["measures"]} == {"m-pomelo", "m-ducklings"}
    assert document["registry"]["members"]["weak_labour"] == 1
    # the members as of the assessment (16 May 2020): the head is 42, the son in school
    people = document["registry"]["people"]
    assert [(p["member_id"], p["age"], p["health"]) for p in people] == [
        ("1", 42, "SERIOUS_ILLNESS"),
        ("2", 8, "HEALTHY"),
    ]
    assert document["registry"]["members_on_date"]["students"] == 1
    assert "personal" not in json.dumps(document)
