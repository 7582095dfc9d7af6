"""The read model's projection, pure: one decoded event → its rows, as statement arguments.

No database and no broker here: `rows_for` takes a decoded record (and the topic it was read
from) and returns (statement name, arguments) pairs; `statements.py` holds the SQL of each
name and `projector.py` writes them. The rows carry each event's own time (or lifecycle rank)
so that the statements' guards, not the order topics are read in, decide which fact wins.
Personal data (`personal` sub-records, names, free-text notes) is never copied.

Problems come from two sources into one table: those a visit reports (ids by the contract's
rule, `services/contract/problem_ids.py`) and the steps on `household.problems`; a step whose
`problem_id` is a visit problem's id continues that problem. Each row carries its default due
date (found + the policy's rectification period, `rectification.py`), passed in as `periods`.

Long because it is the one table of what each event type writes: one function per event type,
side by side, so a reader checks any column against its source field in one file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from services.contract import vocabulary
from services.contract.inputs import MONITORING_INPUTS
from services.contract.problem_ids import record_findings, record_secured
from services.contract.topics import (
    CADRES,
    HARDSHIPS,
    HOUSEHOLD_REGISTRY,
    INCOME,
    MEASURES,
    OPERATOR_ACTIONS,
    PROBLEMS,
    REVIEWS,
    RISK,
    SUPPORT_MEASURES,
    VISITS,
)
from services.readmodel.rectification import RectificationPeriods, periods_in

# What the read model reads, and the one event type each of its topics carries.
TOPICS = (
    HOUSEHOLD_REGISTRY,
    RISK,
    VISITS,
    MEASURES,
    SUPPORT_MEASURES,
    PROBLEMS,
    CADRES,
    OPERATOR_ACTIONS,
    REVIEWS,  # review_steps, and positions
    INCOME,  # read for their positions only (household_records), like every monitoring input
    HARDSHIPS,
)
EXPECTED_TYPE = {t.name: t.event_type for t in TOPICS}
# Where each record of monitoring's inputs sits, by household (migration 0015): the console's
# history page reads exactly a household's records from the log with it.
POSITIONED = frozenset(t.name for t in MONITORING_INPUTS)

# measures.status_rank, as stored since migration 0003 and compared by the "measure" statement
# (a late-synced step never moves a measure backwards; a terminal one is never left). The
# order is the vocabulary's (`measure_step_ranks`, RECOMMENDED = 0 ... COMPLETED = CANCELLED);
# the stored numbers sit two above it, because the two lowest are taken: 0 is the column's
# default and 1 a recommendation still waiting for a pool slot (status "waiting"). So stored =
# vocabulary rank + 2: waiting 1, recommended 2, accepted 3, delivered 4, completed and
# cancelled 5. Rows already written carry these numbers; this mapping keeps them.
WAITING_RANK = 1
STORED_RANK_OFFSET = 2
MEASURE_STATUS_RANK: Mapping[str, int] = {
    step: rank + STORED_RANK_OFFSET for step, rank in vocabulary.measure_step_ranks().items()
}
MEASURE_TERMINAL_RANK = MEASURE_STATUS_RANK["COMPLETED"]  # = CANCELLED's: a measure ended

# A problem is open until rectified, and open again when reopened.
PROBLEM_STATUS = {
    "FOUND": "open",
    "TASK_ASSIGNED": "open",
    "REOPENED": "open",
    "RECTIFIED": "rectified",
}

Change = tuple[str, tuple]  # (statement name, its arguments $1, $2, ... in order)


def rows_for(
    topic: str,
    event_type: str,
    record: Mapping[str, Any],
    periods: RectificationPeriods | None = None,
) -> list[Change]:
    """The row changes one decoded event makes: (statement name, arguments) pairs.

    `topic` is where the record was read (a measure's step history keeps it); `periods` date
    problems (None: the shipped policies'). An event type the read model does not project
    gives no rows; a record missing a required field raises KeyError (or TypeError), which the
    projector counts as undecodable.
    """
    name = event_type.rsplit(".", 1)[-1]
    if name == "MeasureStepRecorded":
        return measure_step_rows(record, topic)
    if name in _DATED:
        return _DATED[name](record, periods or _shipped())
    rows_of = _ROWS_OF.get(name)
    return rows_of(record) if rows_of is not None else []


def position_row(topic: str, partition: int, offset: int, key: bytes | None) -> Change | None:
    """Where a monitoring input record of a household sits in the log; None for other topics
    (and for a record without a readable key, which no household's history holds)."""
    if topic not in POSITIONED or not key:
        return None
    try:
        household_id = key.decode()
    except UnicodeDecodeError:
        return None
    return ("household_record", (household_id, topic, partition, offset))


_SHIPPED: list[RectificationPeriods] = []


def _shipped() -> RectificationPeriods:
    if not _SHIPPED:
        _SHIPPED.append(periods_in())
    return _SHIPPED[0]


def registry_rows(record: Mapping[str, Any]) -> list[Change]:
    """HouseholdRegistryRecorded: the household's place and members, as of `occurred_at`."""
    members = record["members"]
    return [
        (
            "household_registry",
            (
                record["household_id"],
                record["township"],
                record["village"],
                record["village_group"],
                record["registration"].lower(),
                members["count"],
                members["labour"],
                members.get("weak_labour", 0),
                record["occurred_at"],
            ),
        )
    ]


# Reasons that record an exception that took effect: a decision the county approved although a
# step of the procedure was skipped (procedure_exception), or one the policy's conditions did
# not allow (policy_exception). The monitoring fold names them (services/monitoring/domain/
# reasons.py); the read model lists them for the operator API, its metrics and the report.
EXCEPTION_CODES = ("procedure_exception", "policy_exception")
STEP_OVERDUE = "procedure_step_overdue"  # the monitor's overdue signal for a procedure step


def risk_rows(record: Mapping[str, Any]) -> list[Change]:
    """RiskAssessed: the household's current assessment, one row of its history, where it
    stands in the entry or exit procedure, and the exceptions it records."""
    reasons = json.dumps(
        [{"code": r["code"], "event_ids": list(r["event_ids"])} for r in record["reasons"]]
    )
    return [
        (
            "household_risk",
            (
                record["household_id"],
                record["category"],
                record["level"],
                reasons,
                record["workflow"].lower(),
                record["policy_version"],
                record["as_of"],
                json.dumps(list(record["overdue"])),
            ),
        ),
        (
            "assessment",
            (
                record["event_id"],
                record["household_id"],
                record["category"],
                record["level"],
                reasons,
                record["policy_version"],
                record["as_of"],
                record["recorded_at"],
            ),
        ),
        procedure_row(record),
        *exception_rows(record),
    ]


def procedure_row(record: Mapping[str, Any]) -> Change:
    """Where the household stands in its procedure as of this assessment (all NULL when none
    is under way: a newer assessment without one ends what an older one said). A v1 record
    (before the procedure was carried) has none."""
    procedure = record.get("procedure")
    if procedure is None:
        stands: tuple = (None, None, None, None, None, None, 0, "[]")
    else:
        stands = (
            procedure["direction"].lower(),
            procedure["awaiting"].lower(),
            procedure["since"],
            procedure.get("due"),
            procedure.get("notice_start"),
            procedure.get("notice_ends"),
            procedure.get("objections", 0),
            json.dumps(list(procedure.get("steps", []))),
        )
    overdue = STEP_OVERDUE in record["overdue"]
    # every exception standing in the household's history (None in v1 and v2 records: they
    # state nothing, and the sweep leaves the household's rows alone)
    standing = record.get("exceptions")
    return (
        "household_procedure",
        (
            record["household_id"],
            record["as_of"],
            record["event_id"],
            *stands,
            overdue,
            None if standing is None else json.dumps(list(standing)),
        ),
    )


def exception_reasons(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in record["reasons"] if r["code"] in EXCEPTION_CODES]


def decision_of(record: Mapping[str, Any], reason: Mapping[str, Any]) -> str:
    """The decision an exception reason records: its first event (a reason naming none is
    keyed by the assessment itself)."""
    return str(reason["event_ids"][0]) if reason["event_ids"] else str(record["event_id"])


def exception_id(record: Mapping[str, Any], reason: Mapping[str, Any]) -> str:
    return f"{record['household_id']}/{decision_of(record, reason)}/{reason['code']}"


def exception_rows(record: Mapping[str, Any]) -> list[Change]:
    """Each exception the assessment carries, keyed by household, decision and code (every
    later assessment of the cycle repeats it: the same row)."""
    rows: list[Change] = []
    for reason in exception_reasons(record):
        rows.append(
            (
                "procedure_exception",
                (
                    exception_id(record, reason),
                    record["household_id"],
                    decision_of(record, reason),
                    reason["code"],
                    reason["message"],
                    json.dumps([str(e) for e in reason["event_ids"]]),
                    record["event_id"],
                    record["as_of"],
                ),
            )
        )
    return rows


def visit_rows(record: Mapping[str, Any], periods: RectificationPeriods) -> list[Change]:
    """VisitRecorded: when the household was last visited; what it found secured (which closes
    earlier open problems of those kinds, after the batch: projector.CLOSE_SECURED); and every
    problem the visit reports, the visiting cadre responsible, one fixed on the spot rectified
    as it is found; and its epidemic block, if any."""
    at = record["occurred_at"]
    rows: list[Change] = [("household_visit", (record["household_id"], at))]
    rows += [
        ("secured_check", (record["household_id"], kind.lower(), record["visit_id"], at))
        for kind in record_secured(record)
    ]
    for finding in record_findings(record):
        status = "rectified" if finding.fixed_on_spot else "open"
        rows.append(
            (
                "problem",
                (
                    finding.problem_id,
                    record["household_id"],
                    finding.kind.lower(),
                    status,
                    record["cadre_id"],
                    at,
                    at if finding.fixed_on_spot else None,
                    "visit",
                    record["visit_id"],
                    periods.due_date(at),
                    None,
                    None,
                ),
            )
        )
    rows += epidemic_rows(record)
    return rows


def epidemic_rows(record: Mapping[str, Any]) -> list[Change]:
    """A visit's epidemic "five visits" block, or that it carries none (a correction may drop
    it); the family's own account is not copied, only whether one was recorded."""
    five = record.get("five_visits")
    produce = five.get("unsold_produce") if five is not None else None
    return [
        (
            "epidemic_visit",
            (
                record["household_id"],
                record["visit_id"],
                str(record["event_id"]),
                record["occurred_at"],
                record["recorded_at"],
                five is not None,
                five is not None and bool(five["family_impact"].strip()),
                five["members_seeking_work"] if five is not None else 0,
                five is not None and five["spring_farming_needs_help"],
                produce["value_yuan"] if produce is not None else 0,
                five["students_learning_at_home"] if five is not None else 0,
                five["students_without_access"] if five is not None else 0,
            ),
        )
    ]


def measure_step_rows(record: Mapping[str, Any], topic: str) -> list[Change]:
    """MeasureStepRecorded: the step as recorded (with its topic), and the measure's state.

    A recommendation with `waiting_for` waits for a slot in that pool: status "waiting", rank
    1. Every other step's status is its name in lower case, at its stored rank.
    """
    step = record["step"]
    waiting_for = record.get("waiting_for") if step == "RECOMMENDED" else None
    if waiting_for:
        status, rank = "waiting", WAITING_RANK
    else:
        rank = MEASURE_STATUS_RANK[step]  # an unknown step: KeyError, as for any bad record
        status = step.lower()
    quantities = {q["item"]: q["amount"] for q in record["quantities"]}
    return [
        (
            "measure_step",
            (
                record["event_id"],
                record["measure_id"],
                record["household_id"],
                step,
                waiting_for,
                topic,
                record["occurred_at"],
                record["recorded_at"],
            ),
        ),
        (
            "measure",
            (
                record["measure_id"],
                record["household_id"],
                record["measure_type"],
                status,
                rank,
                record["pool"],
                record["cadre_id"],
                json.dumps(quantities),
                json.dumps(list(record["reasons"])),
                record["catalogue_id"],
                waiting_for,
                record["amount_yuan"],
                record["term_months"],
                record["occurred_at"] if step == "RECOMMENDED" else None,
                record["occurred_at"],
            ),
        ),
    ]


def problem_rows(record: Mapping[str, Any], periods: RectificationPeriods) -> list[Change]:
    """ProblemRecorded: the problem's status; `rectified_at` only while it is rectified; who
    must fix it (a rectification names no one new); a task's due date with when it was set."""
    step = record["step"]
    status = PROBLEM_STATUS[step]
    at = record["occurred_at"]
    task_due = record.get("due_date") if step == "TASK_ASSIGNED" else None
    return [
        (
            "problem",
            (
                record["problem_id"],
                record["household_id"],
                record["kind"].lower(),
                status,
                None if step == "RECTIFIED" else record.get("responsible_cadre_id"),
                at,
                at if status == "rectified" else None,
                "list",
                record.get("visit_id"),
                periods.due_date(at),
                task_due,
                at if task_due is not None else None,
            ),
        )
    ]


def review_rows(record: Mapping[str, Any]) -> list[Change]:
    """ReviewDecided: the decision as a step the household's procedure may list (its grounds,
    free text, are not copied). A v1 record has no outcome and no exception."""
    return [
        (
            "review_step",
            (
                str(record["event_id"]),
                record["household_id"],
                record["decision"],
                record.get("outcome"),
                record.get("exception", False),
                record["category"],
                record["body"],
                record["approving_level"],
                record["notice_start"],
                record["notice_days"],
                record["actor"],
                record["occurred_at"],
                record["recorded_at"],
            ),
        )
    ]


def cadre_rows(record: Mapping[str, Any]) -> list[Change]:
    """CadreRegistryRecorded: the cadre's place, department and load limit (no name, no phone)."""
    return [
        (
            "cadre",
            (
                record["cadre_id"],
                record["township"],
                record.get("village"),
                record["department"],
                record["max_households"],
                record.get("active", True),
                record["occurred_at"],
            ),
        )
    ]


def operator_action_rows(record: Mapping[str, Any]) -> list[Change]:
    """OperatorActionRecorded: the public facts of a token or catalogue action, no secret."""
    token = record.get("token") or {}
    catalogue = record.get("catalogue") or {}
    return [
        (
            "operator_action",
            (
                record["event_id"],
                record["subject_id"],
                record["action"],
                record["actor"],
                record["source"],
                record["occurred_at"],
                record["recorded_at"],
                token.get("token_id"),
                token.get("kind"),
                token.get("holder"),
                catalogue.get("catalogue_id"),
                catalogue.get("version"),
                catalogue.get("content_sha256"),
                json.dumps(list(catalogue.get("changes", []))),
                record["reason"],
            ),
        )
    ]


# Event types whose rows carry problem due dates.
_DATED: Mapping[str, Callable[[Mapping[str, Any], RectificationPeriods], list[Change]]] = {
    "VisitRecorded": visit_rows,
    "ProblemRecorded": problem_rows,
}
_ROWS_OF: Mapping[str, Callable[[Mapping[str, Any]], list[Change]]] = {
    "HouseholdRegistryRecorded": registry_rows,
    "RiskAssessed": risk_rows,
    "CadreRegistryRecorded": cadre_rows,
    "ReviewDecided": review_rows,
    "OperatorActionRecorded": operator_action_rows,
}
