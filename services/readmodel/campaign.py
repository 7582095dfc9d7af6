"""The epidemic "five visits, five helps" campaign's totals over the read model (the operator
API's /v1/campaign, its shouwang_campaign_* gauges and the demo report read them here)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.readmodel.queries import towns

# Measure types that answer each need of the epidemic block (as the policies' [answers] map
# them): a need counts as helped when such a measure was delivered or completed after the visit.
EMPLOYMENT_TYPES = ("MIGRANT_WORK", "PUBLIC_WELFARE_JOB", "WORKSHOP_JOB")
MAX_CAMPAIGN_ROWS = 1000  # the total and 999 townships: a province's counties have far fewer
CAMPAIGN_FIGURES = (
    "households_visited",
    "family_impact_recorded",
    "members_seeking_work",
    "workers_organised",
    "public_welfare_jobs",
    "unsold_produce_yuan",
    "produce_sold_with_aid_yuan",
    "spring_farming_needs_help",
    "spring_farming_helped",
    "students_learning_at_home",
    "students_without_access",
    "students_helped",
)


async def campaign_totals(
    pool: asyncpg.Pool, within: frozenset[str] | None, township: str | None = None
) -> list[dict[str, Any]]:
    """The epidemic "five visits, five helps" campaign's totals (the seed's: produce sold,
    workers organised, public-welfare jobs, student files), from each household's latest
    five-visits block: the total row (`total` true) first, then one row per township.

    A need counts as met when a measure answering it (employment for work, SALES_AID for unsold
    produce, INDUSTRY for spring farming, EDUCATION for students without access) has a DELIVERED
    or COMPLETED step dated after the visit that recorded it — the steps, not the measure's
    status: a delivered job whose slot support later releases (the household cleared) ends
    CANCELLED, and was still given."""
    rows = await pool.fetch(
        """WITH latest AS (
            SELECT DISTINCT ON (household_id) * FROM epidemic_visits WHERE has_block
            ORDER BY household_id, occurred_at DESC, visit_id DESC
        ), helped AS (
            SELECT e.household_id,
                bool_or(m.type = ANY($3::text[])) AS employment,
                count(DISTINCT s.measure_id) FILTER (WHERE m.type = 'PUBLIC_WELFARE_JOB')
                    AS welfare_jobs,
                bool_or(m.type = 'SALES_AID') AS sales,
                bool_or(m.type = 'INDUSTRY') AS industry,
                bool_or(m.type = 'EDUCATION') AS education
            FROM latest e
            JOIN measure_steps s ON s.household_id = e.household_id
            JOIN measures m ON m.measure_id = s.measure_id
            WHERE s.step IN ('DELIVERED', 'COMPLETED') AND s.occurred_at >= e.occurred_at
            GROUP BY e.household_id
        )
        SELECT h.township, GROUPING(h.township) = 1 AS total,
            count(*) AS households_visited,
            count(*) FILTER (WHERE e.family_impact_recorded) AS family_impact_recorded,
            coalesce(sum(e.members_seeking_work), 0) AS members_seeking_work,
            coalesce(sum(e.members_seeking_work) FILTER (WHERE x.employment), 0)
                AS workers_organised,
            coalesce(sum(x.welfare_jobs), 0) AS public_welfare_jobs,
            coalesce(sum(e.unsold_value_yuan), 0) AS unsold_produce_yuan,
            coalesce(sum(e.unsold_value_yuan) FILTER (WHERE x.sales), 0)
                AS produce_sold_with_aid_yuan,
            count(*) FILTER (WHERE e.spring_farming_needs_help) AS spring_farming_needs_help,
            count(*) FILTER (WHERE e.spring_farming_needs_help AND x.industry)
                AS spring_farming_helped,
            coalesce(sum(e.students_learning_at_home), 0) AS students_learning_at_home,
            coalesce(sum(e.students_without_access), 0) AS students_without_access,
            coalesce(sum(e.students_without_access) FILTER (WHERE x.education), 0)
                AS students_helped
        FROM latest e
        JOIN households h USING (household_id)
        LEFT JOIN helped x USING (household_id)
        WHERE ($1::text[] IS NULL OR h.township = ANY($1::text[]))
          AND ($2::text IS NULL OR h.township = $2)
        GROUP BY GROUPING SETS ((h.township), ())
        ORDER BY GROUPING(h.township) DESC, h.township NULLS LAST
        LIMIT $4""",
        towns(within),
        township,
        list(EMPLOYMENT_TYPES),
        MAX_CAMPAIGN_ROWS,
    )
    return [
        {"township": r["township"], "total": r["total"]} | {k: int(r[k]) for k in CAMPAIGN_FIGURES}
        for r in rows
    ]
