"""The entry and exit procedure in the fold: each step in order, a skipped step refused unless
the county approves an exception with a reason, the assessment's `procedure` and overdue step,
and (like the fold) order-independence and idempotence."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.contract.codec import Codec
from services.monitoring.adapters import avro_translation as avro
from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.adapters.table_codec import dump_row, load_row
from services.monitoring.domain.assess import assess, next_deadline
from services.monitoring.domain.fold import evolve, fold
from services.monitoring.domain.row import Row
from tests.records import approved, at, income, registry, review
from tests.unit.monitoring.events import domain

BOOK = load_policies()
POLICY = BOOK.get("dianjiang-2020")
HH = "h-proc"
VILLAGE = {"body": "VILLAGE", "approving_level": "VILLAGE"}
TOWNSHIP = {"body": "TOWNSHIP", "approving_level": "TOWNSHIP"}
COUNTY = {"body": "COUNTY", "approving_level": "COUNTY"}


def flagged() -> list:
    """A marginal household below the line, flagged in May 2020."""
    return [
        registry(HH, at("2019-12-31"), registration="NEVER_REGISTERED"),
        income(HH, at("2020-05-01"), 5000, end="2020-04-30"),
    ]


def assessed(records, as_of):
    return assess(fold(HH, domain(records)), POLICY, as_of)


def codes(a) -> list[str]:
    return [r.code for r in a.reasons]


def notes(a, code):
    return [r for r in a.reasons if r.code == code]


def step(when, decision, label, **fields):
    return review(HH, when, decision, label=label, **fields)


def entry_until(stop: str) -> list:
    """The entry procedure's records up to (not including) `stop`."""
    steps = [
        ("open", step(at("2020-05-02"), "START_VERIFICATION", "open")),
        (
            "deliberation",
            step(at("2020-05-05"), "VILLAGE_DELIBERATION", "delib", outcome="PASSED", **VILLAGE),
        ),
        (
            "notice",
            step(
                at("2020-05-06"),
                "NOTICE",
                "notice",
                notice_start=dt.date(2020, 5, 6),
                notice_days=5,
                **VILLAGE,
            ),
        ),
        (
            "township",
            step(at("2020-05-11"), "TOWNSHIP_REVIEW", "township", outcome="PASSED", **TOWNSHIP),
        ),
    ]
    out = flagged()
    for name, record in steps:
        if name == stop:
            break
        out.append(record)
    return out


def include(when=None, **fields):
    return step(when or at("2020-05-12"), "INCLUDE", "include", category="MARGINAL", **fields)


def test_every_entry_step_in_order_puts_the_household_under_monitoring():
    seen = []
    for stop, day, awaiting, due in [
        ("deliberation", "2020-05-03", "VILLAGE_DELIBERATION", dt.date(2020, 5, 7)),
        ("notice", "2020-05-05", "NOTICE", dt.date(2020, 5, 6)),
        ("township", "2020-05-08", "NOTICE_RUNNING", dt.date(2020, 5, 10)),
        ("township", "2020-05-11", "TOWNSHIP_REVIEW", dt.date(2020, 5, 12)),
        ("none", "2020-05-11", "COUNTY_APPROVAL", dt.date(2020, 5, 13)),
    ]:
        a = assessed(entry_until(stop), at(day, 20))
        assert a.workflow == "VERIFYING"
        p = a.procedure
        assert (p.direction, p.awaiting, p.due) == ("ENTRY", awaiting, due)
        seen.append(len(p.steps))
    assert seen == [1, 2, 3, 3, 4]
    running = assessed(entry_until("township"), at("2020-05-08"))
    assert (running.procedure.notice_start, running.procedure.notice_ends) == (
        dt.date(2020, 5, 6),
        dt.date(2020, 5, 10),
    )
    # the worker re-assesses the day after the notice ends, when the township review is awaited
    assert next_deadline(running, POLICY) == dt.date(2020, 5, 11)
    done = assessed([*entry_until("none"), include(**COUNTY)], at("2020-05-12", 20))
    assert (done.workflow, done.category, done.procedure) == ("MONITORED", "MARGINAL", None)
    assert not notes(done, "invalid_transition") and not notes(done, "procedure_exception")


