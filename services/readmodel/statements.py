"""The read model's SQL, declared once: each row statement in its row and bulk forms, and the
projector's position, reject and pool statements.

Each row statement is declared in three parts, INSERT head, VALUES list and ON CONFLICT
clause, and both forms are built from them: the row form sends `VALUES (...)` with one event's
arguments ($1, $2, ...); the bulk form reads the same columns from a staging table holding a
batch's rows (column cN holds what $N would), one round at a time (`b.round = $1`; see
`bulk.py`). Every upsert is guarded by the row's own time (or lifecycle rank), so the result
does not depend on the order topics are read in.

Long because it is the one table of what each statement writes, with its guard: split over
files, a reader checking that two statements of one table agree would hunt for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.readmodel.projection import MEASURE_TERMINAL_RANK


@dataclass(frozen=True)
class Upsert:
    """One kind of row change: INSERT head, VALUES list and ON CONFLICT clause, as sent."""

    table: str
    insert: str  # "INSERT INTO table (columns)", indented as sent
    values: str  # the VALUES list; $N is the N-th argument, and only arguments have a "$"
    conflict: str  # "ON CONFLICT ...", indented as sent

    def row(self) -> str:
        """The statement for one row: its arguments are the values' $1, $2, ..."""
        return f"\n{self.insert}\n        VALUES ({self.values})\n{self.conflict}\n    "

    def bulk(self, staging: str) -> str:
        """The statement for one round of a staged batch: argument $1 is the round."""
        columns = self.values.replace("$", "b.c")
        select = f"SELECT {columns} FROM {staging} AS b WHERE b.round = $1"
        return f"\n{self.insert}\n        {select} {self.conflict.lstrip()}\n    "


# A measure at the terminal rank (completed or cancelled) keeps its status: see projection.py.
_ENDED = MEASURE_TERMINAL_RANK

