"""The demo report's pure parts: numbers from facts, the category timeline, the HTML page."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import xml.etree.ElementTree as ElementTree

from services.readmodel.campaign import CAMPAIGN_FIGURES
from services.tools.demo.html_report import render_html
from services.tools.demo.read_model import ReadModelFacts
from services.tools.demo.report import (
    FLAGGED_SERIES,
    RunStats,
    build_report,
    category_timeline,
    render_text,
)

CST = dt.timezone(dt.timedelta(hours=8))
START, END = dt.date(2020, 3, 20), dt.date(2020, 3, 25)


def at(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(START + dt.timedelta(days=day), dt.time(hour), CST)


FACTS = ReadModelFacts(
    households=[
        ("高峰镇", "lifted", "monitored", "UNSTABLE_LIFTED", 3),
        ("高峰镇", "lifted", "not_flagged", None, 10),
        ("鹤游镇", "never_registered", "flagged", "MARGINAL", 2),
        ("鹤游镇", "never_registered", "elimination_proposed", "MARGINAL", 1),
        ("鹤游镇", "never_registered", "not_flagged", None, 20),
    ],
    visited=[
        ("lifted", "monitored", 3, 3),
        ("lifted", "not_flagged", 10, 7),
        ("never_registered", "flagged", 2, 1),
        ("never_registered", "elimination_proposed", 1, 0),
        ("never_registered", "not_flagged", 20, 2),
    ],
    overdue=[("visit_overdue", 1), ("decision_overdue", 2)],
    measure_steps=[
        ("MEDICAL", "RECOMMENDED", False, 4, 4),
        ("MEDICAL", "DELIVERED", False, 2, 2),
        ("PUBLIC_WELFARE_JOB", "RECOMMENDED", True, 3, 3),
        ("PUBLIC_WELFARE_JOB", "RECOMMENDED", False, 1, 1),
        ("INDUSTRY", "COMPLETED", False, 5, 5),
    ],
    measures=[
        ("MEDICAL", "delivered", 2, 2),
        ("MEDICAL", "recommended", 2, 2),
        ("PUBLIC_WELFARE_JOB", "waiting", 2, 2),
        ("PUBLIC_WELFARE_JOB", "recommended", 1, 1),
        ("INDUSTRY", "completed", 5, 5),
    ],
    problems=[("housing", "open", 1), ("housing", "rectified", 2), ("policy_card", "rectified", 4)],
    rejects=0,
    problems_by_township=[
        ("鹤游镇", "open", 1),
        ("鹤游镇", "rectified", 1),
        ("大石乡", "rectified", 5),
        ("桂溪街道", "open", 2),
    ],
)
RUN = RunStats(
    seed=1,
    scale=0.01,
    campaign_start=START,
    campaign_end=END,
    events_written=1000,
    ingest_seconds=4.0,
    settle_seconds=16.0,
    wall_seconds=60.0,
    records_by_topic={
        "household.visits": 600,
        "household.registry": 400,
        "household.risk": 90,
        "shouwang.deadletter": 3,
    },
    input_topics=("household.visits", "household.registry"),
    lag={"monitoring": 0, "support": 0, "projector": 0},
)


def test_numbers_come_from_the_facts() -> None:
    report = build_report(FACTS, RUN)
    hh = report["households"]
    assert hh["total"] == 36
    assert hh["monitored_by_category"] == {"MARGINAL": 1, "UNSTABLE_LIFTED": 3}
    assert hh["flagged_by_category"] == {"MARGINAL": 2}
    assert hh["by_township"]["鹤游镇"] == {"flagged": 2, "households": 23,
                                          "monitored": 1, "monitored:MARGINAL": 1}  # fmt: skip
    measures = report["measures"]
    assert measures["recommended_by_type"] == {"MEDICAL": 4, "PUBLIC_WELFARE_JOB": 1}
    assert measures["delivered_by_type"] == {"INDUSTRY": 5, "MEDICAL": 2}
    assert measures["waiting_measures"] == 2 and measures["waiting_by_type"] == {
        "PUBLIC_WELFARE_JOB": 2
    }
    visits = report["visits"]
    assert (visits["registered_households"], visits["registered_visited"]) == (13, 10)
    assert (visits["monitored_households"], visits["monitored_visited"]) == (4, 3)
    assert visits["overdue"] == {"decision_overdue": 2, "visit_overdue": 1}
    assert report["problems"]["found"] == 7 and report["problems"]["rectified"] == 6
    assert report["problems"]["by_township"] == {  # where rectification lags first
        "桂溪街道": {"found": 2, "rectified": 0, "rate": 0.0},
        "鹤游镇": {"found": 2, "rectified": 1, "rate": 0.5},
        "大石乡": {"found": 5, "rectified": 5, "rate": 1.0},
    }
    assert "rectification by township, lowest first (rectified / found): 桂溪街道 0/2 (0.0%)" in (
        render_text(report)
    )
    run = report["run"]
    assert run["input_events_in_log"] == 1000 and run["dead_letters"] == 3
    assert run["ingest_events_per_second"] == 250.0
    assert run["end_to_end_events_per_second"] == 50.0
    json.dumps(report)  # the JSON twin


def test_timeline_follows_each_households_latest_assessment_per_day() -> None:
    assessments = [
        ("h1", "GENERAL_KEY", "FLAGGED", at(1)),
        ("h1", "GENERAL_KEY", "MONITORED", at(3)),
        ("h2", "MARGINAL", "NOT_FLAGGED", at(0)),  # a category without a flag: not counted
        ("h2", "MARGINAL", "VERIFYING", at(2, hour=23)),
        ("h2", None, "REJECTED", at(4)),
        ("h3", "UNSTABLE_LIFTED", "MONITORED", at(-5)),  # before the campaign: from day one
        ("h4", "UNSTABLE_LIFTED", "MONITORED", at(7)),  # after the campaign: extends it
        ("h5", "MARGINAL", "MONITORED", at(90)),  # beyond the tail: counts on its last day
    ]
    timeline = category_timeline(assessments, START, END, tail_days=3)
    assert timeline["days"][0] == "2020-03-20" and timeline["days"][-1] == "2020-03-28"
    assert timeline["by_category"] == {
        FLAGGED_SERIES: [0, 1, 2, 1, 0, 0, 0, 0, 0],
        "GENERAL_KEY": [0, 0, 0, 1, 1, 1, 1, 1, 1],
        "MARGINAL": [0, 0, 0, 0, 0, 0, 0, 0, 1],
        "UNSTABLE_LIFTED": [1, 1, 1, 1, 1, 1, 1, 2, 2],
    }
    assert timeline["households_assessed_later"] == 1
    assert timeline["latest_assessment"] == "2020-06-18"


def test_html_is_self_contained_with_valid_svg_charts() -> None:
    assessments = [("h1", "GENERAL_KEY", "MONITORED", at(1))]
    report = build_report(FACTS, RUN, assessments)
    page = render_html(report)
    charts = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(charts) == 3  # over the days, by township, measures by type
    for chart in charts:
        ElementTree.fromstring(chart)  # well-formed
    assert not any(tag in page for tag in ("<script src", "<link", "<img", "@import"))
    twin = re.search(r"<script type='application/json' id='report'>\n(.*?)\n</script>", page, re.S)
    assert twin is not None and json.loads(twin.group(1))["households"]["total"] == 36
    text = render_text(report)
    assert "monitored: 4" in text and "dead letters: 3" in text


def test_an_empty_county_reports_zeros_not_errors() -> None:
    empty = ReadModelFacts([], [], [], [], [], [], 0)
    report = build_report(empty, RUN)
    assert report["measures"]["recommended"] == 0
    assert report["visits"]["registered_coverage"] is None
    assert "<svg" not in render_html(report)  # says "none" instead of drawing empty charts
    assert "measures recommended: 0" in render_text(report)


def test_the_epidemic_campaign_totals_are_reported_for_the_county_and_each_township() -> None:
    figures = dict.fromkeys(CAMPAIGN_FIGURES, 0)
    county = figures | {"households_visited": 3, "unsold_produce_yuan": 8000,
                        "produce_sold_with_aid_yuan": 8000, "workers_organised": 2}  # fmt: skip
    rows = [
        {"township": None, "total": True} | county,
        {"township": "鹤游镇", "total": False} | county,
    ]
    report = build_report(dataclasses.replace(FACTS, campaign=rows), RUN)
    assert report["campaign"] == {"county": county, "by_township": {"鹤游镇": county}}
    text = render_text(report)
    assert "unsold produce 8,000 yuan, sold with aid 8,000 yuan" in text
    assert "organised into work 2" in text
    assert "epidemic five visits, five helps" in render_html(report)
    assert "no visit carried the block" in render_text(build_report(FACTS, RUN))


def test_households_carried_over_by_the_policy_switch_are_reported() -> None:
    transitions = [
        ("MARGINAL", "monitored", False, 4),
        ("MARGINAL", "monitored", True, 1),
        ("SUDDEN_HARDSHIP", "monitored", False, 2),
        ("UNSTABLE_LIFTED", "elimination_proposed", False, 3),
    ]
    report = build_report(dataclasses.replace(FACTS, transitions=transitions), RUN)
    assert report["transition"] == {
        "carried_over": 10,
        "by_category": {"MARGINAL": 5, "SUDDEN_HARDSHIP": 2, "UNSTABLE_LIFTED": 3},
        "by_workflow": {"elimination_proposed": 3, "monitored": 7},
        "rereview_overdue": 1,
    }
    text = render_text(report)
    assert (
        "carried over by the policy switch: 10 households (MARGINAL 5, SUDDEN_HARDSHIP 2, "
        "UNSTABLE_LIFTED 3); re-review past due: 1" in text
    )
    assert "carried over by the policy switch, by category now" in render_html(report)
    # a run that does not cross a switch says nothing about one
    assert "carried over" not in render_text(build_report(FACTS, RUN))


def test_the_procedure_and_the_exceptions_are_reported() -> None:
    procedures = [
        {"township": "鹤游镇", "direction": "entry", "awaiting": "notice_running",
         "households": 2, "overdue": 0},
        {"township": "鹤游镇", "direction": "entry", "awaiting": "township_review",
         "households": 1, "overdue": 1},
        {"township": "大石乡", "direction": "exit", "awaiting": "county_approval",
         "households": 3, "overdue": 0},
        {"township": "大石乡", "direction": "entry", "awaiting": "county_approval",
         "households": 1, "overdue": 1},
    ]  # fmt: skip
    counts = [
        {"township": "鹤游镇", "code": "policy_exception", "exceptions": 2},
        {"township": "大石乡", "code": "procedure_exception", "exceptions": 1},
    ]
    first = [
        {"household_id": "H-1", "township": "大石乡", "code": "procedure_exception",
         "decision_event_id": "d-1", "message": "notice skipped, county approved",
         "recorded_at": dt.datetime(2020, 6, 1, tzinfo=dt.UTC)},
    ]  # fmt: skip
    facts = dataclasses.replace(
        FACTS, procedures=procedures, exception_counts=counts, exceptions=first
    )
    report = build_report(facts, RUN)
    assert report["procedure"]["in_notice"] == 2
    assert report["procedure"]["awaiting_township_review"] == 1
    assert report["procedure"]["awaiting_county_approval"] == 4
    assert report["procedure"]["overdue"] == 2
    assert report["procedure"]["by_township"]["大石乡"] == {"county_approval": 4}
    assert report["exceptions"]["by_code"] == {"policy_exception": 2, "procedure_exception": 1}
    text = render_text(report)
    assert (
        "entry and exit procedure: in public notice 2, awaiting township review 1, awaiting "
        "county approval 4" in text
    )
    assert "steps overdue 2" in text
    assert "exceptions (decisions taken by exception): 3 " in text
    assert "H-1 (大石乡) procedure_exception: notice skipped, county approved" in text
    assert "... and 2 more (/v1/exceptions)" in text
    assert "decisions taken by exception" in render_html(report)
    empty = render_text(build_report(FACTS, RUN))
    assert "in public notice 0" in empty and "exceptions (decisions taken by exception): 0" in empty
