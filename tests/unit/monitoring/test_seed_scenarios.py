"""The seed's households as event sequences, each with the outcome the rules must give."""

from __future__ import annotations

import datetime as dt

import pytest

from services.contract.codec import Codec
from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.domain.assess import assess
from services.monitoring.domain.fold import fold
from tests.records import approved, at, hardship, income, measure, problem, registry, review, visit
from tests.seed_households import wu_chickens, wu_sales_aid, zhou_uremia
from tests.unit.monitoring.events import domain

BOOK = load_policies()
DIANJIANG = BOOK.get("dianjiang-2020")
NATIONAL = BOOK.get("national-2021")


def assessed(household_id, records, as_of, policy=DIANJIANG):
    return assess(fold(household_id, domain(records)), policy, as_of)


def codes(assessment) -> set[str]:
    return {r.code for r in assessment.reasons}


def test_builders_make_valid_contract_records():
    codec = Codec.default()
    for event_type, record in [*zhou_uremia(), *wu_chickens(), *wu_sales_aid()]:
        assert codec.validate(event_type, record) == []


def test_policy_is_chosen_by_date():
    assert BOOK.for_date(dt.date(2020, 5, 16)).id == "dianjiang-2020"
    assert BOOK.for_date(dt.date(2021, 3, 1)).id == "national-2021"
    with pytest.raises(LookupError):
        BOOK.for_date(dt.date(2019, 1, 1))


def test_uremia_patient_is_a_high_risk_unstable_lifted_household():
    a = assessed("500231-zhou", zhou_uremia(), at("2020-05-16", 21))
    assert (a.level, a.category, a.workflow) == ("HIGH", "UNSTABLE_LIFTED", "FLAGGED")
    assert {"income_below_line", "serious_illness", "no_labour"} <= codes(a)
    assert a.policy_version == "dianjiang-2020"
    illness = next(r for r in a.reasons if r.code == "serious_illness")
    uremia_report = zhou_uremia()[3][1]["event_id"]
    assert str(uremia_report) in illness.event_ids
    # the industry aid he received does not answer illness or low income
    # His registry row lists him seriously ill and without full labour (2 + 2 ≥ the flag level
    # of 3): flagged from the baseline, so the decision was due 15 days after it. The medical
    # bill alone (7,200 yuan < 6,100 × 2 of last year's income) would not have flagged him.
    assert a.decision_due == dt.date(2020, 1, 15)


def test_uremia_patient_put_under_monitoring_by_the_county():
    records = [
        *zhou_uremia(),
        *approved("500231-zhou", at("2020-05-16", 20), "INCLUDE", "UNSTABLE_LIFTED"),
    ]
    a = assessed("500231-zhou", records, at("2020-05-16", 21))
    assert (a.workflow, a.category, a.level) == ("MONITORED", "UNSTABLE_LIFTED", "HIGH")
    assert a.next_visit_due == dt.date(2020, 6, 15)
    later = assessed("500231-zhou", records, at("2020-06-20"))
    assert "visit_overdue" in later.overdue
    # income below the line, monitored for a month: elimination is not allowed
    assert later.elimination is not None and not later.elimination.allowed
    unmet = dict(later.elimination.unmet)
    assert {"income_not_above_line", "monitored_too_short"} <= set(unmet)


def test_poultry_farmer_with_unsold_chickens_is_flagged_and_clears_after_sales_aid():
    a = assessed("500231-wu", wu_chickens(), at("2020-03-11"))
    assert a.workflow == "FLAGGED" and a.category == "UNSTABLE_LIFTED"
    assert "unsold_produce" in codes(a)
    cleared = assessed("500231-wu", [*wu_chickens(), *wu_sales_aid()], at("2020-03-21"))
    assert "unsold_produce" not in codes(cleared)
    assert cleared.workflow == "NOT_FLAGGED"
    # aid delivered before the visit that reported the produce answers nothing
    early = [
        measure(
            "500231-wu",
            at("2020-03-01"),
            "m-sales",
            "DELIVERED",
            "SALES_AID",
            "sales.produce-buyers",
        )
    ]
    still = assessed("500231-wu", [*wu_chickens(), *early], at("2020-03-21"))
    assert "unsold_produce" in codes(still)


def test_unsold_produce_does_not_threaten_a_household_living_on_wages():
    records = [
        registry("h-wage", at("2019-12-31"), livelihood="MIGRANT_WORK", baseline=(2019, 20000)),
        visit("h-wage", at("2020-03-10"), unsold=("vegetables", 50, "kg", 300)),
    ]
    assert "unsold_produce" not in codes(assessed("h-wage", records, at("2020-03-11")))


