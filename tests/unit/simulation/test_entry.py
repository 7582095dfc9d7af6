"""The entry procedure after the campaign (`--until`): the county answers what monitoring flags,
through every step of the procedure, and procedures started near the last day are under way
when the run ends."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import pytest

from services.audit.replay import Replay
from services.contract.codec import Codec
from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.domain.assess import assess
from services.platform.kafka.log import LogRecord
from services.tools.simulation import SimulationParameters, generate
from services.tools.simulation import records as rec
from services.tools.simulation.parameters import CST, CampaignCalendar
from services.visits.domain.levels import level_refusal

UNTIL = dt.date(2021, 6, 30)
CAMPAIGN_END = CampaignCalendar().spot_check_end
CODEC = Codec.default()
POLICIES = load_policies()
OPENINGS = ("START_VERIFICATION", "APPLY")


def _day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(CST).date()


@pytest.fixture(scope="module")
def run():
    """A small county monitored to mid-2021, replayed through monitoring's own fold."""
    parameters = SimulationParameters(seed=5, scale=0.05, calendar=CampaignCalendar(until=UNTIL))
    events = list(generate(parameters))
    replay = Replay(CODEC, POLICIES)
    for n, e in enumerate(events):
        key = e.record.get("household_id", e.record.get("cadre_id", "")).encode()
        replay.feed(LogRecord(e.topic.name, 0, n, 0, key, CODEC.encode(e.event_type, e.record)))
    assert replay.rejected == []
    decisions = defaultdict(list)
    for e in events:
        if e.event_type == rec.REVIEW:
            decisions[e.record["household_id"]].append(e.record)
    for records in decisions.values():
        records.sort(key=lambda r: r["occurred_at"])
    return events, replay, decisions


def _procedures(decisions) -> list[tuple[str, list[dict]]]:
    """Each entry procedure opened after the campaign: the household and its decisions from the
    opening to the county's INCLUDE or REJECT (or the run's end)."""
    found = []
    for household, records in decisions.items():
        current = None
        for r in records:
            if r["decision"] in OPENINGS and _day(r["occurred_at"]) > CAMPAIGN_END:
                current = [r]
                found.append((household, current))
            elif current is not None:
                current.append(r)
                if r["decision"] in ("INCLUDE", "REJECT"):
                    current = None
    return found


def test_the_county_takes_up_what_monitoring_flags_after_the_campaign(run) -> None:
    """On the last day no household is left flagged past the 15 days to a decision: the backlog
    the campaign left and every later flag were taken up."""
    _, replay, decisions = run
    end = dt.datetime.combine(UNTIL, dt.time(23, 59), CST)
    policy = POLICIES.for_date(UNTIL)
    flagged = {
        h: a
        for h, log in replay.households.items()
        if (a := assess(log.state, policy, end)).workflow == "FLAGGED"
    }
    assert [h for h, a in flagged.items() if "decision_overdue" in a.overdue] == []
    procedures = _procedures(decisions)
    assert len(procedures) > 20
    # both ways in: a review group's verification, and households applying themselves
    openings = Counter(steps[0]["decision"] for _, steps in procedures)
    assert openings["START_VERIFICATION"] and openings["APPLY"], openings


def test_each_procedure_takes_every_step_in_order_with_its_level(run) -> None:
    _, replay, decisions = run
    outcomes: Counter[str] = Counter()
    for household, steps in _procedures(decisions):
        names = [s["decision"] + (f":{s['outcome']}" if s["outcome"] else "") for s in steps]
        last = names[-1]
        if last in ("INCLUDE", "REJECT"):
            outcomes[last] += 1
        if last == "INCLUDE":
            # deliberation (after any return), notice (again after a return), township review
            body = [n for n in names[1:-1] if n != "VILLAGE_DELIBERATION:RETURNED"]
            assert body[0] == "VILLAGE_DELIBERATION:PASSED", (household, names)
            assert body[1] == "NOTICE", (household, names)
            assert body[-1] == "TOWNSHIP_REVIEW:PASSED", (household, names)
            assert set(body[2:-1]) <= {"OBJECTION", "TOWNSHIP_REVIEW:RETURNED", "NOTICE"}
            assert steps[-1]["category"] is not None
        for s in steps:
            assert level_refusal(s, s["approving_level"]) is None, (household, s["decision"])
            if s["decision"] == "NOTICE":
                assert 5 <= s["notice_days"] <= 7
        outcomes.update(n for n in names if n.endswith("RETURNED") or n == "OBJECTION")
    # most are included, some rejected by the county, a few returned or objected to
    assert outcomes["INCLUDE"] > outcomes["REJECT"] > 0, outcomes
    assert outcomes["VILLAGE_DELIBERATION:RETURNED"] + outcomes["OBJECTION"] > 0, outcomes
    # and monitoring's own fold takes every decision: none ignored, none by exception
    end = dt.datetime.combine(UNTIL, dt.time(23, 59), CST)
    policy = POLICIES.for_date(UNTIL)
    ignored = [
        (h, r.message)
        for h, log in replay.households.items()
        for r in assess(log.state, policy, end).reasons
        if r.code == "invalid_transition"
        or (r.code == "procedure_exception" and r.since.date() > CAMPAIGN_END)
    ]
    assert ignored == []


def test_most_are_decided_within_the_fifteen_days_some_late(run) -> None:
    _, _, decisions = run
    days = [
        (_day(steps[-1]["occurred_at"]) - _day(steps[0]["occurred_at"])).days
        for _, steps in _procedures(decisions)
        if steps[-1]["decision"] in ("INCLUDE", "REJECT")
    ]
    within = sum(d <= 15 for d in days)
    assert within >= 0.75 * len(days), sorted(days)
    assert within < len(days), "some procedures run late"


def test_procedures_started_near_the_last_day_are_under_way_when_the_run_ends(run) -> None:
    """A procedure the run's end cuts off stays open: its household is in the procedure as
    monitoring reports it on the last day (in notice, awaiting a review or an approval)."""
    _, replay, decisions = run
    open_ = [(h, s) for h, s in _procedures(decisions) if s[-1]["decision"] not in
             ("INCLUDE", "REJECT")]  # fmt: skip
    assert open_, "procedures opened in the last days of the run"
    for household, steps in open_:
        assert _day(steps[0]["occurred_at"]) >= UNTIL - dt.timedelta(days=30), household
    end = dt.datetime.combine(UNTIL, dt.time(23, 59), CST)
    policy = POLICIES.for_date(UNTIL)
    awaiting = Counter()
    for household, _ in open_:
        a = assess(replay.households[household].state, policy, end)
        assert a.workflow == "VERIFYING" and a.procedure is not None, household
        awaiting[a.procedure.awaiting] += 1
    assert set(awaiting) & {"NOTICE_RUNNING", "TOWNSHIP_REVIEW", "COUNTY_APPROVAL"}, awaiting
