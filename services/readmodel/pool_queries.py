"""The measures and pools pages' queries over the read model: each pool's capacity, booked and
waiting, and a pool's queue in the support matcher's order (the console reads them here)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.contract import vocabulary
from services.readmodel.queries import DISTINCT_TOWNSHIPS, PAIRING_HELD, _dicts, towns

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
        towns(townships),
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
        towns(townships),
        limit,
    )
    return _dicts(rows)