def test_an_include_skipping_the_notice_is_refused_naming_the_step():
    records = [*entry_until("notice"), include(**COUNTY)]
    a = assessed(records, at("2020-05-12", 20))
    assert a.workflow == "VERIFYING"  # nothing changed
    (refused,) = notes(a, "invalid_transition")
    assert "missing step NOTICE" in refused.message
    assert refused.event_ids == (str(records[-1][1]["event_id"]),)
    direct = assessed([*flagged(), include(**COUNTY)], at("2020-05-12", 20))
    assert direct.workflow == "FLAGGED"
    assert "missing step VILLAGE_DELIBERATION" in notes(direct, "invalid_transition")[0].message


def test_a_county_exception_with_a_reason_takes_effect_and_is_kept_on_record():
    why = "household hospitalised; the village could not meet during the flood"
    records = [*entry_until("notice"), include(exception=True, reason=why, **COUNTY)]
    a = assessed(records, at("2020-05-12", 20))
    assert a.workflow == "MONITORED"
    (exception,) = notes(a, "procedure_exception")
    assert "skipping NOTICE" in exception.message and why in exception.message
    for fields, problem in [
        ({"exception": True, "reason": " ", **COUNTY}, "without a written reason"),
        ({"exception": True, "reason": why, **TOWNSHIP}, "only the county approves exceptions"),
        ({"exception": True, "reason": why, "body": "REVIEW_GROUP", "approving_level": "COUNTY"},
         "only the county approves exceptions"),
    ]:  # fmt: skip
        refused = assessed([*entry_until("notice"), include(**fields)], at("2020-05-12", 20))
        assert refused.workflow == "VERIFYING"
        (note,) = notes(refused, "invalid_transition")
        assert problem in note.message and "NOTICE" in note.message


def test_objections_are_counted_during_the_notice():
    objection = step(
        at("2020-05-07"), "OBJECTION", "obj", reason="neighbour: owns a car", **VILLAGE
    )
    a = assessed([*entry_until("township"), objection], at("2020-05-08"))
    assert a.procedure.objections == 1 and a.procedure.awaiting == "NOTICE_RUNNING"
    assert str(objection[1]["event_id"]) in a.procedure.steps
    early = step(at("2020-05-03"), "OBJECTION", "early", **VILLAGE)
    b = assessed([*entry_until("notice"), early], at("2020-05-08"))
    assert b.procedure.objections == 0
    assert "no public notice posted" in notes(b, "invalid_transition")[0].message


def test_a_notice_shorter_than_the_minimum_and_a_review_before_it_ends_are_refused():
    short = step(
        at("2020-05-06"), "NOTICE", "short", notice_start=dt.date(2020, 5, 6), notice_days=3,
        **VILLAGE,
    )  # fmt: skip
    a = assessed([*entry_until("notice"), short], at("2020-05-08"))
    assert a.procedure.awaiting == "NOTICE"
    assert (
        "shorter than the policy's minimum of 5 days" in notes(a, "invalid_transition")[0].message
    )
    hasty = step(at("2020-05-09"), "TOWNSHIP_REVIEW", "hasty", outcome="PASSED", **TOWNSHIP)
    b = assessed([*entry_until("township"), hasty], at("2020-05-09", 20))
    assert b.procedure.awaiting == "NOTICE_RUNNING"
    assert "before the notice ends on 2020-05-10" in notes(b, "invalid_transition")[0].message
    blank = step(at("2020-05-05"), "VILLAGE_DELIBERATION", "blank", **VILLAGE)
    c = assessed([*entry_until("deliberation"), blank], at("2020-05-05", 20))
    assert "needs an outcome" in notes(c, "invalid_transition")[0].message


