"""Monitoring after the campaign (`--until`): the county keeps visiting its monitored households
and re-reviews the general key households the 2021 policy switch carries over."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from collections import defaultdict

import pytest

from services.audit.replay import Replay
from services.contract.codec import Codec
from services.monitoring.adapters.policy_files import POLICY_DIR, load_policies
from services.monitoring.domain.assess import assess
from services.monitoring.domain.workflow import stage_at
from services.platform.kafka.log import LogRecord
from services.tools.simulation import SimulationParameters, generate
from services.tools.simulation import records as rec
from services.tools.simulation.aftercare import SWITCH
from services.tools.simulation.command import until_day
from services.tools.simulation.parameters import CST, CampaignCalendar
from services.visits.domain.levels import level_refusal

UNTIL = dt.date(2021, 6, 30)
CODEC = Codec.default()
POLICIES = load_policies()


@pytest.fixture(scope="module")
def into_2021():
    parameters = SimulationParameters(seed=5, scale=0.05, calendar=CampaignCalendar(until=UNTIL))
    return list(generate(parameters))


def _day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(CST).date()


def test_monitoring_goes_on_to_the_day_asked_and_not_a_day_past_it(into_2021) -> None:
    days = [_day(e.record["occurred_at"]) for e in into_2021]
    assert max(days) <= UNTIL
    visits = [_day(e.record["occurred_at"]) for e in into_2021 if e.event_type == rec.VISIT]
    months = {(d.year, d.month) for d in visits if d > CampaignCalendar().end}
    # a follow-up visit every month of the second half of 2020 and the first of 2021
    assert {(2020, m) for m in range(8, 13)} | {(2021, m) for m in range(1, 7)} <= months
    incomes = [e for e in into_2021 if e.event_type == rec.INCOME]
    assert any(_day(e.record["occurred_at"]) >= SWITCH for e in incomes)


def _rereviews(records: list[dict]) -> list[dict]:
    """The household's INCLUDEs after the switch outside an entry procedure: the county's
    re-review of a category (an INCLUDE after START_VERIFICATION or APPLY is an entry)."""
    found, entering = [], False
    for r in sorted(records, key=lambda r: r["occurred_at"]):
        if r["decision"] in ("START_VERIFICATION", "APPLY"):
            entering = True
        elif r["decision"] in ("INCLUDE", "REJECT", "ELIMINATE"):
            if r["decision"] == "INCLUDE" and not entering and _day(r["occurred_at"]) >= SWITCH:
                found.append(r)
            entering = False
    return found


def test_every_general_key_household_is_re_reviewed_after_the_switch(into_2021) -> None:
    decisions = defaultdict(list)
    for e in into_2021:
        if e.event_type == rec.REVIEW:
            decisions[e.record["household_id"]].append(e.record)
    general_key = {
        h
        for h, records in decisions.items()
        if any(r["decision"] == "INCLUDE" and r["category"] == "GENERAL_KEY" for r in records)
    }
    assert general_key, "the seed county monitors general key households in 2020"
    for household in general_key:
        # exactly one re-review (a household flagged again later enters again, by procedure)
        after = _rereviews(decisions[household])
        assert len(after) == 1, household
        (decision,) = after
        assert decision["category"] in ("MARGINAL", "SUDDEN_HARDSHIP")
        assert (decision["body"], decision["approving_level"]) == ("COUNTY", "COUNTY")
        assert _day(decision["occurred_at"]) <= SWITCH + dt.timedelta(days=30)
    # nobody else is re-categorised in 2021: the other categories carry over unchanged
    others = [r for h, rs in decisions.items() if h not in general_key for r in _rereviews(rs)]
    assert others == []


def test_the_records_after_the_campaign_are_valid_under_the_contract(into_2021) -> None:
    late = [e for e in into_2021 if _day(e.record["occurred_at"]) > CampaignCalendar().end]
    assert late
    assert [(e.event_type, p) for e in late if (p := CODEC.validate(e.event_type, e.record))] == []
    # and the visits door takes each review decision from a token of its approving level, as
    # the demo's sink posts it (body and level agreeing with that level)
    refused = [
        (e.record["decision"], e.record["body"], e.record["approving_level"], refusal)
        for e in into_2021
        if e.event_type == rec.REVIEW
        and (refusal := level_refusal(e.record, e.record["approving_level"])) is not None
    ]
    assert refused == []


def test_without_until_nothing_happens_after_the_campaign() -> None:
    events = generate(SimulationParameters(seed=5, scale=0.01))
    assert max(_day(e.record["occurred_at"]) for e in events) <= CampaignCalendar().end


def test_until_before_the_campaign_ends_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="before the campaign ends"):
        CampaignCalendar(until=dt.date(2020, 7, 1))
    with pytest.raises(argparse.ArgumentTypeError, match="before the campaign ends"):
        until_day("2020-06-30")
    with pytest.raises(argparse.ArgumentTypeError, match="not a day written YYYY-MM-DD"):
        until_day("2021-13-01")
    assert until_day("2021-06-30") == UNTIL


def test_qualifying_households_go_through_the_exit_procedure_the_policy_accepts(into_2021):
    """Every elimination the simulation writes follows the exit procedure and meets the
    policy's conditions: folded by monitoring's own code, none is a policy exception."""
    decisions = defaultdict(list)
    for e in into_2021:
        if e.event_type == rec.REVIEW:
            decisions[e.record["household_id"]].append(e.record)
    eliminated = [h for h, rs in decisions.items() if any(r["decision"] == "ELIMINATE" for r in rs)]
    assert eliminated, "households monitored since 2019 qualify in 2021"
    for household in eliminated:
        ordered = [
            r["decision"] for r in sorted(decisions[household], key=lambda r: r["occurred_at"])
        ]
        # from the proposal to the approval (a household flagged again later enters again)
        proposed, approved = ordered.index("PROPOSE_ELIMINATION"), ordered.index("ELIMINATE")
        steps = [d for d in ordered[proposed : approved + 1] if d != "INCLUDE"]
        assert steps == [
            "PROPOSE_ELIMINATION", "VILLAGE_DELIBERATION", "NOTICE", "TOWNSHIP_REVIEW", "ELIMINATE"
        ], household  # fmt: skip
    replay = Replay(CODEC, POLICIES)
    for n, e in enumerate(into_2021):
        key = e.record.get("household_id", e.record.get("cadre_id", "")).encode()
        replay.feed(LogRecord(e.topic.name, 0, n, 0, key, CODEC.encode(e.event_type, e.record)))
    assert replay.rejected == []
    end = dt.datetime.combine(UNTIL, dt.time(23), CST)
    policy = POLICIES.for_date(UNTIL)
    outcomes = {h: assess(replay.households[h].state, policy, end) for h in eliminated}
    exceptions = [
        (h, r.message)
        for h, a in outcomes.items()
        for r in a.reasons
        if r.code in ("policy_exception", "invalid_transition")
    ]
    assert exceptions == []
    for household in eliminated:  # each approval took effect (later risks may flag it again)
        (approval,) = [r for r in decisions[household] if r["decision"] == "ELIMINATE"]
        when = approval["occurred_at"]
        stage = stage_at(replay.households[household].state, POLICIES.for_date(when.date()), when)
        assert stage.status == "ELIMINATED", household
        # the elimination's own cycle too (a household flagged again later opens a new one)
        assert [x.message for x in stage.exceptions] == [], household


def test_importing_the_simulation_reads_no_data_file_and_its_first_use_reads_the_policies_once():
    # A fresh interpreter: this one has imported (and maybe used) the simulation already.
    probe = """
import json, sys
opened = []
sys.addaudithook(lambda event, args: event == "open" and opened.append(str(args[0])))
from services.tools.simulation import aftercare
at_import = list(opened)
book = aftercare.shipped_policies()
assert aftercare.shipped_policies() is book
print(json.dumps({"at_import": at_import, "at_use": opened[len(at_import):]}))
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    opened = json.loads(result.stdout)
    policy_files = sorted(str(p) for p in POLICY_DIR.glob("*.toml"))
    # the policies and the measure catalogue wait for first use (the contract's vocabulary
    # still reads its Avro schemas on import: services/contract, not the simulation's)
    assert [f for f in opened["at_import"] if f.endswith(".toml")] == []
    assert sorted(f for f in opened["at_use"] if f.endswith(".toml")) == policy_files
