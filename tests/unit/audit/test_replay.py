"""Replay re-derives every emitted assessment from the log prefix its chain hash names, and
finds a removed, altered or reordered input record."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.audit.replay import Replay
from services.monitoring.adapters.policy_files import load_policies
from tests.records import approved, at
from tests.seed_households import monitored_then_eliminated, wu_chickens, wu_sales_aid, zhou_uremia
from tests.unit.audit.emitter import CODEC, as_log, emitted

POLICIES = load_policies()


def scenario_log():
    records = (
        zhou_uremia("au-zhou")
        + wu_chickens("au-wu")
        + wu_sales_aid("au-wu")
        + monitored_then_eliminated("au-elim")
    )
    records.sort(key=lambda r: r[1]["recorded_at"])  # arrival order, across topics
    return as_log(records)


def replayed(log, risk):
    replay = Replay(CODEC, POLICIES)
    for r in log + risk:
        replay.feed(r)
    return replay


def test_replay_reproduces_every_emitted_assessment():
    log = scenario_log()
    risk = emitted(log, POLICIES)
    assert len(risk) >= 6
    derived, differences = replayed(log, risk).verify_emitted()
    assert differences == []
    assert len(derived) == len(risk)


def test_replay_finds_an_altered_assessment():
    log = scenario_log()
    risk = emitted(log, POLICIES)
    record = CODEC.decode(risk[-1].value).record
    record["category"] = "MARGINAL" if record["category"] != "MARGINAL" else "GENERAL_KEY"
    forged = replace(risk[-1], value=CODEC.encode("shouwang.events.RiskAssessed", record))
    _, differences = replayed(log, [*risk[:-1], forged]).verify_emitted()
    fields = {d.field for d in differences}
    assert "category" in fields and "event_id" in fields


def test_replay_finds_an_altered_procedure():
    log = scenario_log()
    risk = emitted(log, POLICIES)
    records = [CODEC.decode(r.value).record for r in risk]
    i = next(i for i, r in enumerate(records) if r["procedure"] is not None)
    records[i]["procedure"]["objections"] += 1  # an objection nobody raised
    forged = replace(risk[i], value=CODEC.encode("shouwang.events.RiskAssessed", records[i]))
    _, differences = replayed(log, [*risk[:i], forged, *risk[i + 1 :]]).verify_emitted()
    assert {d.field for d in differences} - {"event_id"} == {"procedure"}


def test_a_removed_input_record_breaks_the_chain_and_is_located():
    log = scenario_log()
    risk = emitted(log, POLICIES)
    victim = next(r for r in log if r.key == b"au-elim" and r.topic == "household.reviews")
    _, differences = replayed([r for r in log if r is not victim], risk).verify_emitted()
    chain = [d for d in differences if d.field == "chain_hash"]
    assert chain and {d.household_id for d in chain} == {"au-elim"}
    assert f"household.reviews[{victim.partition}] from the start" in chain[0].where


def test_an_altered_input_record_breaks_the_chain():
    log = scenario_log()
    risk = emitted(log, POLICIES)
    i = next(i for i, r in enumerate(log) if r.key == b"au-zhou" and r.topic == "household.visits")
    record = CODEC.decode(log[i].value).record
    record["income_estimate"]["per_capita_yuan"] = 9000
    altered = [
        *log[:i],
        replace(log[i], value=CODEC.encode("shouwang.events.VisitRecorded", record)),
    ]
    _, differences = replayed(altered + log[i + 1 :], risk).verify_emitted()
    assert any(d.field == "chain_hash" and d.household_id == "au-zhou" for d in differences)


def test_a_replay_without_history_folds_and_assesses_the_same_and_refuses_to_verify():
    log = scenario_log()
    risk = emitted(log, POLICIES)
    full = replayed(log, risk)
    bare = Replay(CODEC, POLICIES, history=False)
    for r in log + risk:
        bare.feed(r)
    assert (bare.records, bare.applied, bare.rejected) == (full.records, full.applied, [])
    assert sorted(bare.households) == sorted(full.households)
    for hid, household in full.households.items():
        other = bare.households[hid]
        assert other.state == household.state
        assert bare.assess_latest(other) == full.assess_latest(household)
        assert (other.events, other.notes, other.emissions, other.chains.links) == ({}, {}, [], {})
    with pytest.raises(ValueError, match="history=True"):
        bare.verify_emitted()


def test_assessments_written_before_the_exceptions_list_verify_as_they_were_written():
    """A log from before RiskAssessed v3: its records list no exceptions and their ids are the
    digests of contents without them. Replay judges them as written, not against v3's id."""
    from services.monitoring.adapters import avro_translation as avro
    from services.monitoring.service import emitted_digest

    # zhou, included in May 2020 and eliminated by the county in July although monitored too
    # short: the elimination takes effect as a policy_exception
    early = (
        zhou_uremia("au-early")
        + approved("au-early", at("2020-05-25"), "INCLUDE", "UNSTABLE_LIFTED")
        + approved("au-early", at("2020-07-20"), "ELIMINATE")
    )
    log = as_log(sorted(early, key=lambda r: r[1]["recorded_at"]))
    risk = emitted(log, POLICIES)
    records = [CODEC.decode(r.value).record for r in risk]
    assert any(r["exceptions"] for r in records)
    old = []
    for frame, record in zip(risk, records, strict=True):
        hid = record["household_id"]
        version = next(
            v for v in range(10_000)
            if avro.assessment_id(hid, v, emitted_digest(record)) == record["event_id"]
        )  # fmt: skip
        record["exceptions"] = None  # as a v2 record reads
        record["event_id"] = avro.assessment_id(hid, version, emitted_digest(record))
        old.append(replace(frame, value=CODEC.encode("shouwang.events.RiskAssessed", record)))
    derived, differences = replayed(log, old).verify_emitted()
    assert differences == [] and len(derived) == len(old)
    # a v3 record whose list was altered is found
    records = [CODEC.decode(r.value).record for r in risk]
    i = next(i for i, r in enumerate(records) if r["exceptions"])
    records[i]["exceptions"] = []
    forged = replace(risk[i], value=CODEC.encode("shouwang.events.RiskAssessed", records[i]))
    _, differences = replayed(log, [*risk[:i], forged, *risk[i + 1 :]]).verify_emitted()
    assert "exceptions" in {d.field for d in differences}