def test_returned_sends_the_procedure_back_one_step():
    back = step(at("2020-05-11"), "TOWNSHIP_REVIEW", "back", outcome="RETURNED", **TOWNSHIP)
    a = assessed([*entry_until("township"), back], at("2020-05-11", 20))
    assert a.procedure.awaiting == "NOTICE"
    refused = assessed([*entry_until("township"), back, include(**COUNTY)], at("2020-05-12", 20))
    assert refused.workflow == "VERIFYING"
    again = step(at("2020-05-05"), "VILLAGE_DELIBERATION", "re", outcome="RETURNED", **VILLAGE)
    b = assessed([*entry_until("notice"), again], at("2020-05-05", 20))
    assert b.procedure.awaiting == "VILLAGE_DELIBERATION"


def test_an_overdue_step_is_reported():
    a = assessed(entry_until("deliberation"), at("2020-05-08"))
    assert "procedure_step_overdue" in a.overdue
    assert (
        "procedure_step_overdue"
        not in assessed(entry_until("deliberation"), at("2020-05-07")).overdue
    )


def test_the_exit_procedure_runs_the_same_steps():
    base = [*flagged(), *approved(HH, at("2020-05-12"), "INCLUDE", "MARGINAL")]
    eliminate = review(HH, at("2020-12-01"), "ELIMINATE", **COUNTY)
    skipped = assessed([*base, eliminate], at("2020-12-02"))
    assert skipped.workflow == "MONITORED"
    assert "missing step VILLAGE_DELIBERATION" in notes(skipped, "invalid_transition")[0].message
    proposed = [*base, review(HH, at("2020-11-20"), "PROPOSE_ELIMINATION", label="propose")]
    p = assessed(proposed, at("2020-11-21")).procedure
    assert (p.direction, p.awaiting) == ("EXIT", "VILLAGE_DELIBERATION")
    done = assessed([*base, *approved(HH, at("2020-12-01"), "ELIMINATE")], at("2020-12-02"))
    assert done.workflow == "ELIMINATED" and done.procedure is None
    assert not notes(done, "invalid_transition")


def test_the_emitted_record_carries_the_procedure_and_reads_back_to_the_same_content():
    a = assessed([*entry_until("township")], at("2020-05-08"))
    record = avro.assessment_record(a, 7, at("2020-05-08"))
    assert Codec.default().validate("RiskAssessed", record) == []
    assert record["procedure"]["awaiting"] == "NOTICE_RUNNING"
    assert avro.assessment_content(record) == a.content()
    none = assessed(flagged(), at("2020-05-08"))
    assert avro.assessment_record(none, 1, at("2020-05-08"))["procedure"] is None
    assert len(none.content()) == 6  # an assessment without a procedure keeps its v1 digest


# Properties: a history of procedure steps on few days, so that orders and ties matter.
DAYS = [at("2020-05-02"), at("2020-05-05"), at("2020-05-06"), at("2020-05-12"), at("2020-05-20")]
DECISIONS = [
    "START_VERIFICATION",
    "APPLY",
    "VILLAGE_DELIBERATION",
    "NOTICE",
    "OBJECTION",
    "TOWNSHIP_REVIEW",
    "INCLUDE",
    "REJECT",
    "PROPOSE_ELIMINATION",
    "ELIMINATE",
    "KEEP_MONITORING",
]