def test_fallen_policy_card_opens_a_problem_that_the_fix_closes():
    found = visit(
        "h-card",
        at("2020-05-15"),
        visit_id="v-515",
        card="MISSING",
        problems=(("POLICY_CARD", "明白卡掉了没有及时上墙", False),),
    )
    a = assessed("h-card", [found], at("2020-05-15", 18))
    (open_problem,) = a.open_problems
    assert open_problem.problem_id == "v-515/POLICY_CARD"
    assert open_problem.responsible_cadre_id == "cadre-yang"
    fixed = problem("h-card", at("2020-05-15", 17), "v-515/POLICY_CARD", "RECTIFIED")
    assert assessed("h-card", [found, fixed], at("2020-05-15", 18)).open_problems == ()
    on_the_spot = visit(
        "h-card",
        at("2020-05-15"),
        visit_id="v-515",
        card="POSTED",
        problems=(("POLICY_CARD", "明白卡掉了, reposted", True),),
        living="UNTIDY",
    )
    assert assessed("h-card", [on_the_spot], at("2020-05-15", 18)).open_problems == ()


def test_problem_overdue_then_rectified():
    records = [
        visit("h-house", at("2020-05-15"), visit_id="v1", checks={"housing": "PROBLEM"}),
        problem(
            "h-house", at("2020-05-16"), "v1/HOUSING", "TASK_ASSIGNED", "HOUSING", due="2020-06-01"
        ),
    ]
    a = assessed("h-house", records, at("2020-06-02"))
    assert "guarantee_housing" in codes(a) and "problem_overdue" in a.overdue
    done = [*records, problem("h-house", at("2020-06-05"), "v1/HOUSING", "RECTIFIED", "HOUSING")]
    b = assessed("h-house", done, at("2020-06-06"))
    assert "guarantee_housing" not in codes(b) and b.overdue == ()


def test_never_registered_household_below_the_line_is_a_marginal_candidate():
    records = [
        registry("h-marginal", at("2019-12-31"), registration="NEVER_REGISTERED"),
        income("h-marginal", at("2020-05-10"), 5400, end="2020-04-30"),
    ]
    a = assessed("h-marginal", records, at("2020-05-11"))
    assert (a.category, a.workflow) == ("MARGINAL", "FLAGGED")
    assert "income_below_line" in codes(a)
    above = [records[0], income("h-marginal", at("2020-05-10"), 6800, end="2020-04-30")]
    assert assessed("h-marginal", above, at("2020-05-11")).workflow == "NOT_FLAGGED"


def test_medical_bill_above_last_years_income_is_sudden_severe_hardship_in_2021():
    records = [
        registry(
            "h-sudden",
            at("2020-12-31"),
            registration="NEVER_REGISTERED",
            count=3,
            labour=2,
            baseline=(2020, 9000),
        ),
        hardship("h-sudden", at("2021-03-02"), "ILLNESS", 31000, hardship_id="bill"),
    ]
    a = assessed("h-sudden", records, at("2021-03-03"), NATIONAL)
    assert a.category == "SUDDEN_HARDSHIP" and a.workflow == "FLAGGED"
    assert "rigid_expenditure" in codes(a)
    assert a.policy_version == "national-2021"
    # 2020's rules have no such category: the same facts make a general key farm household
    assert assessed("h-sudden", records, at("2021-03-03"), DIANJIANG).category == "GENERAL_KEY"
    # a bill below last year's income (27,000 yuan) is not a rigid-expenditure shock
    small = [
        records[0],
        hardship("h-sudden", at("2021-03-02"), "ILLNESS", 20000, hardship_id="bill"),
    ]
    assert "rigid_expenditure" not in codes(assessed("h-sudden", small, at("2021-03-03"), NATIONAL))


def _monitored_household(household_id: str) -> list:
    return [
        registry(household_id, at("2019-12-31"), count=3, labour=2, baseline=(2019, 5200)),
        *approved(household_id, at("2020-05-16"), "INCLUDE", "UNSTABLE_LIFTED"),
        measure(
            household_id,
            at("2020-06-01"),
            "m-jobs",
            "DELIVERED",
            "MIGRANT_WORK",
            "employment.migrant-work",
        ),
        income(household_id, at("2020-06-05"), 7600, start="2019-06-01", end="2020-05-31"),
        visit(household_id, at("2020-08-20"), visit_id="v-aug", income=7800),
    ]


def test_elimination_refused_before_six_months():
    records = [*_monitored_household("h-elim"), *approved("h-elim", at("2020-09-01"), "ELIMINATE")]
    a = assessed("h-elim", records, at("2020-09-02"))
    assert a.workflow == "ELIMINATED"  # people decided; the decision is kept...
    # ...and flagged (the proposal, checked as of its own date, was flagged before it)
    *_, exception = (r for r in a.reasons if r.code == "policy_exception")
    assert "less than 6 months" in exception.message
    assert exception.event_ids == (str(records[-1][1]["event_id"]),)


def test_elimination_accepted_after_six_months():
    base = _monitored_household("h-elim")
    before = assessed("h-elim", base, at("2020-11-15"))
    assert before.workflow == "MONITORED" and before.elimination.allowed is False
    assert [c for c, _ in before.elimination.unmet] == ["monitored_too_short"]
    after = assessed("h-elim", base, at("2020-11-17"))
    assert after.elimination.allowed
    # the exit procedure (proposal, deliberation, a 5-day notice, township review) opens
    # once the conditions hold, on 2020-11-17
    done = assessed(
        "h-elim", [*base, *approved("h-elim", at("2020-11-25"), "ELIMINATE")], at("2020-11-26")
    )
    assert done.workflow == "ELIMINATED"
    assert "policy_exception" not in codes(done)


