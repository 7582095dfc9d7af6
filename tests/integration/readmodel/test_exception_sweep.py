"""Exceptions in the read model are what the newest assessment of their review cycle says.

The monitoring worker folds the topics as records arrive, so an assessment can be made before
the evidence that answers a decision has arrived (an ELIMINATE assessed before the incomes that
meet the conditions): it carries a policy_exception the next assessment no longer carries. The
demo at scale 0.1 showed six such rows that no one-pass fold finds. Here the real projector
applies assessments in every order and batching into PostgreSQL: an exception the newest
assessment of its cycle drops is withdrawn, one of an earlier cycle stays (history), and rows
from records without a cycle (RiskAssessed v1/v2) are never swept."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import namedtuple

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from services.contract.codec import Codec
from services.readmodel.metrics import ProjectorMetrics
from services.readmodel.projector import Projector, ProjectorConfig
from tests import records
from tests.integration.readmodel.test_projector import (  # noqa: F401 (fresh_database: a fixture)
    NOW,
    fresh_database,
)

pytestmark = pytest.mark.integration
Record = namedtuple("Record", "topic partition offset value timestamp")
DAY = dt.timedelta(days=1)


def assessment(household: str, day: int, cycle: str | None, *exceptions: str) -> records.Record:
    """Monitoring's assessment `day` days after NOW in `cycle`, carrying a policy_exception
    for each decision in `exceptions`."""
    reasons = [{"code": "income_below_line", "message": "m", "event_ids": ["i1"]}]
    reasons += [
        {"code": "policy_exception", "message": f"{d} although monitored too short",
         "event_ids": [d]}
        for d in exceptions
    ]  # fmt: skip
    label = f"{household}/{day}/{cycle}"
    return records.risk(household, NOW + day * DAY, category=None, workflow="ELIMINATED",
                        reasons=reasons, cycle=cycle, label=label)  # fmt: skip


def splits(items: list) -> list[list[list]]:
    """Every way to cut `items` into consecutive batches."""
    cuts = range(1, len(items))
    return [
        [items[a:b] for a, b in itertools.pairwise((0, *chosen, len(items)))]
        for n in range(len(items))
        for chosen in itertools.combinations(cuts, n)
    ]


async def test_exceptions_follow_the_newest_assessment_of_their_cycle_in_any_order(
    fresh_database: str,  # noqa: F811 (the imported fixture)
):
    codec = Codec.default()
    projector = Projector(
        ProjectorConfig(bootstrap="unused:1", database_url=fresh_database),
        codec,
        ProjectorMetrics(CollectorRegistry()),
    )
    scenarios = {
        # made before the evidence, answered by the next assessment of the cycle: withdrawn
        "answered": ([(0, "c1", "d1"), (1, "c1"), (2, "c1")], set()),
        # the same exception repeated by the cycle's later assessments: one row
        "repeated": ([(0, "c1", "d1"), (1, "c1", "d1"), (2, "c1", "d1")], {"d1"}),
        # a new cycle opened by a later decision: the earlier cycle's exception is history
        "history": ([(0, "c1", "d1"), (3, "c2"), (4, "c2", "d9")], {"d1", "d9"}),
        # withdrawn in its cycle, then a new cycle: still withdrawn
        "withdrawn then new cycle": ([(0, "c1", "d1"), (1, "c1"), (3, "c2")], set()),
        # records from before RiskAssessed v3 name no cycle: kept as they were
        "no cycle": ([(0, None, "d1"), (1, None)], {"d1"}),
    }
    expected: dict[str, set[str]] = {}
    batches: list[list[records.Record]] = []
    n = 0
    for assessments, standing in scenarios.values():
        for order in itertools.permutations(assessments):
            for split in splits(list(order)):
                n += 1
                household = f"sweep-{n}"
                expected[household] = {f"{household}/{d}/policy_exception" for d in standing}
                for batch in split:
                    batches.append([assessment(household, *a) for a in batch])
    offset = 0
    # one household's batches interleave with the others': apply them in rounds
    conn = await asyncpg.connect(fresh_database)
    try:
        for batch in batches:
            frames = []
            for event in batch:
                frames.append(Record("household.risk", 0, offset, codec.encode(*event), 0))
                offset += 1
            await projector.apply(conn, frames)
        rows = await conn.fetch("SELECT exception_id, household_id FROM procedure_exceptions")
    finally:
        await conn.close()
    got: dict[str, set[str]] = {household: set() for household in expected}
    for row in rows:
        got[row["household_id"]].add(row["exception_id"])
    wrong = {h: (got[h], want) for h, want in expected.items() if got[h] != want}
    assert not wrong, f"{len(wrong)} of {n} households: {sorted(wrong.items())[:5]}"
    assert n > 50  # every order and batching of each scenario was tried