@st.composite
def decisions(draw, label: int):
    decision = draw(st.sampled_from(DECISIONS))
    level = draw(st.sampled_from(["VILLAGE", "TOWNSHIP", "COUNTY"]))
    fields = {"body": level, "approving_level": level}
    if decision in ("VILLAGE_DELIBERATION", "TOWNSHIP_REVIEW"):
        fields["outcome"] = draw(st.sampled_from(["PASSED", "RETURNED", None]))
    if decision == "NOTICE":
        fields["notice_start"] = draw(st.sampled_from(DAYS)).date()
        fields["notice_days"] = draw(st.integers(3, 7))
    if decision in ("INCLUDE", "ELIMINATE"):
        fields["exception"] = draw(st.booleans())
        fields["reason"] = draw(st.sampled_from(["", "flood"]))
    category = "MARGINAL" if decision == "INCLUDE" else None
    return review(HH, draw(st.sampled_from(DAYS)), decision, category, label=f"d{label}", **fields)


@st.composite
def procedure_histories(draw):
    size = draw(st.integers(1, 14))
    return domain([*flagged(), *(draw(decisions(i)) for i in range(size))])


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MOMENTS = [at("2020-05-08"), at("2020-05-13"), at("2020-06-30")]


def states(state):
    return [assess(state, POLICY, m) for m in MOMENTS]


@SETTINGS
@given(procedure_histories(), st.randoms(use_true_random=False))
def test_the_procedure_is_order_independent(events, rnd):
    shuffled = list(events)
    rnd.shuffle(shuffled)
    a, b = states(fold(HH, events)), states(fold(HH, shuffled))
    assert a == b
    assert [x.procedure for x in a] == [x.procedure for x in b]


@SETTINGS
@given(procedure_histories(), st.data())
def test_the_procedure_is_idempotent_and_survives_the_table_row(events, data):
    state = fold(HH, events)
    duplicate = data.draw(st.sampled_from(events))
    assert evolve(state, duplicate) is state
    position = data.draw(st.integers(0, len(events)))
    assert fold(HH, [*events[:position], duplicate, *events[position:]]) == state
    restored = load_row(dump_row(Row(state))).state
    assert states(restored) == states(state)


def test_an_assessment_lists_every_exception_standing_in_the_households_history():
    """RiskAssessed v3 `exceptions`: this cycle's and earlier cycles' exceptions that took
    effect, so the read model withdraws one the newest assessment no longer lists and keeps an
    earlier cycle's (test_exception_sweep)."""
    why = "household hospitalised; the village could not meet during the flood"
    assert assessed(flagged(), at("2020-05-08")).exceptions == ()
    skipped = include(exception=True, reason=why, **COUNTY)
    records = [*entry_until("notice"), skipped]
    taken = (f"{skipped[1]['event_id']}/procedure_exception",)
    included = assessed(records, at("2020-05-12", 20))
    assert included.exceptions == taken
    refused = assessed([*entry_until("notice"), include(**COUNTY)], at("2020-05-12", 20))
    assert refused.exceptions == ()  # an invalid_transition took no effect: not listed
    # eliminated, then a new cycle: the earlier cycle's exception is no longer among the
    # reasons but still listed
    eliminated = [*records, *approved(HH, at("2020-12-01"), "ELIMINATE")]
    again = step(at("2021-03-01"), "START_VERIFICATION", "again")
    closed = assessed(eliminated, at("2020-12-02"))
    # (eliminated too early: the county's decision takes effect as a policy exception)
    assert closed.exceptions[0] == taken[0] and len(notes(closed, "policy_exception")) >= 1
    later = assessed([*eliminated, again], at("2021-03-02"))
    assert later.workflow == "VERIFYING" and not notes(later, "procedure_exception")
    assert later.exceptions == closed.exceptions
    record = avro.assessment_record(later, 9, at("2021-03-02"))
    assert record["exceptions"] == list(later.exceptions)
    assert Codec.default().validate("RiskAssessed", record) == []
    assert avro.assessment_content(record) == later.content()
    none = avro.assessment_record(assessed(flagged(), at("2020-05-08")), 1, at("2020-05-08"))
    assert avro.assessment_content(none) == assessed(flagged(), at("2020-05-08")).content()
    assert len(assessed(flagged(), at("2020-05-08")).content()) == 6  # digest as before v3
