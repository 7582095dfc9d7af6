"""explain --as-of / --known-at: the state of a date, and what the system knew on a date."""

from __future__ import annotations

from services.audit.explain import explain, moment, render
from services.audit.replay import Replay
from services.monitoring.adapters.policy_files import load_policies
from tests.records import at, visit
from tests.seed_households import monitored_then_eliminated
from tests.unit.audit.emitter import CODEC, as_log

POLICIES = load_policies()
HH = "ex-elim"


def household(records):
    replay = Replay(CODEC, POLICIES)
    for r in as_log(records):
        replay.feed(r)
    h = replay.households[HH]
    return [e for items in h.events.values() for e in items], h.notes


def test_time_travel_across_each_decision():
    events, notes = household(monitored_then_eliminated(HH))
    workflow = {
        day: explain(HH, events, notes, POLICIES, moment(day))["workflow"]["status"]
        for day in ("2020-05-10", "2020-05-15", "2020-05-16", "2020-11-17", "2020-11-20",
                    "2020-11-25")
    }  # fmt: skip
    assert workflow["2020-05-10"] not in ("VERIFYING", "MONITORED")
    assert workflow["2020-05-15"] == "VERIFYING"  # the entry procedure under way
    assert workflow["2020-05-16"] == "MONITORED"
    assert workflow["2020-11-17"] == "MONITORED"
    assert workflow["2020-11-20"] == "ELIMINATION_PROPOSED"
    assert workflow["2020-11-25"] == "ELIMINATED"
    document = explain(HH, events, notes, POLICIES, moment("2020-06-02"))
    assert document["assessment"]["policy_version"]
    (measure,) = document["measures"]
    assert measure["steps"][0]["type"] == "MeasureStepRecorded"
    assert [d["decision"] for d in document["decisions"]] == [
        "START_VERIFICATION",
        "VILLAGE_DELIBERATION",
        "NOTICE",
        "TOWNSHIP_REVIEW",
        "INCLUDE",
    ]
    assert document["decisions"][0]["actor"]


def test_a_late_visit_changes_what_was_true_not_what_was_known():
    late = visit(
        HH,
        at("2020-08-20"),
        visit_id="v-late",
        checks={"housing": "PROBLEM"},
        recorded=at("2020-09-10"),
        label="late",
    )
    events, notes = household([*monitored_then_eliminated(HH), late])
    true_then = explain(HH, events, notes, POLICIES, moment("2020-08-25"))
    known_then = explain(
        HH, events, notes, POLICIES, moment("2020-08-25"), known_at=moment("2020-08-25")
    )
    assert true_then["workflow"]["last_visit_at"] == at("2020-08-20").isoformat()
    assert any(r["code"] == "guarantee_housing" for r in true_then["assessment"]["reasons"])
    assert not any(r["code"] == "guarantee_housing" for r in known_then["assessment"]["reasons"])
    assert known_then["events_not_yet_known"] == 1
    reason = next(r for r in true_then["assessment"]["reasons"] if r["code"] == "guarantee_housing")
    (event,) = [e for e in reason["events"] if e["type"] == "VisitRecorded"]
    assert event["recorded_at"] == at("2020-09-10").isoformat()
    assert event["actor"] == "cadre-yang" and event["position"].startswith("household.visits")
    text = render(true_then)
    assert "guarantee_housing" in text and "arrived 2020-09-10" in text


def test_explain_shows_the_procedure_under_way_with_its_steps():
    events, notes = household(monitored_then_eliminated(HH))
    document = explain(HH, events, notes, POLICIES, moment("2020-11-22"))
    procedure = document["workflow"]["procedure"]
    assert (procedure["direction"], procedure["awaiting"]) == ("EXIT", "NOTICE_RUNNING")
    assert (procedure["notice_start"], procedure["notice_ends"]) == ("2020-11-20", "2020-11-24")
    text = render(document)
    assert "procedure (exit): awaiting NOTICE_RUNNING" in text
    assert "notice 2020-11-20 to 2020-11-24" in text
    assert "VILLAGE_DELIBERATION PASSED" in text and "notice from 2020-11-20 for 5 days" in text
    assert "procedure" not in render(explain(HH, events, notes, POLICIES, moment("2020-11-26")))
