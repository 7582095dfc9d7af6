"""Exceptions in the read model are what the household's newest assessment says.

The monitoring worker folds the topics as records arrive, so an assessment can be made before
the evidence that answers a decision has arrived (an ELIMINATE assessed before the incomes that
meet the conditions): it carries a policy_exception the next assessment no longer carries. The
demo at scale 0.1 showed six such rows that no one-pass fold finds. RiskAssessed v3 lists every
exception standing in the household's history (`exceptions`, earlier review cycles' too). Here
the real projector applies assessments in every order and batching into PostgreSQL: an
exception the newest assessment no longer lists is withdrawn, one an earlier cycle took stays
listed and stays, and the rows of a household whose newest assessment predates v3 are never
swept."""

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


def assessment(
    household: str, day: int, carried: tuple[str, ...], standing: tuple[str, ...] | None
) -> records.Record:
    """Monitoring's assessment `day` days after NOW carrying a policy_exception reason for each
    decision of `carried` (this cycle's, with a message) and listing `standing` (None: a record
    from before RiskAssessed v3)."""
    reasons = [{"code": "income_below_line", "message": "m", "event_ids": ["i1"]}]
    reasons += [
        {"code": "policy_exception", "message": f"{d} although monitored too short",
         "event_ids": [d]}
        for d in carried
    ]  # fmt: skip
    listed = None if standing is None else [f"{d}/policy_exception" for d in standing]
    label = f"{household}/{day}/{carried}/{standing}"
    return records.risk(household, NOW + day * DAY, category=None, workflow="ELIMINATED",
                        reasons=reasons, exceptions=listed, label=label)  # fmt: skip


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
        # made before the evidence, answered by the next assessments: withdrawn
        "answered": ([(0, ("d1",), ("d1",)), (1, (), ()), (2, (), ())], set()),
        # the same exception repeated by later assessments: one row
        "repeated": ([(0, ("d1",), ("d1",)), (1, ("d1",), ("d1",)), (2, ("d1",), ("d1",))],
                     {"d1"}),
        # a new cycle: the earlier cycle's exception is no longer among the reasons, but listed
        "history": ([(0, ("d1",), ("d1",)), (3, (), ("d1",)), (4, ("d9",), ("d1", "d9"))],
                    {"d1", "d9"}),
        # answered by evidence that arrived after a new cycle opened: withdrawn all the same
        "answered late": ([(0, ("d1",), ("d1",)), (3, (), ("d1",)), (4, (), ())], set()),
        # records from before RiskAssessed v3 list nothing: their rows are kept
        "before v3": ([(0, ("d1",), None), (1, (), None)], {"d1"}),
    }  # fmt: skip
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
