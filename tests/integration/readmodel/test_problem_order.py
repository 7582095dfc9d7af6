"""A problem's row in the read model does not depend on the order its steps arrive in: every
permutation of a visit that finds it, a task naming someone else and a rectification gives the
same responsible person and status (the real statements on the real PostgreSQL)."""

from __future__ import annotations

import itertools
import uuid

import asyncpg
import pytest

from services.contract.codec import Codec
from services.readmodel.projection import rows_for
from services.readmodel.statements import STATEMENTS
from tests.integration.readmodel.test_projector import (  # noqa: F401 (fresh_database: a fixture)
    fresh_database,
)
from tests.records import at, problem, visit

pytestmark = pytest.mark.integration
CODEC = Codec.default()


def changes(topic: str, event: tuple) -> list[tuple[str, tuple]]:
    event_type, record = event
    decoded = CODEC.decode(CODEC.encode(event_type, record)).record
    return rows_for(topic, f"shouwang.events.{event_type}", decoded)


async def test_the_responsible_person_is_the_newest_naming_steps_whatever_the_order(
    fresh_database: str,  # noqa: F811 (the imported fixture)
):
    conn = await asyncpg.connect(fresh_database)
    try:
        outcomes = set()
        for order in itertools.permutations(range(3)):
            household = f"ord-{uuid.uuid4().hex[:8]}"
            pid = f"{household}-v1/HOUSING"
            steps = [
                # found by the visiting cadre (cadre-yang) on 05-15
                ("household.visits", visit(household, at("2020-05-15"), visit_id=f"{household}-v1",
                                           checks={"housing": "PROBLEM"})),
                # the township hands it to cadre-chen on 05-16
                ("household.problems", problem(household, at("2020-05-16"), pid, "TASK_ASSIGNED",
                                               "HOUSING", due="2020-06-01")),
                # rectified on 05-20 (a rectification names no one)
                ("household.problems", problem(household, at("2020-05-20"), pid, "RECTIFIED",
                                               "HOUSING")),
            ]  # fmt: skip
            for index in order:
                for name, args in changes(*steps[index]):
                    if name == "problem":
                        await conn.execute(STATEMENTS[name], *args)
            row = await conn.fetchrow(
                "SELECT status, responsible, rectified_at, task_due FROM problems "
                "WHERE problem_id = $1",
                pid,
            )
            outcomes.add((order, tuple(row.values())))
        assert {values for _, values in outcomes} == {
            ("rectified", "cadre-chen", at("2020-05-20"), at("2020-06-01").date())
        }, sorted(outcomes)
    finally:
        await conn.close()
