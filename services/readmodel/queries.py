"""The read model's queries for the console's pages (reads only), beside the operator API's.

Each takes a pool made with `api.init_connection` (jsonb decoded) and returns plain dicts, so a
page renders them without knowing asyncpg. Scoping by township is the caller's: `townships`
None means any township.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

# The review queue: households the rules flagged and those whose verification has begun.
REVIEW_STATUSES = ("flagged", "verifying")
QUEUE_LIMIT = 500


def _dicts(records: Iterable[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in records]


def towns(townships: frozenset[str] | None) -> list[str] | None:
    """A scope's townships as a query argument: sorted, or None for every township."""
    return None if townships is None else sorted(townships)


async def review_queue(
    pool: asyncpg.Pool,
    townships: frozenset[str] | None,
    township: str | None = None,
    limit: int = QUEUE_LIMIT,
    villages: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """FLAGGED and VERIFYING households in `townships` (and `township` if given; and of
    `villages`, a village committee's, if given), and those
    whose entry or exit procedure is under way, with when their current risk cycle began: the
    first assessment after the last one without a category (a household never without risk
    since its first assessment: its first one), and the procedure's step (`awaiting` and its
    `step_due`, the notice's end; all None without one). Ordered with the households the
    monitor calls decision- or step-overdue first, then the oldest cycle first."""
    rows = await pool.fetch(
        """SELECT h.household_id, h.township, h.village, h.category, h.level,
               h.workflow_status, h.policy_version, h.assessed_at, h.overdue, h.reasons,
               h.responsible_cadre_id, p.direction, p.awaiting, p.since AS step_since,
               p.due AS step_due, p.notice_start, p.notice_ends, p.objections,
               coalesce(p.step_overdue, false) AS step_overdue,
               (SELECT min(a.assessed_at) FROM assessments a
                 WHERE a.household_id = h.household_id
                   AND a.assessed_at > COALESCE(
                       (SELECT max(b.assessed_at) FROM assessments b
                         WHERE b.household_id = h.household_id AND b.category IS NULL),
                       '-infinity'::timestamptz)) AS cycle_started
        FROM households h LEFT JOIN household_procedures p USING (household_id)
        -- each side by its own index (an OR across the join would read every household)
        WHERE h.household_id IN (
                SELECT household_id FROM households WHERE workflow_status = ANY($1::text[])
                UNION
                SELECT household_id FROM household_procedures WHERE awaiting IS NOT NULL)
          AND ($2::text[] IS NULL OR h.township = ANY($2::text[]))
          AND ($3::text IS NULL OR h.township = $3)
          AND ($5::text[] IS NULL OR h.village = ANY($5::text[]))
        ORDER BY (h.overdue ? 'decision_overdue' OR coalesce(p.step_overdue, false)) DESC,
                 cycle_started NULLS LAST, h.household_id
        LIMIT $4""",
        list(REVIEW_STATUSES),
        towns(townships),
        township,
        limit,
        towns(villages),
    )
    return _dicts(rows)


async def household(pool: asyncpg.Pool, household_id: str) -> dict[str, Any] | None:
    """One household's row (no personal data is in the read model), or None."""
    row = await pool.fetchrow(
        """SELECT household_id, township, village, grp, registration_status, members,
               labourers, weak_labourers, category, level, reasons, workflow_status,
               policy_version, assessed_at, responsible_cadre_id, last_visit_at, overdue,
               registry_at
        FROM households WHERE household_id = $1""",
        household_id,
    )
    return None if row is None else dict(row)


async def household_assessments(pool: asyncpg.Pool, household_id: str) -> list[dict[str, Any]]:
    """Every assessment change of a household, in the order it speaks for (then recorded)."""
    rows = await pool.fetch(
        """SELECT assessment_id, category, level, reasons, policy_version, assessed_at,
               recorded_at
        FROM assessments WHERE household_id = $1 ORDER BY assessed_at, recorded_at""",
        household_id,
    )
    return _dicts(rows)


async def household_measures(pool: asyncpg.Pool, household_id: str) -> list[dict[str, Any]]:
    """A household's measures with their pools and statuses, newest recommendation first."""
    rows = await pool.fetch(
        """SELECT measure_id, type AS measure_type, status, catalogue_id, pool, waiting_for,
               cadre_id, recommended_at, status_changed_at
        FROM measures WHERE household_id = $1
        ORDER BY recommended_at DESC NULLS LAST, measure_id""",
        household_id,
    )
    return _dicts(rows)


async def household_problems(pool: asyncpg.Pool, household_id: str) -> list[dict[str, Any]]:
    """A household's problems, open ones first, then by when found."""
    rows = await pool.fetch(
        """SELECT problem_id, check_item, status, responsible, found_at, rectified_at, origin,
               visit_id, coalesce(task_due, default_due) AS due_date
        FROM problems WHERE household_id = $1
        ORDER BY (status = 'open') DESC, found_at, problem_id""",
        household_id,
    )
    return _dicts(rows)


# A pairing measure that holds its cadre (as the operator API's `HELD`).
PAIRING_HELD = ("recommended", "accepted", "delivered")


# Most rows of one person's list (households a cadre answers for, problems it must rectify) in
# one answer: a documented maximum (`maxItems` in the console's OpenAPI document). A cadre pairs
# with a handful of households and a village cadre answers for a few hundred; a list reaching
# it is cut and said to be (`WorkList.truncated`).
PERSON_LIST_MAX = 1000


async def cadre_household_ids(pool: asyncpg.Pool, cadre_id: str) -> list[str]:
    """The households a cadre answers for: those it is the responsible person of, and those
    it holds a pairing measure for (at most PERSON_LIST_MAX + 1: one more tells a cut list)."""
    rows = await pool.fetch(
        """SELECT household_id FROM households WHERE responsible_cadre_id = $1
        UNION
        SELECT household_id FROM measures
         WHERE cadre_id = $1 AND type = 'PAIRING' AND status = ANY($2::text[])
        ORDER BY household_id
        LIMIT $3""",
        cadre_id,
        list(PAIRING_HELD),
        PERSON_LIST_MAX + 1,
    )
    return [r["household_id"] for r in rows]


async def households_changed(
    pool: asyncpg.Pool, household_ids: list[str], since: Any = None
) -> list[dict[str, Any]]:
    """Those households' rows (no personal data), only the ones changed after `since` if
    given, by household id."""
    rows = await pool.fetch(
        """SELECT household_id, township, village, category, level, workflow_status,
               policy_version, last_visit_at, overdue, reasons, updated_at
        FROM households
        WHERE household_id = ANY($1::text[]) AND ($2::timestamptz IS NULL OR updated_at > $2)
        ORDER BY household_id""",
        household_ids,
        since,
    )
    return _dicts(rows)


async def problems_of(
    pool: asyncpg.Pool, responsible: str, since: Any = None
) -> list[dict[str, Any]]:
    """Problems a person is responsible for: the open ones, or (with `since`) every one changed
    after it, rectified ones too, so a field app can drop them (at most PERSON_LIST_MAX + 1)."""
    rows = await pool.fetch(
        """SELECT problem_id, household_id, check_item, status, found_at, rectified_at,
               coalesce(task_due, default_due) AS due_date, updated_at
        FROM problems
        WHERE responsible = $1
          AND (($2::timestamptz IS NULL AND status = 'open') OR updated_at > $2)
        ORDER BY found_at, problem_id
        LIMIT $3""",
        responsible,
        since,
        PERSON_LIST_MAX + 1,
    )
    return _dicts(rows)


async def database_now(pool: asyncpg.Pool) -> Any:
    """The database's clock: the one every row's updated_at is stamped with."""
    return await pool.fetchval("SELECT now()")


# The distinct townships of the households, by a skip scan of the (township, category) index:
# one index probe per township instead of reading every household (a county has ~30,000
# households in a few dozen townships).
DISTINCT_TOWNSHIPS = """WITH RECURSIVE towns AS (
            (SELECT township FROM households WHERE township IS NOT NULL
             ORDER BY township LIMIT 1)
            UNION ALL
            SELECT (SELECT h.township FROM households h WHERE h.township > t.township
                    ORDER BY h.township LIMIT 1)
            FROM towns t WHERE t.township IS NOT NULL
        )"""


async def townships(pool: asyncpg.Pool, within: frozenset[str] | None) -> list[str]:
    """The townships the read model knows (of `within`, if given), for a filter's choices."""
    rows = await pool.fetch(
        f"""{DISTINCT_TOWNSHIPS}
        SELECT township FROM towns
        WHERE township IS NOT NULL AND ($1::text[] IS NULL OR township = ANY($1::text[]))
        ORDER BY township""",
        towns(within),
    )
    return [r["township"] for r in rows]


async def county_overview(
    pool: asyncpg.Pool, within: frozenset[str] | None, township: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The county's figures, as the demo report counts them, over the households of `within`
    (None: all) and `township` (if given): households by workflow and category with how many
    were ever visited, overdue signals, measures by status, problems by status."""
    scope = """($1::text[] IS NULL OR h.township = ANY($1::text[]))
        AND ($2::text IS NULL OR h.township = $2)"""
    args = (towns(within), township)
    households = await pool.fetch(
        f"""SELECT h.workflow_status, h.category, count(*) AS households,
               count(h.last_visit_at) AS visited
        FROM households h WHERE {scope} GROUP BY 1, 2 ORDER BY 1, 2""",
        *args,
    )
    overdue = await pool.fetch(
        f"""SELECT signal, count(*) AS households
        FROM households h, jsonb_array_elements_text(h.overdue) AS signal
        WHERE h.overdue <> '[]'::jsonb AND {scope} GROUP BY 1 ORDER BY 1""",
        *args,
    )
    # The whole county needs no join: every measure and problem counts (joining ~10,000
    # measures to their households cost most of the page at county scale).
    joined = within is not None or township is not None
    measures = await pool.fetch(
        f"""SELECT m.status, count(*) AS measures, count(DISTINCT m.household_id) AS households
        FROM measures m JOIN households h USING (household_id)
        WHERE {scope} GROUP BY 1 ORDER BY 1"""
        if joined
        else """SELECT m.status, count(*) AS measures,
               count(DISTINCT m.household_id) AS households
        FROM measures m WHERE $1::text[] IS NULL AND $2::text IS NULL GROUP BY 1 ORDER BY 1""",
        *args,
    )
    problems = await pool.fetch(
        f"""SELECT p.status, count(*) AS problems
        FROM problems p JOIN households h USING (household_id)
        WHERE {scope} GROUP BY 1 ORDER BY 1"""
        if joined
        else """SELECT p.status, count(*) AS problems FROM problems p
        WHERE $1::text[] IS NULL AND $2::text IS NULL GROUP BY 1 ORDER BY 1""",
        *args,
    )
    return {
        "households": _dicts(households),
        "overdue": _dicts(overdue),
        "measures": _dicts(measures),
        "problems": _dicts(problems),
    }


# Problems (from visits and the problem list), with their due date: a task's, else the day
# found plus the policy's rectification period (projection.py). "Overdue" is open past it; a
# row without a due date (projected before migration 0009) is never overdue.
PROBLEM_DUE = "coalesce(p.task_due, p.default_due)"
PAST_DUE = f"coalesce({PROBLEM_DUE} < $1::date, false)"  # $1: today
BOARD_LIMIT = 1000


async def open_problems(
    pool: asyncpg.Pool,
    today: Any,
    townships: frozenset[str] | None,
    township: str | None = None,
    responsible: str | None = None,
    limit: int = BOARD_LIMIT,
) -> list[dict[str, Any]]:
    """Open problems of households in `townships` (and `township`, `responsible` if given),
    overdue first, then by due date (the soonest first), with their township and village."""
    rows = await pool.fetch(
        f"""SELECT p.problem_id, p.household_id, h.township, h.village, p.check_item,
               p.responsible, p.origin, p.visit_id, p.found_at, {PROBLEM_DUE} AS due_date,
               {PAST_DUE} AS overdue
        FROM problems p LEFT JOIN households h USING (household_id)
        WHERE p.status = 'open'
          AND ($2::text[] IS NULL OR h.township = ANY($2::text[]))
          AND ($3::text IS NULL OR h.township = $3)
          AND ($4::text IS NULL OR p.responsible = $4)
        ORDER BY {PAST_DUE} DESC, {PROBLEM_DUE} NULLS LAST, p.found_at,
                 p.problem_id
        LIMIT $5""",
        today,
        towns(townships),
        township,
        responsible,
        limit,
    )
    return _dicts(rows)


async def rectification(
    pool: asyncpg.Pool,
    today: Any,
    townships: frozenset[str] | None,
    township: str | None = None,
    responsible: str | None = None,
) -> dict[str, Any]:
    """Rectification by township and for the whole scope (and only `responsible`'s problems if
    given): problems found, rectified, open and overdue, and the rate (rectified over found;
    None when nothing was found, so an empty township is not shown as perfect). Problems of
    households without a known township are counted under township None."""
    rows = await pool.fetch(
        f"""SELECT h.township, count(*) AS found,
               count(*) FILTER (WHERE p.status = 'rectified') AS rectified,
               count(*) FILTER (WHERE p.status = 'open') AS open,
               count(*) FILTER (WHERE p.status = 'open' AND {PAST_DUE})
                   AS overdue
        FROM problems p LEFT JOIN households h USING (household_id)
        WHERE ($2::text[] IS NULL OR h.township = ANY($2::text[]))
          AND ($3::text IS NULL OR h.township = $3)
          AND ($4::text IS NULL OR p.responsible = $4)
        GROUP BY h.township ORDER BY h.township NULLS LAST""",
        today,
        towns(townships),
        township,
        responsible,
    )
    items = [_rated(dict(r)) for r in rows]
    total = {
        key: sum(item[key] for item in items) for key in ("found", "rectified", "open", "overdue")
    }
    return {"townships": items, "total": _rated(total)}


async def open_by_responsible(
    pool: asyncpg.Pool,
    today: Any,
    townships: frozenset[str] | None,
    township: str | None = None,
    responsible: str | None = None,
) -> list[dict[str, Any]]:
    """Open problems counted by township and responsible person (None: nobody named), with how
    many are overdue and the earliest due date; the most overdue first."""
    rows = await pool.fetch(
        f"""SELECT h.township, p.responsible, count(*) AS open,
               count(*) FILTER (WHERE {PAST_DUE}) AS overdue,
               min({PROBLEM_DUE}) AS first_due
        FROM problems p LEFT JOIN households h USING (household_id)
        WHERE p.status = 'open'
          AND ($2::text[] IS NULL OR h.township = ANY($2::text[]))
          AND ($3::text IS NULL OR h.township = $3)
          AND ($4::text IS NULL OR p.responsible = $4)
        GROUP BY h.township, p.responsible
        ORDER BY overdue DESC, first_due NULLS LAST, h.township NULLS LAST,
                 p.responsible NULLS LAST
        LIMIT $5""",
        today,
        towns(townships),
        township,
        responsible,
        BOARD_LIMIT,
    )
    return _dicts(rows)


def _rated(counts: dict[str, Any]) -> dict[str, Any]:
    found = counts["found"]
    return {**counts, "rate": counts["rectified"] / found if found else None}
