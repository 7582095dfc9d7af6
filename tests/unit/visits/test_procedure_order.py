"""The procedure's order at the door (visits/domain/procedure.py): every skip named, the
county's exception with a written reason, the steps that skip nothing; when the view cannot
judge (behind, an earlier decision, a re-send); and, against monitoring's own fold and view
document, that the door refuses exactly what the fold refuses for a skipped step."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.domain.assess import assess
from services.monitoring.domain.fold import fold
from services.monitoring.domain.reasons import INVALID_TRANSITION
from services.monitoring.domain.view import household_document
from services.monitoring.domain.workflow import stage_at
from services.visits.accepted_decisions import AcceptedDecisions
from services.visits.adapters.household_view import household_of
from services.visits.domain.procedure import (
    CHECKED,
    Decision,
    Household,
    Procedure,
    judgeable,
    skipped_step,
)
from tests.records import approved, at, income, registry, review
from tests.seed_households import monitored_then_eliminated
from tests.unit.monitoring.events import domain

POLICY = load_policies().get("dianjiang-2020")
HH = "h-door"
COUNTY = {"body": "COUNTY", "approving_level": "COUNTY"}


def record(decision: str, when: dt.datetime, event_id: str = "e-new", **fields) -> dict:
    return {
        "event_id": event_id,
        "household_id": HH,
        "occurred_at": when,
        "decision": decision,
        "body": "COUNTY",
        "approving_level": "COUNTY",
        "reason": "",
        "exception": False,
        **fields,
    }


def verifying(awaiting: str, notice_ends: dt.date | None = None) -> Household:
    start = None if notice_ends is None else notice_ends - dt.timedelta(days=4)
    return Household("VERIFYING", Procedure("ENTRY", awaiting, start, notice_ends))


DAY = at("2020-06-20")


@pytest.mark.parametrize(
    ("awaiting", "decision", "missing"),
    [
        ("VILLAGE_DELIBERATION", "NOTICE", "VILLAGE_DELIBERATION"),
        ("VILLAGE_DELIBERATION", "TOWNSHIP_REVIEW", "VILLAGE_DELIBERATION"),
        ("NOTICE", "TOWNSHIP_REVIEW", "NOTICE"),
        ("VILLAGE_DELIBERATION", "INCLUDE", "VILLAGE_DELIBERATION"),
        ("NOTICE", "INCLUDE", "NOTICE"),
        ("TOWNSHIP_REVIEW", "INCLUDE", "TOWNSHIP_REVIEW"),
    ],
)
def test_every_skip_names_the_missing_step(awaiting, decision, missing):
    gap = skipped_step(verifying(awaiting), record(decision, DAY))
    assert gap is not None and gap.step == missing and gap.field == "decision"
    assert gap.message.startswith(f"{missing} has not been recorded")
    if decision == "INCLUDE":
        assert f"{missing} has not been recorded for this household's inclusion" in gap.message


@pytest.mark.parametrize(
    ("awaiting", "decision"),
    [
        ("VILLAGE_DELIBERATION", "VILLAGE_DELIBERATION"),
        ("NOTICE", "VILLAGE_DELIBERATION"),  # deliberated again: allowed
        ("NOTICE", "NOTICE"),
        ("TOWNSHIP_REVIEW", "NOTICE"),  # a notice posted again after a RETURNED review
        ("TOWNSHIP_REVIEW", "TOWNSHIP_REVIEW"),
        ("COUNTY_APPROVAL", "TOWNSHIP_REVIEW"),
        ("COUNTY_APPROVAL", "INCLUDE"),
        ("VILLAGE_DELIBERATION", "REJECT"),
        ("VILLAGE_DELIBERATION", "START_VERIFICATION"),
    ],
)
def test_steps_in_order_skip_nothing(awaiting, decision):
    assert skipped_step(verifying(awaiting), record(decision, DAY)) is None


def test_the_notice_must_run_its_days_before_the_township_review_and_the_approval():
    ends = dt.date(2020, 6, 20)
    running = verifying("NOTICE_RUNNING", ends)
    gap = skipped_step(running, record("TOWNSHIP_REVIEW", at("2020-06-20")))
    assert gap.step == "NOTICE_RUNNING" and "runs until 2020-06-20" in gap.message
    gap = skipped_step(running, record("INCLUDE", at("2020-06-20")))
    assert gap.step == "TOWNSHIP_REVIEW" and "runs until 2020-06-20" in gap.message
    # the view's date was within the notice; the decision's day is after it
    assert skipped_step(running, record("TOWNSHIP_REVIEW", at("2020-06-21"))) is None
    gap = skipped_step(running, record("INCLUDE", at("2020-06-21")))
    assert gap.step == "TOWNSHIP_REVIEW" and "runs until" not in gap.message


def test_objections_need_a_notice_posted_and_begun():
    gap = skipped_step(verifying("NOTICE"), record("OBJECTION", DAY))
    assert gap.step == "NOTICE"
    running = verifying("NOTICE_RUNNING", dt.date(2020, 6, 20))  # posted from 06-16
    gap = skipped_step(running, record("OBJECTION", at("2020-06-15")))
    assert gap.step == "NOTICE" and gap.field == "occurred_at"
    assert skipped_step(running, record("OBJECTION", at("2020-06-16"))) is None
    assert skipped_step(running, record("OBJECTION", at("2020-06-25"))) is None


@pytest.mark.parametrize("status", ["NOT_FLAGGED", "FLAGGED", "REJECTED", "ELIMINATED"])
def test_no_procedure_under_way(status):
    idle = Household(status, None)
    for step in ("VILLAGE_DELIBERATION", "NOTICE", "OBJECTION", "TOWNSHIP_REVIEW"):
        gap = skipped_step(idle, record(step, DAY))
        assert "START_VERIFICATION or APPLY (entry) or PROPOSE_ELIMINATION (exit)" in gap.message
    gap = skipped_step(idle, record("INCLUDE", DAY))
    assert gap.step == "VILLAGE_DELIBERATION"
    assert gap.message.startswith(
        "VILLAGE_DELIBERATION has not been recorded for this household's inclusion: no entry "
        "procedure is under way (START_VERIFICATION or APPLY first)"
    )
    # ELIMINATE of a household not monitored is the fold's to refuse, not a skipped step
    assert skipped_step(idle, record("ELIMINATE", DAY)) is None


def test_elimination_needs_the_exit_procedure():
    monitored = Household("MONITORED", None)
    gap = skipped_step(monitored, record("ELIMINATE", DAY))
    assert gap.step == "VILLAGE_DELIBERATION" and "PROPOSE_ELIMINATION first" in gap.message
    proposed = Household("ELIMINATION_PROPOSED", Procedure("EXIT", "NOTICE"))
    gap = skipped_step(proposed, record("ELIMINATE", DAY))
    assert gap.message.startswith("NOTICE has not been recorded for this household's elimination")
    done = Household("ELIMINATION_PROPOSED", Procedure("EXIT", "COUNTY_APPROVAL"))
    assert skipped_step(done, record("ELIMINATE", DAY)) is None
    # recategorising a monitored household is no procedure
    assert skipped_step(monitored, record("INCLUDE", DAY)) is None


def test_a_county_exception_with_a_written_reason_is_taken():
    waiting = verifying("VILLAGE_DELIBERATION")
    excepted = record("INCLUDE", DAY, exception=True, reason="house collapsed: no time to wait")
    assert skipped_step(waiting, excepted) is None
    blank = skipped_step(waiting, {**excepted, "reason": "  "})
    assert blank.field == "reason" and "needs a written reason" in blank.message
    group = skipped_step(waiting, {**excepted, "body": "REVIEW_GROUP"})
    assert group.field == "body" and "body and approving_level COUNTY" in group.message
    plain = skipped_step(waiting, record("INCLUDE", DAY))
    assert "the county may approve it as an exception" in plain.message
    # an exception excuses an approval only: a step out of order stays refused, as the fold does
    step = record("NOTICE", DAY, exception=True, reason="urgent")
    assert skipped_step(waiting, step).step == "VILLAGE_DELIBERATION"


def test_what_the_view_cannot_judge():
    view = Household(
        "VERIFYING",
        Procedure("ENTRY", "VILLAGE_DELIBERATION"),
        (Decision("e-open", at("2020-06-01")),),
    )
    later = record("INCLUDE", at("2020-06-02"), event_id="e-new")
    assert judgeable(view, later, set()) is None
    assert judgeable(view, later, {"e-open"}) is None  # already folded
    assert judgeable(view, later, {"e-open", "e-accepted"}) == "view_behind"
    assert judgeable(view, record("INCLUDE", at("2020-05-31")), set()) == "earlier_than_recorded"
    # the same moment: canonical order breaks the tie by event id, as the fold does
    assert judgeable(view, record("INCLUDE", at("2020-06-01"), event_id="e-a"), set()) == (
        "earlier_than_recorded"
    )
    assert judgeable(view, record("INCLUDE", at("2020-06-01"), event_id="e-z"), set()) is None
    assert judgeable(view, record("INCLUDE", DAY, event_id="e-open"), set()) == "recorded"


def test_the_memory_of_accepted_decisions_is_bounded_and_forgets_what_the_view_shows():
    now = [0.0]
    memory = AcceptedDecisions(capacity=3, max_age_seconds=60, monotonic=lambda: now[0])
    for i in range(4):
        memory.remember("h1" if i < 3 else "h2", f"e{i}")
    assert memory.pending("h1") == {"e1", "e2"} and memory.pending("h2") == {"e3"}
    memory.seen("h1", ["e1", "other"])
    assert memory.pending("h1") == {"e2"}
    now[0] = 61.0
    assert memory.pending("h1") == set() and len(memory) == 0


# ---- against monitoring's own fold and view ---------------------------------------------


def flagged() -> list:
    return [
        registry(HH, at("2019-12-31"), registration="NEVER_REGISTERED"),
        income(HH, at("2020-05-01"), 5000, end="2020-04-30"),
    ]


ENTRY = approved(HH, at("2020-06-20"), "INCLUDE", "MARGINAL")  # open, deliberate, notice...


def candidates(when: dt.datetime) -> list:
    """Every decision the door checks, well formed, at `when`."""
    village = {"body": "VILLAGE", "approving_level": "VILLAGE"}
    label = f"candidate/{when.isoformat()}"
    notice_start = when.date()
    return [
        review(HH, when, "VILLAGE_DELIBERATION", label=f"{label}/d", outcome="PASSED", **village),
        review(HH, when, "NOTICE", label=f"{label}/n", notice_start=notice_start, notice_days=5,
               **village),
        review(HH, when, "OBJECTION", label=f"{label}/o", **village),
        review(HH, when, "TOWNSHIP_REVIEW", label=f"{label}/t", outcome="PASSED",
               body="TOWNSHIP", approving_level="TOWNSHIP"),
        review(HH, when, "INCLUDE", "MARGINAL", label=f"{label}/i", **COUNTY),
        review(HH, when, "ELIMINATE", label=f"{label}/e", **COUNTY),
    ]  # fmt: skip


def view_of(records: list, as_of: dt.datetime) -> Household:
    state = fold(HH, domain(records))
    document = household_document(state, assess(state, POLICY, as_of), POLICY)
    return household_of(json.loads(json.dumps(document)))


def refused_by_fold(records: list, candidate, as_of: dt.datetime) -> str | None:
    stage = stage_at(fold(HH, domain([*records, candidate])), POLICY, as_of)
    event_id = str(candidate[1]["event_id"])
    for irregularity in stage.exceptions:
        if irregularity.event_id == event_id and irregularity.code == INVALID_TRANSITION:
            return irregularity.message
    return None


def flows() -> list[tuple[str, list, list]]:
    """(name, what comes before, the procedure's records): entry, and exit after inclusion."""
    monitored = monitored_then_eliminated(HH)
    return [("entry", flagged(), ENTRY), ("exit", monitored[:-5], monitored[-5:])]


@pytest.mark.parametrize(
    ("flow", "done"), [(name, k) for name, _, steps in flows() for k in range(len(steps) + 1)]
)
@pytest.mark.parametrize("offset_days", [0, 3, 30])  # just after, during the notice, long after
def test_the_door_refuses_what_the_fold_refuses_for_a_skipped_step(flow, done, offset_days):
    """For each point of the entry and the exit procedure (the view as monitoring makes it) and
    each checked decision after it, the door's verdict agrees with the fold's."""
    _, before, steps = next(f for f in flows() if f[0] == flow)
    records = [*before, *steps[:done]]
    last = records[-1][1]["occurred_at"]
    when = last + dt.timedelta(days=offset_days, minutes=1)
    view = view_of(records, last)
    for candidate in candidates(when):
        door = {**candidate[1], "event_id": str(candidate[1]["event_id"])}
        assert door["decision"] in CHECKED
        assert judgeable(view, door, set()) is None
        gap = skipped_step(view, door)
        fold_says = refused_by_fold(records, candidate, when)
        if gap is not None:
            assert fold_says is not None, (door["decision"], gap)
        elif fold_says is not None:
            # the fold refuses it for something else than a skipped step, which the door
            # leaves to it: the household's status
            assert "missing step" not in fold_says and "skips" not in fold_says, fold_says
            assert "not monitored" in fold_says or "household is" in fold_says, fold_says


# ---- configuration --------------------------------------------------------------------------


def test_the_monitoring_view_settings(tmp_path):
    from services.platform.config import SettingsError, VisitsSettings

    assert VisitsSettings.from_env({}).monitoring_url is None  # the default: no check
    url = "http://monitoring:8083/"
    on = VisitsSettings.from_env(
        {"SHOUWANG_VISITS_MONITORING_URL": url, "SHOUWANG_VISITS_MONITORING_TOKEN": "sw_x"}
    )
    assert (on.monitoring_url, on.monitoring_token) == ("http://monitoring:8083", "sw_x")
    assert "sw_x" not in repr(on)  # a secret
    path = tmp_path / "token"
    path.write_text("sw_file\n", encoding="utf-8")
    from_file = VisitsSettings.from_env(
        {"SHOUWANG_VISITS_MONITORING_URL": url, "SHOUWANG_VISITS_MONITORING_TOKEN_FILE": str(path)}
    )
    assert from_file.monitoring_token == "sw_file"
    # named before a token is issued (compose): the check is off, the API starts
    pending = VisitsSettings.from_env({"SHOUWANG_VISITS_MONITORING_URL": url})
    assert pending.monitoring_url and pending.monitoring_token is None
    for env, says in [
        ({"SHOUWANG_VISITS_MONITORING_TOKEN": "sw_x"}, "SHOUWANG_VISITS_MONITORING_URL is not"),
        ({"SHOUWANG_VISITS_MONITORING_URL": "monitoring:8083"}, "expected an http(s):// URL"),
        (
            {
                "SHOUWANG_VISITS_MONITORING_URL": url,
                "SHOUWANG_VISITS_MONITORING_TOKEN": "sw_x",
                "SHOUWANG_VISITS_MONITORING_TOKEN_FILE": str(path),
            },
            "not both",
        ),
        (
            {
                "SHOUWANG_VISITS_MONITORING_URL": url,
                "SHOUWANG_VISITS_MONITORING_TOKEN_FILE": str(tmp_path / "missing"),
            },
            "cannot read",
        ),
        ({"SHOUWANG_VISITS_MONITORING_TIMEOUT_SECONDS": "0"}, "more than 0"),
    ]:
        with pytest.raises(SettingsError, match=re.escape(says)) as refused:
            VisitsSettings.from_env(env)
        assert "sw_x" not in str(refused.value)


# ---- through the API, over an in-memory view -----------------------------------------------


def counted(api, family: str, label: str) -> dict[str, float]:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    text = generate_latest(api.deps.metrics.registry).decode()
    return {
        s.labels[label]: s.value
        for f in text_string_to_metric_families(text)
        if f.name == family
        for s in f.samples
        if s.name.endswith("_total") and s.value
    }


def unchecked(api) -> dict[str, float]:
    return counted(api, "shouwang_visits_procedure_unchecked", "reason")


async def test_the_api_refuses_a_skip_and_accepts_while_the_view_lags(api) -> None:
    from services.visits.adapters.household_view import InMemoryViews
    from tests.unit.visits.test_levels import decision as level_decision

    household = "H-500228-0001"  # the samples' (in the directory: the village tokens' village)
    opened = Decision("e-open", at("2020-05-01"))
    views = InMemoryViews(
        {household: Household("VERIFYING", Procedure("ENTRY", "VILLAGE_DELIBERATION"), (opened,))}
    )
    api.deps.views = views
    include = level_decision("INCLUDE", "COUNTY", household_id=household)
    answer = await api.post("/v1/review-decisions", include, role="operator")
    body = await answer.json()
    assert answer.status == 422 and body["type"].endswith("missing_step"), body
    assert body["errors"][0]["message"].startswith(
        "VILLAGE_DELIBERATION has not been recorded for this household's inclusion"
    )
    assert api.sink.records == [] and views.asked == [household]
    assert counted(api, "shouwang_visits_procedure_checks", "outcome") == {"refused": 1.0}
    assert counted(api, "shouwang_visits_rejections", "reason") == {"missing_step": 1.0}

    # The deliberation and the notice in one batch: the notice follows a step of the same
    # request, which the view cannot show yet: accepted, counted as the view being behind.
    deliberation = level_decision("VILLAGE_DELIBERATION", "VILLAGE", household_id=household)
    notice = level_decision(
        "NOTICE", "VILLAGE", household_id=household, notice_start="2020-05-17", notice_days=5
    )
    answer = await api.post(
        "/v1/review-decisions:batch", {"records": [deliberation, notice]}, role="village"
    )
    assert answer.status == 202, await answer.json()
    assert unchecked(api) == {"view_behind": 1.0}
    # The view has not folded them yet: the next step is not judged from it either.
    review = level_decision("TOWNSHIP_REVIEW", "TOWNSHIP", household_id=household)
    answer = await api.post("/v1/review-decisions", review, role="reviewer")
    assert answer.status == 202, await answer.json()
    assert unchecked(api) == {"view_behind": 2.0}
    assert len(api.sink.records) == 3

    # The worker down: the decision is taken, the fold will judge it.
    views.failing = "unreachable"
    answer = await api.post("/v1/review-decisions", level_decision("INCLUDE", "COUNTY",
                            household_id=household), role="operator")  # fmt: skip
    assert answer.status == 202 and unchecked(api)["unreachable"] == 1.0

    # Openings are never looked up; no view configured at all: counted as such.
    views.failing, views.asked = None, []
    opening = level_decision("START_VERIFICATION", "COUNTY", household_id=household)
    assert (await api.post("/v1/review-decisions", opening, role="operator")).status == 202
    assert views.asked == []
    from services.visits.adapters.household_view import NoView

    api.deps.views = NoView()
    include = level_decision("INCLUDE", "COUNTY", household_id=household)
    assert (await api.post("/v1/review-decisions", include, role="operator")).status == 202
    assert unchecked(api)["not_configured"] == 1.0
