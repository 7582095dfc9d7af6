"""Policy files: the shipped versions load, and a bad file is refused with every problem."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest

from services.monitoring.adapters.policy_files import POLICY_DIR, load_policies
from services.monitoring.domain.policy import IncomeLine, PolicyError, parse_policy


def shipped(name: str) -> dict:
    return tomllib.loads((POLICY_DIR / f"{name}.toml").read_text(encoding="utf-8"))


def test_shipped_policies_carry_the_seed_and_2021_categories():
    book = load_policies()
    dianjiang, national = book.get("dianjiang-2020"), book.get("national-2021")
    assert dianjiang.line_on(dt.date(2020, 6, 1)).yuan == 6000
    assert national.line_on(dt.date(2021, 6, 1)) == IncomeLine(2021, 6000)
    assert national.predecessor == book.pinned("dianjiang-2020")
    assert [c.category for c in dianjiang.categories] == [
        "UNSTABLE_LIFTED",
        "MARGINAL",
        "GENERAL_KEY",
    ]
    assert {c.category for c in national.categories} == {
        "UNSTABLE_LIFTED",
        "MARGINAL",
        "SUDDEN_HARDSHIP",
    }
    assert dianjiang.elimination.stable_months == 6
    assert dianjiang.flag_to_decision_days == 15 and dianjiang.visit_interval_days == 30


def test_every_problem_of_a_bad_policy_is_reported():
    data = shipped("dianjiang-2020")
    data["income"]["lines"][1]["yuan"] = "6000"
    data["levels"]["flag"] = "URGENT"
    data["weights"].pop("unsold_produce")
    data["categories"].append({"id": "MARGINAL", "reasons": ["no_such_reason"]})
    data["surprise"] = {}
    with pytest.raises(PolicyError) as error:
        parse_policy(data, "bad.toml")
    where = {w for w, _ in error.value.problems}
    assert {
        "income.lines[1].yuan",
        "levels.flag",
        "weights.unsold_produce",
        "categories[3].reasons",
        "categories",
        "surprise",
    } <= where


def test_overlapping_versions_are_refused(tmp_path):
    text = (POLICY_DIR / "national-2021.toml").read_text(encoding="utf-8")
    (tmp_path / "a.toml").write_text(text, encoding="utf-8")
    (tmp_path / "b.toml").write_text(
        text.replace('"national-2021"', '"national-2022"'), encoding="utf-8"
    )
    with pytest.raises(PolicyError, match="overlaps"):
        load_policies(sorted(tmp_path.glob("*.toml")))


def test_a_date_before_any_policy_has_none():
    with pytest.raises(LookupError):
        load_policies().for_date(dt.date(2018, 1, 1))


def test_shipped_policies_set_the_procedure_within_the_15_day_rule():
    book = load_policies()
    for policy in (book.get("dianjiang-2020"), book.get("national-2021")):
        rules = policy.procedure
        assert rules.notice_min_days == 5  # DOMAIN.md: public notice of at least 5 days
        total = (
            rules.deliberation_days
            + rules.notice_posting_days
            + rules.notice_min_days
            + rules.township_review_days
            + rules.county_approval_days
        )
        assert total <= policy.flag_to_decision_days == 15


@pytest.mark.parametrize(
    ("key", "value"),
    [("notice_min_days", 0), ("township_review_days", "2"), ("county_approval_days", True)],
)
def test_a_bad_procedure_limit_is_refused_naming_the_key(key, value):
    data = shipped("national-2021")
    data["procedure"][key] = value
    with pytest.raises(PolicyError) as refused:
        parse_policy(data, "national-2021.toml")
    assert [where for where, _ in refused.value.problems] == [f"procedure.{key}"]


def test_an_unknown_procedure_key_is_refused():
    data = shipped("national-2021")
    data["procedure"]["notice_max_days"] = 10
    with pytest.raises(PolicyError) as refused:
        parse_policy(data, "national-2021.toml")
    assert ("procedure.notice_max_days", "unknown key") in refused.value.problems