UPSERTS: Mapping[str, Upsert] = {
    "household_registry": Upsert(
        table="households",
        insert="""\
        INSERT INTO households AS h (household_id, township, village, grp, registration_status,
            members, labourers, weak_labourers, registry_at, events_projected, updated_at)""",
        values="$1, $2, $3, $4, $5, $6, $7, $8, $9, 1, now()",
        conflict="""\
        ON CONFLICT (household_id) DO UPDATE SET
            township = CASE WHEN h.registry_at IS NULL OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.township ELSE h.township END,
            village = CASE WHEN h.registry_at IS NULL OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.village ELSE h.village END,
            grp = CASE WHEN h.registry_at IS NULL OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.grp ELSE h.grp END,
            registration_status = CASE WHEN h.registry_at IS NULL
                OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.registration_status ELSE h.registration_status END,
            members = CASE WHEN h.registry_at IS NULL OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.members ELSE h.members END,
            labourers = CASE WHEN h.registry_at IS NULL OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.labourers ELSE h.labourers END,
            weak_labourers = CASE WHEN h.registry_at IS NULL
                OR EXCLUDED.registry_at >= h.registry_at
                THEN EXCLUDED.weak_labourers ELSE h.weak_labourers END,
            registry_at = GREATEST(h.registry_at, EXCLUDED.registry_at),
            events_projected = h.events_projected + 1,
            updated_at = now()""",
    ),
    "household_risk": Upsert(
        table="households",
        insert="""\
        INSERT INTO households AS h (household_id, category, level, reasons, workflow_status,
            policy_version, assessed_at, overdue, events_projected, updated_at)""",
        values="$1, $2, $3, $4::jsonb, $5, $6, $7, $8::jsonb, 1, now()",
        conflict="""\
        ON CONFLICT (household_id) DO UPDATE SET
            category = CASE WHEN h.assessed_at IS NULL OR EXCLUDED.assessed_at >= h.assessed_at
                THEN EXCLUDED.category ELSE h.category END,
            level = CASE WHEN h.assessed_at IS NULL OR EXCLUDED.assessed_at >= h.assessed_at
                THEN EXCLUDED.level ELSE h.level END,
            reasons = CASE WHEN h.assessed_at IS NULL OR EXCLUDED.assessed_at >= h.assessed_at
                THEN EXCLUDED.reasons ELSE h.reasons END,
            workflow_status = CASE WHEN h.assessed_at IS NULL
                OR EXCLUDED.assessed_at >= h.assessed_at
                THEN EXCLUDED.workflow_status ELSE h.workflow_status END,
            policy_version = CASE WHEN h.assessed_at IS NULL
                OR EXCLUDED.assessed_at >= h.assessed_at
                THEN EXCLUDED.policy_version ELSE h.policy_version END,
            overdue = CASE WHEN h.assessed_at IS NULL OR EXCLUDED.assessed_at >= h.assessed_at
                THEN EXCLUDED.overdue ELSE h.overdue END,
            assessed_at = GREATEST(h.assessed_at, EXCLUDED.assessed_at),
            events_projected = h.events_projected + 1,
            updated_at = now()""",
    ),
    "assessment": Upsert(
        table="assessments",
        insert="""\
        INSERT INTO assessments (assessment_id, household_id, category, level, reasons,
            policy_version, assessed_at, recorded_at)""",
        values="$1, $2, $3, $4, $5::jsonb, $6, $7, $8",
        conflict="""\
        ON CONFLICT (assessment_id) DO NOTHING""",
    ),
    # Where the household stands in its procedure: the newest assessment's word, by as_of (ties
    # to the last applied), as household_risk keeps the rest of it.
    "household_procedure": Upsert(
        table="household_procedures",
        insert="""\
        INSERT INTO household_procedures AS p (household_id, assessed_at, assessment_id,
            direction, awaiting, since, due, notice_start, notice_ends, objections, steps,
            step_overdue, exceptions, updated_at)""",
        values="$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13::jsonb, now()",
        conflict="""\
        ON CONFLICT (household_id) DO UPDATE SET
            assessed_at = EXCLUDED.assessed_at, assessment_id = EXCLUDED.assessment_id,
            direction = EXCLUDED.direction, awaiting = EXCLUDED.awaiting,
            since = EXCLUDED.since, due = EXCLUDED.due, notice_start = EXCLUDED.notice_start,
            notice_ends = EXCLUDED.notice_ends, objections = EXCLUDED.objections,
            steps = EXCLUDED.steps, step_overdue = EXCLUDED.step_overdue,
            exceptions = EXCLUDED.exceptions, updated_at = now()
        WHERE EXCLUDED.assessed_at >= p.assessed_at""",
    ),
    # An exception that took effect, once per household, decision and code: the first
    # assessment that carried it dates it and gives its message, whatever order they arrive in.
    # One the household's newest assessment no longer lists is deleted after the batch
    # (SWEEP_EXCEPTIONS), so an assessment made before the evidence arrived leaves nothing.
    "procedure_exception": Upsert(
        table="procedure_exceptions",
        insert="""\
        INSERT INTO procedure_exceptions AS e (exception_id, household_id, decision_event_id,
            code, message, event_ids, assessment_id, first_seen_at, updated_at)""",
        values="$1, $2, $3, $4, $5, $6::jsonb, $7, $8, now()",
        conflict="""\
        ON CONFLICT (exception_id) DO UPDATE SET
            message = EXCLUDED.message, event_ids = EXCLUDED.event_ids,
            assessment_id = EXCLUDED.assessment_id, first_seen_at = EXCLUDED.first_seen_at,
            updated_at = now()
        WHERE (EXCLUDED.first_seen_at, EXCLUDED.assessment_id)
            < (e.first_seen_at, e.assessment_id)""",
    ),
    # A review decision, once (its event id): the steps a procedure lists, named.
    "review_step": Upsert(
        table="review_steps",
        insert="""\
        INSERT INTO review_steps (event_id, household_id, decision, outcome, exception,
            category, body, approving_level, notice_start, notice_days, actor, occurred_at,
            recorded_at)""",
        values="$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13",
        conflict="""\
        ON CONFLICT (event_id) DO NOTHING""",
    ),
    "household_visit": Upsert(
        table="households",
        insert="""\
        INSERT INTO households AS h (household_id, last_visit_at, events_projected, updated_at)""",
        values="$1, $2, 1, now()",
        conflict="""\
        ON CONFLICT (household_id) DO UPDATE SET
            last_visit_at = GREATEST(h.last_visit_at, EXCLUDED.last_visit_at),
            events_projected = h.events_projected + 1,
            updated_at = now()""",
    ),
    "epidemic_visit": Upsert(
        table="epidemic_visits",
        insert="""\
        INSERT INTO epidemic_visits AS e (household_id, visit_id, event_id, occurred_at,
            recorded_at, has_block, family_impact_recorded, members_seeking_work,
            spring_farming_needs_help, unsold_value_yuan, students_learning_at_home,
            students_without_access)""",
        values="$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12",
        # a visit's newest version wins (the fold's order), whatever order versions arrive in
        conflict="""\
        ON CONFLICT (household_id, visit_id) DO UPDATE SET
            event_id = EXCLUDED.event_id, occurred_at = EXCLUDED.occurred_at,
            recorded_at = EXCLUDED.recorded_at, has_block = EXCLUDED.has_block,
            family_impact_recorded = EXCLUDED.family_impact_recorded,
            members_seeking_work = EXCLUDED.members_seeking_work,
            spring_farming_needs_help = EXCLUDED.spring_farming_needs_help,
            unsold_value_yuan = EXCLUDED.unsold_value_yuan,
            students_learning_at_home = EXCLUDED.students_learning_at_home,
            students_without_access = EXCLUDED.students_without_access,
            updated_at = now()
        WHERE (e.recorded_at, e.occurred_at, e.event_id)
            < (EXCLUDED.recorded_at, EXCLUDED.occurred_at, EXCLUDED.event_id)""",
    ),
    "measure_step": Upsert(
        table="measure_steps",
        insert="""\
        INSERT INTO measure_steps (event_id, measure_id, household_id, step, waiting_for,
            source_topic, occurred_at, recorded_at)""",
        values="$1, $2, $3, $4, $5, $6, $7, $8",
        conflict="""\
        ON CONFLICT (event_id) DO NOTHING""",
    ),
    "measure": Upsert(
        table="measures",
        insert="""\
        INSERT INTO measures AS m (measure_id, household_id, type, status, status_rank, pool,
            cadre_id, quantities, reasons, catalogue_id, waiting_for, amount_yuan, term_months,
            recommended_at, status_changed_at, updated_at)""",
        values="""\
$1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13, $14, $15,
            now()""",
        conflict=f"""\
        ON CONFLICT (measure_id) DO UPDATE SET
            status = CASE WHEN (m.status_rank, m.status_changed_at)
                < (EXCLUDED.status_rank, EXCLUDED.status_changed_at) AND m.status_rank < {_ENDED}
                THEN EXCLUDED.status ELSE m.status END,
            waiting_for = CASE WHEN (m.status_rank, m.status_changed_at)
                < (EXCLUDED.status_rank, EXCLUDED.status_changed_at) AND m.status_rank < {_ENDED}
                THEN EXCLUDED.waiting_for ELSE m.waiting_for END,
            status_changed_at = CASE WHEN (m.status_rank, m.status_changed_at)
                < (EXCLUDED.status_rank, EXCLUDED.status_changed_at) AND m.status_rank < {_ENDED}
                THEN EXCLUDED.status_changed_at ELSE m.status_changed_at END,
            status_rank = CASE WHEN m.status_rank < {_ENDED}
                THEN GREATEST(m.status_rank, EXCLUDED.status_rank) ELSE m.status_rank END,
            pool = coalesce(m.pool, EXCLUDED.pool),
            cadre_id = coalesce(EXCLUDED.cadre_id, m.cadre_id),
            quantities = CASE WHEN EXCLUDED.quantities <> '{{}}'::jsonb
                THEN EXCLUDED.quantities ELSE m.quantities END,
            reasons = CASE WHEN EXCLUDED.reasons <> '[]'::jsonb AND (m.reasons = '[]'::jsonb
                OR ((m.status_rank, m.status_changed_at)
                < (EXCLUDED.status_rank, EXCLUDED.status_changed_at) AND m.status_rank < {_ENDED}))
                THEN EXCLUDED.reasons ELSE m.reasons END,
            catalogue_id = coalesce(m.catalogue_id, EXCLUDED.catalogue_id),
            amount_yuan = coalesce(EXCLUDED.amount_yuan, m.amount_yuan),
            term_months = coalesce(EXCLUDED.term_months, m.term_months),
            recommended_at = LEAST(m.recommended_at, EXCLUDED.recommended_at),
            updated_at = now()""",
    ),
    # A problem from a visit or the problem list (services/contract/problem_ids.py): the
    # newest step decides the status; a visit's row is the authority on its kind; the earliest
    # finding dates it and its default due date; the newest task's due date wins over that.
    "problem": Upsert(
        table="problems",
        insert="""\
        INSERT INTO problems AS p (problem_id, household_id, check_item, status, responsible,
            found_at, rectified_at, status_at, origin, visit_id, default_due, task_due, task_at,
            responsible_at, updated_at)""",
        # status_at: the step's time; responsible_at: the same, when the step names someone
        values="""\
$1, $2, $3, $4, $5, $6, $7, $6, $8, $9, $10, $11, $12,
            CASE WHEN $5::text IS NULL THEN NULL ELSE $6::timestamptz END, now()""",
        conflict="""\
        ON CONFLICT (problem_id) DO UPDATE SET
            check_item = CASE WHEN EXCLUDED.origin = 'visit' THEN EXCLUDED.check_item
                ELSE p.check_item END,
            status = CASE WHEN p.status_at IS NULL OR EXCLUDED.status_at >= p.status_at
                THEN EXCLUDED.status ELSE p.status END,
            -- the newest step that names someone, by its own time (a later RECTIFIED or a
            -- securing visit names no one and must not freeze an older name in place)
            responsible = CASE WHEN EXCLUDED.responsible IS NOT NULL AND (p.responsible_at IS NULL
                OR EXCLUDED.responsible_at >= p.responsible_at)
                THEN EXCLUDED.responsible ELSE p.responsible END,
            responsible_at = CASE WHEN EXCLUDED.responsible IS NOT NULL
                AND (p.responsible_at IS NULL OR EXCLUDED.responsible_at >= p.responsible_at)
                THEN EXCLUDED.responsible_at ELSE p.responsible_at END,
            found_at = LEAST(p.found_at, EXCLUDED.found_at),
            rectified_at = CASE WHEN p.status_at IS NULL OR EXCLUDED.status_at >= p.status_at
                THEN EXCLUDED.rectified_at ELSE p.rectified_at END,
            status_at = GREATEST(p.status_at, EXCLUDED.status_at),
            origin = CASE WHEN EXCLUDED.origin = 'visit' THEN 'visit' ELSE p.origin END,
            visit_id = coalesce(p.visit_id, EXCLUDED.visit_id),
            default_due = CASE WHEN p.default_due IS NULL OR EXCLUDED.found_at < p.found_at
                THEN coalesce(EXCLUDED.default_due, p.default_due) ELSE p.default_due END,
            task_due = CASE WHEN EXCLUDED.task_at IS NOT NULL
                AND (p.task_at IS NULL OR EXCLUDED.task_at >= p.task_at)
                THEN EXCLUDED.task_due ELSE p.task_due END,
            task_at = GREATEST(p.task_at, EXCLUDED.task_at),
            updated_at = now()""",
    ),
    # What a visit found secured, per kind (closes earlier open problems: CLOSE_SECURED).
    "secured_check": Upsert(
        table="secured_checks",
        insert="""\
        INSERT INTO secured_checks AS c (household_id, kind, visit_id, secured_at)""",
        values="$1, $2, $3, $4",
        conflict="""\
        ON CONFLICT (household_id, kind, visit_id) DO UPDATE SET
            secured_at = EXCLUDED.secured_at""",
    ),
    "cadre": Upsert(
        table="cadres",
        insert="""\
        INSERT INTO cadres AS c (cadre_id, township, village, department, max_households,
            active, registry_at, updated_at)""",
        values="$1, $2, $3, $4, $5, $6, $7, now()",
        conflict="""\
        ON CONFLICT (cadre_id) DO UPDATE SET
            township = EXCLUDED.township, village = EXCLUDED.village,
            department = EXCLUDED.department, max_households = EXCLUDED.max_households,
            active = EXCLUDED.active, registry_at = EXCLUDED.registry_at, updated_at = now()
        WHERE c.registry_at IS NULL OR EXCLUDED.registry_at >= c.registry_at""",
    ),
    "operator_action": Upsert(
        table="operator_actions",
        insert="""\
        INSERT INTO operator_actions (event_id, subject_id, action, actor, source, occurred_at,
            recorded_at, token_id, token_kind, token_holder, catalogue_id, catalogue_version,
            content_sha256, changes, reason)""",
        values="$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15",
        conflict="""\
        ON CONFLICT (event_id) DO NOTHING""",
    ),
    # A record's place in the log never changes: written once (a redelivery finds it there).
    "household_record": Upsert(
        table="household_records",
        insert="""\
        INSERT INTO household_records (household_id, topic, partition, kafka_offset)""",
        values="$1, $2, $3, $4",
        conflict="""\
        ON CONFLICT (topic, partition, kafka_offset) DO NOTHING""",
    ),
    # A partition's position only moves forward; written once per batch, never staged.
    "position": Upsert(
        table="projection_positions",
        insert="""\
        INSERT INTO projection_positions (projection, topic, partition, last_offset, updated_at)""",
        values="$1, $2, $3, $4, now()",
        conflict="""\
        ON CONFLICT (projection, topic, partition) DO UPDATE SET
            last_offset = EXCLUDED.last_offset, updated_at = now()
        WHERE projection_positions.last_offset < EXCLUDED.last_offset""",
    ),
}

