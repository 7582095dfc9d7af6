"""The procedure's order at the door, pure: which step a review decision would skip, given where
the household's procedure stands in the monitoring worker's household view.

Issue #17: a decision that skips a step is refused (422 naming the missing step) unless it is a
county-approved exception with a written reason. The monitoring fold (its domain/workflow.py and
domain/procedure.py) stays the authority: it refuses such a decision whatever the door says.
The door refuses only what the fold would refuse for a missing step, judged from the view:

- NOTICE before a village deliberation passed (VILLAGE_DELIBERATION missing);
- OBJECTION with no notice posted, or before the notice starts (NOTICE missing);
- TOWNSHIP_REVIEW before the deliberation or the notice (that step missing), or while the
  posted notice still runs (NOTICE_RUNNING);
- INCLUDE of a household in verification, or ELIMINATE of one whose elimination is proposed,
  before the procedure awaits COUNTY_APPROVAL (the awaited step missing; TOWNSHIP_REVIEW while
  the notice runs), and either with no procedure under way at all (VILLAGE_DELIBERATION, as the
  fold names it), unless the county approves it as an exception (body and approving_level
  COUNTY) with a written reason;
- a step of the procedure when none is under way (an opening missing).

Openings (START_VERIFICATION, APPLY, PROPOSE_ELIMINATION), VILLAGE_DELIBERATION, REJECT,
KEEP_MONITORING and an INCLUDE that recategorises a monitored household skip no step. What the
fold refuses for other reasons (a notice shorter than the policy's minimum, a category outside
the policy, a decision the household's status does not allow) is left to it: the door does not
know the policy in force.

The order of the steps is the contract's: RiskAssessed's ProcedureStep enum lists them in the
order the procedure takes them (VILLAGE_DELIBERATION, NOTICE, NOTICE_RUNNING, TOWNSHIP_REVIEW,
COUNTY_APPROVAL), and the view reports the awaited one by those names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from services.contract.vocabulary import symbols

DELIBERATION, NOTICE, RUNNING, TOWNSHIP, COUNTY = symbols("ProcedureStep")
STEP_RANK = {step: rank for rank, step in enumerate(symbols("ProcedureStep"))}
OPENINGS = ("START_VERIFICATION", "APPLY", "PROPOSE_ELIMINATION")
APPROVALS = {"INCLUDE": "inclusion", "ELIMINATE": "elimination"}
# The step each decision answers: before it, the procedure must await this step or a later one.
ANSWERS = {NOTICE: NOTICE, TOWNSHIP: TOWNSHIP, "INCLUDE": COUNTY, "ELIMINATE": COUNTY}
# Decisions the door may refuse for a skipped step; the others are never looked up.
CHECKED = (DELIBERATION, NOTICE, "OBJECTION", TOWNSHIP, "INCLUDE", "ELIMINATE")
# The workflow statuses in which no cycle is under way (the view's FLAGGED and NOT_FLAGGED are
# the fold's NONE).
OPEN = ("NOT_FLAGGED", "FLAGGED", "REJECTED", "ELIMINATED")
# Why `judgeable` leaves a decision to the fold (beside "recorded", a re-send).
UNJUDGED = ("view_behind", "earlier_than_recorded")


# The order rule in words, published by the OpenAPI document among the rules JSON Schema cannot
# say (it relates the record to what the log holds about the household).
ORDER_RULE = (
    "A review decision that skips a step of the household's entry or exit procedure (village "
    "deliberation → public notice, run its days, objections during it → township review → "
    "county approval) is refused with 422 (type missing_step), `errors` naming the field and "
    "the missing step, e.g. \"VILLAGE_DELIBERATION has not been recorded for this household's "
    'inclusion": NOTICE before a passed VILLAGE_DELIBERATION; OBJECTION before a NOTICE; '
    "TOWNSHIP_REVIEW before the NOTICE or while it runs; INCLUDE of a household in verification "
    "or ELIMINATE of one proposed for elimination before the procedure awaits county approval, "
    "or with no procedure under way; a step with no procedure under way. An INCLUDE or "
    "ELIMINATE skipping a step is taken when the county approves it as an exception: exception "
    "true, body and approving_level COUNTY, and the reason written. The API checks this against "
    "the monitoring worker's household view (SHOUWANG_VISITS_MONITORING_URL); while the view is "
    "unreachable, not configured, or has not yet folded a decision this API accepted, the "
    "decision is accepted (counted in shouwang_visits_procedure_unchecked_total) and the "
    "monitoring fold, which refuses a skipped step whatever the API said, judges it."
)


@dataclass(frozen=True)
class Procedure:
    """The entry or exit procedure under way, as the view reports it (`workflow.procedure`)."""

    direction: str  # ENTRY | EXIT
    awaiting: str  # on the view's date: one of the ProcedureStep symbols
    notice_start: dt.date | None = None
    notice_ends: dt.date | None = None

    def awaiting_on(self, day: dt.date) -> str:
        """The step awaited on `day` (the view's `awaiting` is of its own date: a notice that
        ran until then may have ended by `day`, or still run)."""
        step = TOWNSHIP if self.awaiting == RUNNING else self.awaiting
        if step == TOWNSHIP and self.notice_ends is not None and day <= self.notice_ends:
            return RUNNING
        return step


@dataclass(frozen=True)
class Decision:
    """A recorded review decision as the view lists it (`workflow.decisions`)."""

    event_id: str
    occurred_at: dt.datetime


@dataclass(frozen=True)
class Household:
    """What the door reads of the household view: the workflow status, the procedure under
    way, and every decision the view has folded, in canonical order."""

    status: str  # the view's workflow.status
    procedure: Procedure | None
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True)
class Gap:
    """Why a decision is refused: the step it skips, the field to name, what to tell."""

    step: str
    field: str
    message: str


def skipped_step(household: Household, record: Mapping[str, Any]) -> Gap | None:
    """The step the ReviewDecided `record` would skip, given `household` as the view reports it
    (already folded every decision before `record` in canonical order: see `judgeable`), or
    None when it skips none or is a county exception with a written reason."""
    decision = record["decision"]
    if decision not in CHECKED:
        return None
    day = record["occurred_at"].date()
    status, procedure = household.status, household.procedure
    if decision in APPROVALS:
        return _approval_gap(decision, status, procedure, day, record)
    if procedure is None:
        return Gap(
            "START_VERIFICATION, APPLY or PROPOSE_ELIMINATION",
            "decision",
            f"{decision} is a step of the entry or exit procedure and none is under way for this "
            "household: START_VERIFICATION or APPLY (entry) or PROPOSE_ELIMINATION (exit) has "
            "not been recorded",
        )
    if decision == "OBJECTION":
        if procedure.notice_start is None:
            return Gap(
                NOTICE, "decision", "NOTICE has not been recorded: no public notice to object to"
            )
        if day < procedure.notice_start:
            return Gap(
                NOTICE,
                "occurred_at",
                f"the public notice starts on {procedure.notice_start.isoformat()}: an objection "
                "is recorded during or after it",
            )
        return None
    if decision not in ANSWERS:
        return None  # a VILLAGE_DELIBERATION may be held (again) at any point of the procedure
    awaited = procedure.awaiting_on(day)
    if STEP_RANK[awaited] >= STEP_RANK[ANSWERS[decision]]:
        return None
    if awaited == RUNNING:
        return Gap(
            RUNNING,
            "occurred_at",
            f"the public notice runs until {procedure.notice_ends.isoformat()}: {decision} may "
            "follow only after it ends",
        )
    return Gap(awaited, "decision", f"{awaited} has not been recorded before this {decision}")


def _approval_gap(
    decision: str,
    status: str,
    procedure: Procedure | None,
    day: dt.date,
    record: Mapping[str, Any],
) -> Gap | None:
    what = APPROVALS[decision]
    if decision == "INCLUDE":
        if status in ("MONITORED", "ELIMINATION_PROPOSED"):
            return None  # a recategorisation, no procedure
        under_way = procedure if status == "VERIFYING" else None
        opening = "START_VERIFICATION or APPLY"
    else:
        if status not in ("MONITORED", "ELIMINATION_PROPOSED"):
            return None  # refused by the fold for the status, not for a step
        under_way = procedure if status == "ELIMINATION_PROPOSED" else None
        opening = "PROPOSE_ELIMINATION"
    if under_way is None:
        gap = Gap(
            DELIBERATION,
            "decision",
            f"{DELIBERATION} has not been recorded for this household's {what}: no "
            f"{'entry' if decision == 'INCLUDE' else 'exit'} procedure is under way "
            f"({opening} first)",
        )
    else:
        awaited = under_way.awaiting_on(day)
        if awaited == COUNTY:
            return None
        if awaited == RUNNING:
            gap = Gap(
                TOWNSHIP,
                "decision",
                f"{TOWNSHIP} has not been recorded for this household's {what}: the public "
                f"notice runs until {under_way.notice_ends.isoformat()}",
            )
        else:
            gap = Gap(
                awaited, "decision", f"{awaited} has not been recorded for this household's {what}"
            )
    return _excepted(gap, record)


def _excepted(gap: Gap, record: Mapping[str, Any]) -> Gap | None:
    """None when the county approves the skip as an exception with a written reason (the level
    rule has already made sure a county token writes an exception); else the gap, told how an
    exception would be written when the record tries one."""
    if not record.get("exception"):
        return Gap(
            gap.step,
            gap.field,
            gap.message + " (the county may approve it as an exception: exception true, body "
            "and approving_level COUNTY, and the reason written)",
        )
    if record.get("body") != "COUNTY" or record.get("approving_level") != "COUNTY":
        return Gap(
            gap.step,
            "body",
            gap.message + "; an exception is approved by the county itself: body and "
            "approving_level COUNTY",
        )
    if not str(record.get("reason") or "").strip():
        return Gap(gap.step, "reason", gap.message + "; an exception needs a written reason")
    return None


def judgeable(
    household: Household, record: Mapping[str, Any], pending: Collection[str]
) -> str | None:
    """None when `skipped_step` may judge `record` from `household`; else why not:

    - "view_behind": a decision the door accepted (`pending`, its event ids) is not yet among
      the view's, so the view is behind the log;
    - "earlier_than_recorded": `record` comes before a decision the view has folded, in the
      fold's canonical order (occurred_at, then event id: field apps sync late), so the fold
      will judge it against an earlier standing than the view's;
    - "recorded": `record` itself is among the view's decisions (a re-send).
    """
    seen = {d.event_id for d in household.decisions}
    event_id = str(record["event_id"])
    if event_id in seen:
        return "recorded"
    if any(p not in seen for p in pending):
        return "view_behind"
    if household.decisions:
        newest = household.decisions[-1]
        if (record["occurred_at"], event_id) <= (newest.occurred_at, newest.event_id):
            return "earlier_than_recorded"
    return None
