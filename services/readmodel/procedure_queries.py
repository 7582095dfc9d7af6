"""The read model's queries over the entry and exit procedure: households by the step they
await (village deliberation, public notice, township review, county approval), steps overdue,
and the exceptions recorded (reads only).

Used by the operator API, its metrics, the console and the demo report, so each says the same.
Each takes a pool made with `api.init_connection` (jsonb decoded) and returns plain dicts.
`townships` None means any township (the caller's scope); `today` is the reader's clock.

A step is **overdue** when the monitor says so (`procedure_step_overdue` on the assessment) or
its last day (`due`) has passed by the reader's clock: the monitor's signal comes with its next
assessment (a deadline tick), the date is known at once.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from services.readmodel.queries import towns

# The steps a procedure awaits, as stored (the contract's ProcedureStep in lower case), in the
# order a procedure meets them; and its directions.
STEPS = ("village_deliberation", "notice", "notice_running", "township_review", "county_approval")
DIRECTIONS = ("entry", "exit")
EXCEPTION_CODES = ("procedure_exception", "policy_exception")
# $1 is always today.
OVERDUE = "(p.step_overdue OR coalesce(p.due < $1::date, false))"
PAGE_MAX = 1000


PROCEDURE_COLUMNS = f"""p.household_id, h.township, h.village, h.workflow_status, h.category,
    h.level, p.direction, p.awaiting, p.since, p.due, (p.due - $1::date) AS days_left,
    p.notice_start, p.notice_ends, (p.notice_ends - $1::date) AS notice_days_left,
    p.objections, p.steps, {OVERDUE} AS overdue, p.assessed_at"""


async def procedure_households(
    pool: asyncpg.Pool,
    today: Any,
    townships: frozenset[str] | None,
    *,
    township: str | None = None,
    awaiting: str | None = None,
    direction: str | None = None,
    overdue: bool | None = None,
    after: str = "",
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Households whose procedure is under way, by household id after `after`: the step each
    awaits, since when and until when, the notice and its days left, objections, steps."""
    rows = await pool.fetch(
        f"""SELECT {PROCEDURE_COLUMNS}
        FROM household_procedures p LEFT JOIN households h USING (household_id)
        WHERE p.awaiting IS NOT NULL
          AND ($2::text[] IS NULL OR h.township = ANY($2::text[]))
          AND ($3::text IS NULL OR h.township = $3)
          AND ($4::text IS NULL OR p.awaiting = $4)
          AND ($5::text IS NULL OR p.direction = $5)
          AND ($6::bool IS NULL OR {OVERDUE} = $6)
          AND p.household_id > $7
        ORDER BY p.household_id LIMIT $8""",
        today,
        towns(townships),
        township,
        awaiting,
        direction,
        overdue,
        after,
        limit,
    )
    return [dict(r) for r in rows]


async def procedure_queue(
    pool: asyncpg.Pool, today: Any, household_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """The procedure of each of `household_ids` that has one under way, by household id."""
    rows = await pool.fetch(
        f"""SELECT {PROCEDURE_COLUMNS}
        FROM household_procedures p LEFT JOIN households h USING (household_id)
        WHERE p.awaiting IS NOT NULL AND p.household_id = ANY($2::text[])""",
        today,
        household_ids,
    )
    return {r["household_id"]: dict(r) for r in rows}


async def household_procedure(
    pool: asyncpg.Pool, today: Any, household_id: str
) -> dict[str, Any] | None:
    """One household's procedure under way, or None."""
    found = await procedure_queue(pool, today, [household_id])
    return found.get(household_id)


async def procedure_counts(
    pool: asyncpg.Pool, today: Any, townships: frozenset[str] | None, township: str | None = None
) -> list[dict[str, Any]]:
    """Households with a procedure under way, by township, direction and awaited step, with how
    many of them are overdue (households without a known township: township None)."""
    rows = await pool.fetch(
        f"""SELECT h.township, p.direction, p.awaiting, count(*) AS households,
               count(*) FILTER (WHERE {OVERDUE}) AS overdue
        FROM household_procedures p LEFT JOIN households h USING (household_id)
        WHERE p.awaiting IS NOT NULL
          AND ($2::text[] IS NULL OR h.township = ANY($2::text[]))
          AND ($3::text IS NULL OR h.township = $3)
        GROUP BY 1, 2, 3 ORDER BY 1 NULLS LAST, 2, 3 LIMIT $4""",
        today,
        towns(townships),
        township,
        PAGE_MAX,
    )
    return [dict(r) for r in rows]


STEP_COLUMNS = """event_id, decision, outcome, exception, category, body, approving_level,
    notice_start, notice_days, actor, occurred_at, recorded_at"""


async def review_steps(pool: asyncpg.Pool, event_ids: list[str]) -> list[dict[str, Any]]:
    """The review decisions of `event_ids` (a procedure's steps), in that order; an id the read
    model does not hold yet (the decision still on its way) comes back with its id and every
    other column None."""
    rows = await pool.fetch(
        f"""SELECT {STEP_COLUMNS} FROM review_steps WHERE event_id = ANY($1::text[])""",
        event_ids,
    )
    found = {r["event_id"]: dict(r) for r in rows}
    missing = dict.fromkeys(c.strip() for c in STEP_COLUMNS.split(","))
    return [found.get(event_id, {**missing, "event_id": event_id}) for event_id in event_ids]


EXCEPTION_COLUMNS = """e.exception_id, e.household_id, h.township, h.village, e.code,
    e.decision_event_id, e.message, e.event_ids, e.first_seen_at AS recorded_at,
    e.assessment_id::text AS assessment_id"""


async def exceptions(
    pool: asyncpg.Pool,
    townships: frozenset[str] | None,
    *,
    township: str | None = None,
    code: str | None = None,
    household_id: str | None = None,
    after: str = "",
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Exceptions that took effect (procedure_exception, policy_exception), by their id
    (household/decision/code) after `after`: the household, the decision, the monitor's message
    and when the first assessment recorded it."""
    rows = await pool.fetch(
        f"""SELECT {EXCEPTION_COLUMNS}
        FROM procedure_exceptions e LEFT JOIN households h USING (household_id)
        WHERE ($1::text[] IS NULL OR h.township = ANY($1::text[]))
          AND ($2::text IS NULL OR h.township = $2)
          AND ($3::text IS NULL OR e.code = $3)
          AND ($4::text IS NULL OR e.household_id = $4)
          AND e.exception_id > $5
        ORDER BY e.exception_id LIMIT $6""",
        towns(townships),
        township,
        code,
        household_id,
        after,
        limit,
    )
    return [dict(r) for r in rows]


async def exception_counts(
    pool: asyncpg.Pool, townships: frozenset[str] | None, township: str | None = None
) -> list[dict[str, Any]]:
    """Exceptions recorded, by township and code."""
    rows = await pool.fetch(
        """SELECT h.township, e.code, count(*) AS exceptions
        FROM procedure_exceptions e LEFT JOIN households h USING (household_id)
        WHERE ($1::text[] IS NULL OR h.township = ANY($1::text[]))
          AND ($2::text IS NULL OR h.township = $2)
        GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 LIMIT $3""",
        towns(townships),
        township,
        PAGE_MAX,
    )
    return [dict(r) for r in rows]