def test_never_eliminated_without_working_age_labour():
    records = [
        *_monitored_household("h-nolabour"),
        registry(
            "h-nolabour",
            at("2020-01-02"),
            count=2,
            labour=0,
            elderly=2,
            baseline=(2019, 5200),
            label="registry-2",
        ),
    ]
    a = assessed("h-nolabour", records, at("2020-12-01"))
    assert "no_working_age_labour" in dict(a.elimination.unmet)


def test_flag_unanswered_for_fifteen_days_is_overdue_and_review_answers_it():
    records = [
        registry("h-late", at("2019-12-31"), registration="NEVER_REGISTERED"),
        income("h-late", at("2020-05-01"), 5000, end="2020-04-30"),
    ]
    assert assessed("h-late", records, at("2020-05-16")).overdue == ()
    assert assessed("h-late", records, at("2020-05-17")).overdue == ("decision_overdue",)
    verifying = [*records, review("h-late", at("2020-05-10"), "START_VERIFICATION")]
    assert assessed("h-late", verifying, at("2020-05-12")).workflow == "VERIFYING"
    rejected = [*verifying, review("h-late", at("2020-05-12"), "REJECT")]
    r = assessed("h-late", rejected, at("2020-05-20"))
    assert (r.workflow, r.overdue) == ("REJECTED", ())
    # new evidence after the rejection flags the household again
    again = [*rejected, income("h-late", at("2020-06-01"), 4800, end="2020-05-31")]
    assert assessed("h-late", again, at("2020-06-02")).workflow == "FLAGGED"


def test_decision_the_workflow_cannot_take_is_recorded_and_ignored():
    records = [
        registry("h-odd", at("2019-12-31")),
        *approved("h-odd", at("2020-05-16"), "INCLUDE", "MARGINAL"),
        review("h-odd", at("2020-05-20"), "REJECT"),
    ]
    a = assessed("h-odd", records, at("2020-05-21"))
    assert a.workflow == "MONITORED"
    assert "invalid_transition" in codes(a)


def test_sharp_income_fall_year_on_year():
    records = [
        registry("h-fall", at("2019-12-31"), baseline=(2019, 12000)),
        income("h-fall", at("2020-12-05"), 7000, end="2020-11-30"),
    ]
    a = assessed("h-fall", records, at("2020-12-06"))
    assert "sharp_income_fall" in codes(a) and a.workflow == "FLAGGED"
    mild = [records[0], income("h-fall", at("2020-12-05"), 9000, end="2020-11-30")]
    assert "sharp_income_fall" not in codes(assessed("h-fall", mild, at("2020-12-06")))


def test_a_late_visit_correction_wins_over_the_original():
    original = visit("h-fix", at("2020-05-15"), visit_id="v1", checks={"water": "PROBLEM"})
    corrected = visit(
        "h-fix",
        at("2020-05-15"),
        visit_id="v1",
        recorded=at("2020-05-29"),
        label="visit/v1/correction",
    )
    assert "guarantee_water" in codes(assessed("h-fix", [original], at("2020-05-30")))
    assert "guarantee_water" not in codes(
        assessed("h-fix", [corrected, original], at("2020-05-30"))
    )


def test_spring_farming_needs_help_until_industry_aid_is_delivered():
    # seed: "visit spring farming, help production" (走访春耕生产，帮助恢复生产)
    records = [
        registry("h-spring", at("2019-12-31"), livelihood="FARMING", baseline=(2019, 9000)),
        visit("h-spring", at("2020-03-10"), spring_farming=True),
    ]
    a = assessed("h-spring", records, at("2020-03-11"))
    (reason,) = [r for r in a.reasons if r.code == "spring_farming_needs_help"]
    assert str(records[1][1]["event_id"]) in reason.event_ids
    # a need, weighed below the flag level: alone it does not flag the household
    assert a.workflow == "NOT_FLAGGED"
    seedlings = measure(
        "h-spring", at("2020-03-20"), "m-seed", "DELIVERED", "INDUSTRY", "industry.fruit-seedlings"
    )
    helped = assessed("h-spring", [*records, seedlings], at("2020-03-21"))
    assert "spring_farming_needs_help" not in codes(helped)


def test_spring_farming_need_adds_to_other_reasons():
    records = [
        registry("h-spring", at("2019-12-31"), livelihood="FARMING", baseline=(2019, 9000)),
        visit("h-spring", at("2020-03-10"), seeking_work=2),
    ]
    without = assessed("h-spring", records, at("2020-03-11"))
    records[1] = visit("h-spring", at("2020-03-10"), seeking_work=2, spring_farming=True)
    with_it = assessed("h-spring", records, at("2020-03-11"))
    assert with_it.score == without.score + DIANJIANG.weights["spring_farming_needs_help"]