# Statement name → its SQL for one row; `projection.rows_for` produces (name, arguments) pairs.
STATEMENTS: Mapping[str, str] = {name: upsert.row() for name, upsert in UPSERTS.items()}
TABLE_OF: Mapping[str, str] = {name: upsert.table for name, upsert in UPSERTS.items()}
# The bulk form of every row statement but "position", and its staging table (temporary, one
# per connection; created by `bulk.py` with the row statement's own parameter types).
STAGING: Mapping[str, str] = {name: f"bulk_{name}" for name in UPSERTS if name != "position"}
BULK_STATEMENTS: Mapping[str, str] = {
    name: UPSERTS[name].bulk(staging) for name, staging in STAGING.items()
}

# This projection's name in projection_positions and projection_rejects.
PROJECTION = "readmodel"
# Positions: a row per partition (last_offset -1 until one is applied), read under FOR UPDATE
# in the batch's transaction, and read all at once when partitions are assigned.
ENSURE_POSITIONS = (  # every partition of a batch in one statement ($2, $3: in sorted order)
    "INSERT INTO projection_positions (projection, topic, partition, last_offset) "
    "SELECT $1, k.topic, k.partition, -1 FROM unnest($2::text[], $3::int[]) AS k(topic, partition)"
    " ON CONFLICT DO NOTHING"
)
POSITIONS_FOR_UPDATE = (
    "SELECT topic, partition, last_offset FROM projection_positions WHERE projection = $1 "
    "AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::int[])) "
    "ORDER BY topic, partition FOR UPDATE"
)
STORED_POSITIONS = (
    "SELECT topic, partition, last_offset FROM projection_positions WHERE projection = $1"
)
# A record the database refused, kept with the reason in its position's transaction.
REJECT = (
    "INSERT INTO projection_rejects (projection, topic, partition, kafka_offset,"
    " error) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
)
# The catalogue's pools (configuration), so queries can compare use with capacity.
POOLS = (
    "INSERT INTO pools (pool, scope, kind, capacity, unit, catalogue, capacity_by_township, "
    "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, now()) ON CONFLICT (pool) DO UPDATE "
    "SET scope = EXCLUDED.scope, kind = EXCLUDED.kind, capacity = EXCLUDED.capacity, "
    "unit = EXCLUDED.unit, catalogue = EXCLUDED.catalogue, "
    "capacity_by_township = EXCLUDED.capacity_by_township, updated_at = now()"
)
# The catalogue's entries with their priorities (configuration): a pool's waiting order.
CATALOGUE_MEASURES = (
    "INSERT INTO catalogue_measures (catalogue_id, type, pool, priority, catalogue, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (catalogue_id) DO UPDATE SET "
    "type = EXCLUDED.type, pool = EXCLUDED.pool, priority = EXCLUDED.priority, "
    "catalogue = EXCLUDED.catalogue, updated_at = now()"
)
# After each batch, for the households whose problems or secured checks it wrote: an open
# problem that a stored visit found secured after its last step (and after it was found) is
# rectified at the first such visit. Run on the stored state, so the order visits and problem
# steps arrive in does not matter; a later REOPENED step (newer than the visit) reopens it.
# After a batch, for the households whose assessments it carried: exceptions the newest
# assessment does not list are withdrawn (an earlier assessment was made before the evidence
# that answered them arrived). A newest assessment from before RiskAssessed v3 lists nothing.
SWEEP_EXCEPTIONS = """
    DELETE FROM procedure_exceptions e USING household_procedures p
    WHERE p.household_id = ANY($1::text[]) AND e.household_id = p.household_id
      AND p.exceptions IS NOT NULL AND NOT (p.exceptions ? (e.decision_event_id || '/' || e.code))
"""

CLOSE_SECURED = """
    UPDATE problems p SET status = 'rectified', rectified_at = s.at, status_at = s.at,
        updated_at = now()
    FROM (SELECT q.problem_id, min(c.secured_at) AS at
          FROM problems q JOIN secured_checks c
            ON c.household_id = q.household_id AND c.kind = q.check_item
          WHERE q.household_id = ANY($1::text[]) AND q.status = 'open'
            AND c.secured_at > q.found_at AND c.secured_at > coalesce(q.status_at, q.found_at)
          GROUP BY q.problem_id) s
    WHERE p.problem_id = s.problem_id
"""
