"""The read model's queries for the console's pages (reads only), beside the operator API's.

Each takes a pool made with `api.init_connection` (jsonb decoded) and returns plain dicts, so a
page renders them without knowing asyncpg. Scoping by township is the caller's: `townships`
None means any township.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from services.contract import vocabulary

# The review queue: households the rules flagged and those whose verification has begun.
REVIEW_STATUSES = ("flagged", "verifying")
QUEUE_LIMIT = 500


def _dicts(records: Iterable[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in records]


def _towns(townships: frozenset[str] | None) -> list[str] | None:
    return None if townships is None else sorted(townships)


async def review_queue(
    pool: asyncpg.Pool,
    townships: frozenset[str] | None,
    township: str | None = None,
    limit: int = QUEUE_LIMIT,
) -> list[dict[str, Any]]:
    """FLAGGED and VERIFYING households in `townships` (and `township` if given), with when
    their current risk cycle began: the first assessment after the last one without a category
    (a household never without risk since its first assessment: its first one). Ordered with the
    households the monitor calls decision-overdue first, then the oldest cycle first."""
    rows = await pool.fetch(
        """SELECT h.household_id, h.township, h.village, h.category, h.level,
               h.workflow_status, h.policy_version, h.assessed_at, h.overdue, h.reasons,
               h.responsible_cadre_id,
               (SELECT min(a.assessed_at) FROM assessments a
                 WHERE a.household_id = h.household_id
                   AND a.assessed_at > COALESCE(
                       (SELECT max(b.assessed_at) FROM assessments b
                         WHERE b.household_id = h.household_id AND b.category IS NULL),
                       '-infinity'::timestamptz)) AS cycle_started
        FROM households h
        WHERE h.workflow_status = ANY($1::text[])
          AND ($2::text[] IS NULL OR h.township = ANY($2::text[]))
          AND ($3::text IS NULL OR h.township = $3)
        ORDER BY (h.overdue ? 'decision_overdue') DESC, cycle_started NULLS LAST,
                 h.household_id
        LIMIT $4""",
        list(REVIEW_STATUSES),
        _towns(townships),
        township,
        limit,
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
        """SELECT problem_id, check_item, status, responsible, found_at, rectified_at
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
               updated_at
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
        _towns(within),
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
    args = (_towns(within), township)
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


# ---- measures and pools ----

# Statuses in which a measure holds its pool's slot (or its cadre), as `pool_use` counts them.
POOL_HELD = PAIRING_HELD
POOL_QUEUE_LIMIT = 500


async def pool_use(
    pool: asyncpg.Pool, townships: frozenset[str] | None, instance: str | None = None
) -> list[dict[str, Any]]:
    """Every pool instance of the catalogue with its capacity, slots held and measures waiting:
    each county pool (county-wide figures), and each township pool once per township the read
    model knows (of `townships`, if given). A cadre pool's capacity is its township's active
    cadres' maximum households; a slot pool's is its catalogue capacity (per township if set).
    With `instance`, that pool instance alone (none if it is not one of these)."""
    rows = await pool.fetch(
        f"""{DISTINCT_TOWNSHIPS}, scoped AS (
            SELECT township FROM towns
            WHERE township IS NOT NULL AND ($1::text[] IS NULL OR township = ANY($1::text[]))
        ), cadre_capacity AS (
            SELECT township, sum(max_households) AS capacity FROM cadres
            WHERE active GROUP BY township
        ), instances AS (
            SELECT 'county:' || p.pool AS instance, p.pool, p.scope, NULL::text AS township,
                   p.kind, p.unit, p.capacity, p.capacity_by_township
            FROM pools p WHERE p.scope = 'county'
            UNION ALL
            SELECT 'township:' || t.township || ':' || p.pool, p.pool, p.scope, t.township,
                   p.kind, p.unit, p.capacity, p.capacity_by_township
            FROM pools p CROSS JOIN scoped t WHERE p.scope = 'township'
        ), used AS (
            SELECT coalesce(m.pool, m.waiting_for) AS instance,
                   count(*) FILTER (WHERE m.status = ANY($2::text[])) AS held,
                   count(*) FILTER (WHERE m.status = 'waiting') AS waiting
            FROM measures m
            WHERE coalesce(m.pool, m.waiting_for) IS NOT NULL
              AND (m.status = ANY($2::text[]) OR m.status = 'waiting')
              AND ($3::text IS NULL OR coalesce(m.pool, m.waiting_for) = $3)
            GROUP BY 1
        )
        SELECT i.instance, i.pool, i.scope, i.township, i.kind, i.unit,
               CASE WHEN i.kind = 'cadres' THEN c.capacity
                 ELSE coalesce((i.capacity_by_township ->> i.township)::integer, i.capacity)
               END AS capacity,
               coalesce(u.held, 0) AS held, coalesce(u.waiting, 0) AS waiting
        FROM instances i LEFT JOIN used u USING (instance)
        LEFT JOIN cadre_capacity c ON c.township = i.township
        WHERE $3::text IS NULL OR i.instance = $3
        ORDER BY i.scope, i.pool, i.township NULLS FIRST""",
        _towns(townships),
        list(POOL_HELD),
        instance,
    )
    return _dicts(rows)


async def pool_queue(
    pool: asyncpg.Pool,
    instance: str,
    townships: frozenset[str] | None,
    limit: int = POOL_QUEUE_LIMIT,
) -> list[dict[str, Any]]:
    """The measures waiting for pool `instance`, in the order the support service serves them,
    each with its place in the whole queue (`position`, 1 = next) and its reasons; only those of
    households in `townships` (if given) are returned, at their places in the whole queue.

    The order is the matcher's (`Need.queue_key` in services/support/domain/matcher.py): the
    catalogue entry's priority (lower first), then the urgency of the assessment that triggered
    the need (its risk level, higher first; the level's place in the contract's RiskLevel enum),
    then first come first served (when the waiting step was recorded), then measure id."""
    rows = await pool.fetch(
        """WITH queue AS (
            SELECT m.measure_id, m.household_id, m.catalogue_id, m.type AS measure_type,
                   m.reasons, m.recommended_at, m.status_changed_at AS waiting_since,
                   coalesce(c.priority, 0) AS priority, a.level, q.queued_at,
                   row_number() OVER (ORDER BY coalesce(c.priority, 0),
                       coalesce(array_position($2::text[], a.level), 1) DESC,
                       q.queued_at NULLS LAST, m.measure_id) AS position
            FROM measures m
            LEFT JOIN catalogue_measures c ON c.catalogue_id = m.catalogue_id
            LEFT JOIN LATERAL (
                SELECT b.level FROM assessments b
                WHERE b.household_id = m.household_id AND b.assessed_at = m.recommended_at
                ORDER BY b.recorded_at DESC NULLS LAST LIMIT 1) a ON true
            LEFT JOIN LATERAL (
                SELECT min(s.recorded_at) AS queued_at FROM measure_steps s
                WHERE s.measure_id = m.measure_id AND s.waiting_for IS NOT NULL) q ON true
            WHERE m.status = 'waiting' AND m.waiting_for = $1
        )
        SELECT q.*, h.township, h.village
        FROM queue q LEFT JOIN households h USING (household_id)
        WHERE $3::text[] IS NULL OR h.township = ANY($3::text[])
        ORDER BY q.position LIMIT $4""",
        instance,
        list(vocabulary.symbols("RiskLevel")),
        _towns(townships),
        limit,
    )
    return _dicts(rows)
