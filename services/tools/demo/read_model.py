"""What the report needs from the read model: a handful of aggregate queries, no logic."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from services.readmodel import procedure_queries
from services.readmodel.campaign import campaign_totals

EXCEPTIONS_LISTED = 20  # the report names the first exceptions; the API lists them all


@dataclass(frozen=True)
class ReadModelFacts:
    """Rows as the database returns them; `services.tools.demo.report` makes the numbers."""

    # (township, registration_status, workflow_status, category, households)
    households: list[tuple[str | None, str | None, str, str | None, int]]
    # (registration_status, workflow_status, households, visited)
    visited: list[tuple[str | None, str, int, int]]
    # (overdue signal, households)
    overdue: list[tuple[str, int]]
    # (measure type, step, waiting, distinct measures, distinct households)
    measure_steps: list[tuple[str, str, bool, int, int]]
    # (measure type, status, measures, households)
    measures: list[tuple[str, str, int, int]]
    # (check item, status, problems)
    problems: list[tuple[str, str, int]]
    # projector rejects (records the database refused)
    rejects: int
    # the epidemic campaign's totals, the county row first (`campaign.campaign_totals`)
    campaign: list[dict[str, Any]] = field(default_factory=list)
    # (township, status, problems): problems from visits and the problem list, by township
    problems_by_township: list[tuple[str | None, str, int]] = field(default_factory=list)
    # (category, workflow_status, re-review overdue, households): households a policy switch
    # carried over (their current reasons hold a policy_transition)
    transitions: list[tuple[str | None, str, bool, int]] = field(default_factory=list)
    # the entry and exit procedure by township, direction and awaited step, with how many are
    # overdue (`procedure_queries.procedure_counts`, the operator API's query)
    procedures: list[dict[str, Any]] = field(default_factory=list)
    # exceptions by township and code, and the first EXCEPTIONS_LISTED of them
    exception_counts: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[dict[str, Any]] = field(default_factory=list)


async def read_facts(database_url: str, today: dt.date | None = None) -> ReadModelFacts:
    """Run the report's queries in one read-only, repeatable-read transaction. `today` is the
    day overdue procedure steps are reckoned on: the simulated run's last day (a run of 2020
    read by today's wall clock would find every step still under way overdue); None: the wall
    clock, as the operator API reckons it."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            households = await conn.fetch(
                "SELECT township, registration_status, workflow_status, category, count(*) "
                "FROM households GROUP BY 1, 2, 3, 4"
            )
            visited = await conn.fetch(
                "SELECT registration_status, workflow_status, count(*), "
                "count(last_visit_at) FROM households GROUP BY 1, 2"
            )
            overdue = await conn.fetch(
                "SELECT signal, count(*) FROM households, "
                "jsonb_array_elements_text(overdue) AS signal GROUP BY 1"
            )
            # A step's type comes from its measure row (support's and the field's steps share it).
            measure_steps = await conn.fetch(
                "SELECT m.type, s.step, s.waiting_for IS NOT NULL, count(DISTINCT s.measure_id), "
                "count(DISTINCT s.household_id) FROM measure_steps s "
                "JOIN measures m USING (measure_id) GROUP BY 1, 2, 3"
            )
            measures = await conn.fetch(
                "SELECT type, status, count(*), count(DISTINCT household_id) FROM measures "
                "GROUP BY 1, 2"
            )
            problems = await conn.fetch(
                "SELECT check_item, status, count(*) FROM problems GROUP BY 1, 2"
            )
            by_township = await conn.fetch(
                "SELECT h.township, p.status, count(*) FROM problems p "
                "LEFT JOIN households h USING (household_id) GROUP BY 1, 2"
            )
            transitions = await conn.fetch(
                "SELECT category, workflow_status, overdue ? 'decision_overdue', count(*) "
                'FROM households WHERE reasons @> \'[{"code": "policy_transition"}]\' '
                "GROUP BY 1, 2, 3"
            )
            rejects = await conn.fetchval("SELECT count(*) FROM projection_rejects")
            campaign = await campaign_totals(conn, None)  # the operator API's query
            if today is None:
                today = dt.datetime.now(dt.UTC).date()  # as the operator API reckons overdue
            procedures = await procedure_queries.procedure_counts(conn, today, None)
            exception_counts = await procedure_queries.exception_counts(conn, None)
            exceptions = await procedure_queries.exceptions(conn, None, limit=EXCEPTIONS_LISTED)
    finally:
        await conn.close()
    return ReadModelFacts(
        households=[tuple(r) for r in households],
        visited=[tuple(r) for r in visited],
        overdue=[tuple(r) for r in overdue],
        measure_steps=[tuple(r) for r in measure_steps],
        measures=[tuple(r) for r in measures],
        problems=[tuple(r) for r in problems],
        rejects=int(rejects),
        campaign=campaign,
        problems_by_township=[tuple(r) for r in by_township],
        transitions=[tuple(r) for r in transitions],
        procedures=procedures,
        exception_counts=exception_counts,
        exceptions=exceptions,
    )
