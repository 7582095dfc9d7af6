"""The 2020 → 2021 switch: decisions judged by the policy of their own date, every household in
the workflow carried over as national-2021.toml says, and income lines by year and province."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest

from services.monitoring.adapters.policy_files import POLICY_DIR, load_policies
from services.monitoring.domain.assess import assess, next_deadline, remembering
from services.monitoring.domain.fold import fold
from services.monitoring.domain.policy import IncomeLine, PolicyError, book_of, parse_policy
from tests.records import approved, at, income, registry, review
from tests.seed_households import general_key_2020, general_key_with_a_bill, zhou_uremia
from tests.unit.monitoring.events import domain

BOOK = load_policies()
HH = "h-general-key"


def assessed(records, as_of, household_id=HH, book=BOOK):
    return assess(fold(household_id, domain(records)), book.for_date(as_of.date()), as_of)


def notes(assessment, code="policy_transition"):
    return [r for r in assessment.reasons if r.code == code]


def shipped(name: str) -> dict:
    return tomllib.loads((POLICY_DIR / f"{name}.toml").read_text(encoding="utf-8"))


def test_a_general_key_household_is_carried_over_not_dropped():
    """The headline: INCLUDEd as GENERAL_KEY on 2020-06-10, still monitored in July 2021."""
    before = assessed(general_key_2020(), at("2020-12-31"))
    assert (before.policy_version, before.workflow, before.category) == (
        "dianjiang-2020",
        "MONITORED",
        "GENERAL_KEY",
    )
    assert not notes(before)
    after = assessed(general_key_2020(), at("2021-07-01"))
    assert (after.policy_version, after.workflow, after.category) == (
        "national-2021",
        "MONITORED",
        "MARGINAL",
    )
    assert not notes(after, "invalid_transition")  # the 2020 decision stays valid
    (transition,) = notes(after)
    assert transition.message == (
        "dianjiang-2020 → national-2021 on 2021-01-01: monitored household's GENERAL_KEY "
        "carried over as MARGINAL (none of rigid_expenditure, disaster, accident held); "
        "re-review due by 2021-01-16"
    )
    entry = tuple(str(r["event_id"]) for t, r in general_key_2020() if t == "ReviewDecided")
    assert len(entry) == 5 and transition.event_ids == entry  # the cycle's decisions
    assert transition.since == dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    # the re-review is a decision deadline: overdue once it has passed with no decision
    assert after.decision_due == dt.date(2021, 1, 16)
    assert "decision_overdue" in after.overdue
    assert "decision_overdue" not in assessed(general_key_2020(), at("2021-01-10")).overdue
    assert after.included_at == at("2020-06-10")  # monitored since then, not since the switch


def test_an_expenditure_shock_carries_general_key_over_as_sudden_hardship():
    records = general_key_with_a_bill("h-bill")
    a = assessed(records, at("2021-02-01"), "h-bill")
    assert (a.workflow, a.category) == ("MONITORED", "SUDDEN_HARDSHIP")
    (transition,) = notes(a)
    assert "carried over as SUDDEN_HARDSHIP (rigid_expenditure held on the effective date)" in (
        transition.message
    )
    assert "re-review" not in transition.message and a.decision_due is None
    bill = str(records[-1][1]["event_id"])
    assert bill in transition.event_ids  # the evidence that decided the carry-over


def test_a_decision_after_the_switch_answers_the_re_review():
    kept = [*general_key_2020(), review(HH, at("2021-01-12"), "KEEP_MONITORING")]
    a = assessed(kept, at("2021-07-01"))
    assert (a.workflow, a.category, a.decision_due, a.overdue) == (
        "MONITORED",
        "MARGINAL",
        None,
        ("visit_overdue",),
    )
    assert len(notes(a)) == 1  # the record of the switch stays with the cycle
    moved = [*general_key_2020(), review(HH, at("2021-01-12"), "INCLUDE", "SUDDEN_HARDSHIP")]
    b = assessed(moved, at("2021-07-01"))
    assert (b.category, b.decision_due, b.included_at) == (
        "SUDDEN_HARDSHIP",
        None,
        at("2020-06-10"),
    )


def test_each_decision_is_judged_by_the_policy_of_its_own_date():
    early = [*general_key_2020()[:2], review(HH, at("2020-06-10"), "INCLUDE", "SUDDEN_HARDSHIP")]
    a = assessed(early, at("2021-07-01"))
    (refused,) = notes(a, "invalid_transition")
    assert "'SUDDEN_HARDSHIP' is not one of dianjiang-2020's" in refused.message
    assert a.workflow != "MONITORED" and not notes(a)
    late = [*general_key_2020()[:2], review(HH, at("2021-02-01"), "INCLUDE", "GENERAL_KEY")]
    (refused,) = notes(assessed(late, at("2021-07-01")), "invalid_transition")
    assert "'GENERAL_KEY' is not one of national-2021's" in refused.message
    # at the very moment the successor takes over, a decision is the successor's
    midnight = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    edge = [*general_key_2020()[:2], *approved(HH, midnight, "INCLUDE", "MARGINAL")]
    c = assessed(edge, at("2021-03-01"))
    assert (c.workflow, c.category) == ("MONITORED", "MARGINAL")
    assert [n.message.split(": ", 1)[1] for n in notes(c)] == [
        "verification continues under national-2021's categories and rules"
    ]  # the procedure ran in 2020; the approval is 2021's


def test_verification_and_elimination_proposals_continue_under_the_successor():
    verifying = [*general_key_2020()[:2], review(HH, at("2020-12-28"), "START_VERIFICATION")]
    a = assessed(verifying, at("2021-01-05"))
    assert a.workflow == "VERIFYING"
    (transition,) = notes(a)
    assert transition.message.endswith("verification continues under national-2021's categories "
                                       "and rules")  # fmt: skip
    decided = [*verifying, *approved(HH, at("2021-01-06"), "INCLUDE", "MARGINAL", opening=False)]
    assert assessed(decided, at("2021-01-07")).category == "MARGINAL"
    proposed = [*general_key_2020(), review(HH, at("2020-12-20"), "PROPOSE_ELIMINATION")]
    b = assessed(proposed, at("2021-01-05"))
    assert (b.workflow, b.category) == ("ELIMINATION_PROPOSED", "MARGINAL")
    assert "elimination_proposed household's GENERAL_KEY" in notes(b)[0].message


def test_households_out_of_the_workflow_carry_nothing_over():
    rejected = [*general_key_2020()[:2], review(HH, at("2020-07-01"), "REJECT")]
    a = assessed(rejected, at("2021-03-01"))
    assert not notes(a) and a.workflow in ("REJECTED", "NOT_FLAGGED", "FLAGGED")
    zhou = [
        *zhou_uremia(),
        *approved("500231-zhou", at("2020-05-16", 20), "INCLUDE", "UNSTABLE_LIFTED"),
    ]
    b = assessed(zhou, at("2021-03-01"), "500231-zhou")
    (transition,) = notes(b)  # the same category on both sides, still recorded
    assert "UNSTABLE_LIFTED carried over as UNSTABLE_LIFTED" in transition.message
    assert b.decision_due is None


def test_a_pinned_policy_judges_every_decision_and_carries_nothing_over():
    state = fold(HH, domain(general_key_2020()))
    pinned = assess(state, BOOK.pinned("national-2021"), at("2021-07-01"))
    assert pinned.workflow != "MONITORED" and not notes(pinned)
    (refused,) = notes(pinned, "invalid_transition")
    assert "not one of national-2021's" in refused.message


def test_the_worker_re_assesses_on_the_day_the_successor_takes_over():
    a = assessed(general_key_2020(), at("2020-12-20"))
    assert next_deadline(a, BOOK.for_date(a.as_of.date())) == dt.date(2021, 1, 1)
    b = assessed(general_key_2020(), at("2021-01-02"))
    assert next_deadline(b, BOOK.for_date(b.as_of.date())) == dt.date(2021, 1, 17)


def test_the_shipped_mapping_covers_every_2020_category():
    national = BOOK.get("national-2021")
    assert national.succeeds is not None and national.succeeds.policy_id == "dianjiang-2020"
    carry = {
        (r.source, r.reasons): (r.target, r.rereview_days) for r in national.succeeds.carry_over
    }
    assert carry == {
        ("UNSTABLE_LIFTED", ()): ("UNSTABLE_LIFTED", None),
        ("MARGINAL", ()): ("MARGINAL", None),
        ("GENERAL_KEY", ("rigid_expenditure", "disaster", "accident")): ("SUDDEN_HARDSHIP", None),
        ("GENERAL_KEY", ()): ("MARGINAL", 15),
    }
    # the carry-over asks for the reasons by which 2021 itself candidates sudden hardship
    sudden = next(c for c in national.categories if c.category == "SUDDEN_HARDSHIP")
    assert carry[("GENERAL_KEY", sudden.reasons)] == ("SUDDEN_HARDSHIP", None)


def test_a_succession_that_would_drop_a_category_is_refused():
    dianjiang = parse_policy(shipped("dianjiang-2020"), "d.toml")
    data = shipped("national-2021")
    data["succeeds"]["categories"] = [
        c for c in data["succeeds"]["categories"] if c["from"] != "GENERAL_KEY" or c.get("reasons")
    ]
    with pytest.raises(PolicyError) as error:
        book_of([dianjiang, parse_policy(data, "n.toml")], "both")
    assert error.value.problems == [
        (
            "national-2021: succeeds.categories",
            "GENERAL_KEY needs an unconditional carry-over (the last entry for it without "
            "`reasons`)",
        )
    ]
    data["succeeds"]["categories"].append({"from": "GENERAL_KEY", "to": "GENERAL_KEY"})
    with pytest.raises(PolicyError, match="'GENERAL_KEY' is not one of this policy's"):
        parse_policy(data, "n.toml")
    orphan = shipped("national-2021")
    del orphan["succeeds"]
    with pytest.raises(PolicyError, match="follows dianjiang-2020 on 2021-01-01"):
        book_of([dianjiang, parse_policy(orphan, "n.toml")], "both")
    unknown = shipped("national-2021")
    unknown["succeeds"]["policy"] = "chongqing-2020"
    with pytest.raises(PolicyError, match="no policy 'chongqing-2020'"):
        book_of([dianjiang, parse_policy(unknown, "n.toml")], "both")


def with_lines(lines, province="Chongqing"):
    data = shipped("national-2021")
    data["income"]["lines"] = lines
    data["income"]["province"] = province
    return parse_policy(data, "lines.toml")


def test_the_income_line_in_force_is_the_province_s_for_the_year():
    policy = with_lines(
        [
            {"year": 2021, "yuan": 6000},
            {"year": 2022, "yuan": 6500},
            {"year": 2022, "province": "Chongqing", "yuan": 6900},
            {"year": 2023, "province": "Sichuan", "yuan": 7300},
        ]
    )
    assert policy.line_on(dt.date(2021, 12, 31)) == IncomeLine(2021, 6000)
    assert policy.line_on(dt.date(2022, 1, 1)) == IncomeLine(2022, 6900, "Chongqing")
    assert policy.line_on(dt.date(2024, 5, 1)) == IncomeLine(2022, 6900, "Chongqing")
    national = with_lines([{"year": 2021, "yuan": 6000}, {"year": 2022, "yuan": 6500}])
    assert national.line_on(dt.date(2023, 1, 1)) == IncomeLine(2022, 6500)
    assert policy.changes_after(dt.date(2021, 6, 1)) == dt.date(2022, 1, 1)
    assert policy.changes_after(dt.date(2022, 6, 1)) is None  # Sichuan's 2023 row is not ours


def test_the_rule_reads_the_line_of_the_assessment_date_and_names_it():
    policy = with_lines(
        [{"year": 2021, "yuan": 6000}, {"year": 2022, "province": "Chongqing", "yuan": 6900}]
    )
    records = [
        registry("h-line", at("2020-12-31"), registration="NEVER_REGISTERED"),
        income("h-line", at("2021-11-10"), 6700, end="2021-10-31"),
    ]
    state = fold("h-line", domain(records))
    december, state = remembering(state, policy, at("2021-12-31"))
    assert "income_below_line" not in {r.code for r in december.reasons}
    january = assess(state, policy, at("2022-01-05"))  # the remembered views must not hide it
    (below,) = [r for r in january.reasons if r.code == "income_below_line"]
    assert below.message.endswith("line of 6900 yuan (Chongqing 2022)")
    assert january == assess(fold("h-line", domain(records)), policy, at("2022-01-05"))


def test_bad_income_lines_are_refused_with_every_problem():
    data = shipped("national-2021")
    data["income"]["lines"] = [
        {"year": 2022, "yuan": 6500},
        {"year": 2022, "yuan": 6600},
        {"year": "2023", "yuan": 0, "region": "x"},
    ]
    with pytest.raises(PolicyError) as error:
        parse_policy(data, "bad.toml")
    problems = error.value.problems
    assert ("income.lines", "2022 national appears twice") in problems
    assert ("income.lines", "no line for 2021 (effective_from) nationally or for Chongqing") in (
        problems
    )
    assert {"income.lines[2].year", "income.lines[2].yuan", "income.lines[2].region"} <= {
        w for w, _ in problems
    }
    data["income"]["line_yuan"] = 6000
    with pytest.raises(PolicyError, match="either line_yuan or"):
        parse_policy(data, "both.toml")


def test_a_single_line_for_the_whole_version_still_reads():
    data = shipped("national-2021")
    del data["income"]["lines"]
    data["income"]["line_yuan"] = 6200
    policy = parse_policy(data, "legacy.toml")
    assert policy.line_on(dt.date(2024, 3, 1)) == IncomeLine(2021, 6200)
    assert policy.changes_after(dt.date(2021, 3, 1)) is None
