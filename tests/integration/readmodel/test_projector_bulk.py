"""The projector's bulk path (COPY + INSERT ... SELECT per round) writes exactly the rows that
one statement per row, in record order, writes: same batches, two databases, every table
compared. The batches mix the county's records with rows crafted to collide: several rows of
one key in a batch, out-of-order times, ties, re-sent events and a redelivered batch."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter, namedtuple
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from bench.data import load
from services.contract.codec import Codec
from services.platform.postgres.migrate import apply_migrations
from services.readmodel.metrics import ProjectorMetrics
from services.readmodel.projection import TOPICS, rows_for
from services.readmodel.projector import Projector, ProjectorConfig
from tests import records
from tests.integration.readmodel.test_projector import (
    NOW,
    registry_record,
    risk_record,
    step_record,
)

pytestmark = pytest.mark.integration
Record = namedtuple("Record", "topic partition offset value timestamp")
TABLES = {
    "households": "household_id",
    "assessments": "assessment_id",
    "measure_steps": "event_id",
    "measures": "measure_id",
    "problems": "problem_id",
    "secured_checks": "household_id, kind, visit_id",
    "cadres": "cadre_id",
    "household_procedures": "household_id",
    "procedure_exceptions": "exception_id",
    "review_steps": "event_id",
    "projection_positions": "projection, topic, partition",
    "projection_rejects": "projection, topic, partition, kafka_offset",
}


@pytest.fixture
async def two_databases(database_url: str) -> AsyncIterator[tuple[str, str]]:
    admin = await asyncpg.connect(database_url)
    names = [f"bulk_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    urls = []
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
            url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
            await apply_migrations(url)
            urls.append(url)
        yield urls[0], urls[1]
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def procedure_risk(household_id: str, at: dt.datetime, awaiting: str | None) -> records.Record:
    """An assessment with the household's procedure awaiting `awaiting` (None: none under way)
    and an exception whose message says which assessment carried it."""
    procedure = None if awaiting is None else {
        "direction": "ENTRY", "awaiting": awaiting, "since": at, "due": at.date(),
        "notice_start": None, "notice_ends": None, "objections": 0, "steps": [awaiting],
    }  # fmt: skip
    reasons = [{"code": "procedure_exception", "message": f"as of {at.isoformat()}",
                "event_ids": [f"{household_id}-decision"]}]  # fmt: skip
    return records.risk(household_id, at, workflow="VERIFYING", procedure=procedure,
                        reasons=reasons,
                        exceptions=[f"{household_id}-decision/procedure_exception"],
                        label=f"procedure/{at.isoformat()}")  # fmt: skip


def colliding_records(codec: Codec) -> list[tuple[str, bytes]]:
    """(topic, frame) pairs that hit the same keys many times within one batch."""
    day = dt.timedelta(days=1)
    out = []
    for h in range(3):
        hid, mid = f"bulk-h{h}", f"bulk-h{h}-m"
        registry = [(NOW, 2), (NOW - 30 * day, 0), (NOW + day, 4), (NOW + day, 5), (NOW, 1)]
        for at, labour in registry:  # out of order, and a tie at NOW + 1 day: the later wins
            out.append(("household.registry", codec.encode(*registry_record(hid, at, labour))))
        resent = risk_record(hid, NOW + 2 * day)
        for at in (NOW + day, NOW - day, NOW + 3 * day):
            out.append(("household.risk", codec.encode(*risk_record(hid, at))))
        # the procedure's word, out of order: the newest (NOW + 4 days) awaits township review;
        # the exception is dated by the earliest (NOW - 2 days) whatever order they come in
        for at, awaiting in ((NOW + day, "NOTICE"), (NOW + 4 * day, "TOWNSHIP_REVIEW"),
                             (NOW - 2 * day, None), (NOW, "VILLAGE_DELIBERATION")):  # fmt: skip
            out.append(("household.risk", codec.encode(*procedure_risk(hid, at, awaiting))))
        for _ in range(2):  # the same assessment event twice (a producer retry)
            out.append(("household.risk", codec.encode(*resent)))
        for step, at in [
            ("DELIVERED", NOW + 2 * day),
            ("RECOMMENDED", NOW),
            ("CANCELLED", NOW + 3 * day),
            ("ACCEPTED", NOW + day),
            ("COMPLETED", NOW + 4 * day),  # after a cancellation: must not win
        ]:
            out.append(("household.measures", codec.encode(*step_record(hid, mid, step, at))))
    return out


def batches(codec: Codec) -> list[list[Record]]:
    county = load(0.02, codec)
    frames = [(r.topic, r.value) for r in county.records({t.name for t in TOPICS})]
    crafted = colliding_records(codec)
    # each household's crafted block lands inside a batch of county records, so keys recur
    # within a batch and (through the county's households) across batches
    block = len(crafted) // 3
    cuts = [0, *(len(frames) * k // 4 for k in (1, 2, 3)), len(frames)]
    mixed = []
    for i in range(4):
        mixed += frames[cuts[i] : cuts[i + 1]] + crafted[i * block : (i + 1) * block]
    offsets: Counter[str] = Counter()
    records = []
    for topic, frame in mixed:
        records.append(Record(topic, 0, offsets[topic], frame, int(NOW.timestamp() * 1000)))
        offsets[topic] += 1
    size = 200
    out = [records[i : i + size] for i in range(0, len(records), size)]
    out.insert(2, out[1])  # a whole batch redelivered: every record already applied
    out[3] = out[3][:10] + out[3]  # records re-sent at their offsets within a batch
    return out


async def dump(url: str) -> dict[str, list[dict]]:
    conn = await asyncpg.connect(url)
    try:
        out = {}
        for table, key in TABLES.items():
            rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")
            out[table] = [
                {k: v for k, v in r.items() if k not in ("updated_at", "rejected_at")} for r in rows
            ]
        return out
    finally:
        await conn.close()


async def test_bulk_apply_writes_the_rows_one_statement_per_row_writes(two_databases):
    bulk_url, reference_url = two_databases
    codec = Codec.default()
    work = batches(codec)
    # the batches really hold several rows of one key (else rounds are never exercised)
    most = max(
        max(Counter(
            (s, args[0])
            for r in batch
            for s, args in rows_for(r.topic, codec.decode(r.value).event_type,
                                    codec.decode(r.value).record)
        ).values())
        for batch in work
    )  # fmt: skip
    assert most >= 5

    registry = CollectorRegistry()
    projector = Projector(
        ProjectorConfig(bootstrap="unused:1", database_url=bulk_url),
        codec,
        ProjectorMetrics(registry),
    )
    bulk = await asyncpg.connect(bulk_url)
    reference = await asyncpg.connect(reference_url)
    try:
        applied = [await projector.apply(bulk, batch) for batch in work]
        redelivered = registry.get_sample_value(
            "shouwang_projector_skipped_total", {"reason": "redelivered"}
        )
        # the reference: one statement per record, in order (the path refusals take)
        expected = []
        for batch in work:
            counts = await projector._apply(reference, batch, isolate=True)
            expected.append(sum(counts.values()))
    finally:
        await bulk.close()
        await reference.close()
    assert applied == expected
    assert applied[2] == 0  # the redelivered batch
    assert redelivered == len(work[2]) + 10  # and the ten re-sent within the next
    got, want = await dump(bulk_url), await dump(reference_url)
    assert set(got) == set(want)
    for table in TABLES:
        assert got[table] == want[table], table
    households = {r["household_id"]: r for r in got["households"]}
    # sanity on the crafted keys: newest registry row (the later of a tie), newest assessment
    assert households["bulk-h0"]["labourers"] == 5
    assert households["bulk-h0"]["assessed_at"] == NOW + dt.timedelta(days=4)
    assert households["bulk-h0"]["events_projected"] == 5 + 5 + 4
    procedures = {r["household_id"]: r for r in got["household_procedures"]}
    assert procedures["bulk-h0"]["awaiting"] == "township_review"
    assert procedures["bulk-h0"]["assessed_at"] == NOW + dt.timedelta(days=4)
    exceptions = {r["exception_id"]: r for r in got["procedure_exceptions"]}
    first = exceptions["bulk-h0/bulk-h0-decision/procedure_exception"]
    assert first["first_seen_at"] == NOW - 2 * dt.timedelta(days=1)
    assert first["message"] == f"as of {(NOW - 2 * dt.timedelta(days=1)).isoformat()}"
    assert got["review_steps"]  # the county's review decisions
    statuses = {r["measure_id"]: r["status"] for r in got["measures"]}
    assert statuses["bulk-h0-m"] == "cancelled"
    assert len(got["households"]) > 50 and got["measure_steps"] and got["problems"]
    assert got["secured_checks"] and any(p["origin"] == "visit" for p in got["problems"])


async def test_the_staging_tables_outlive_refused_batches_before_and_after_a_committed_one(
    two_databases,
):
    """A refused batch rolls back its bulk attempt (its CREATE of the staging tables too, when
    it was the first) and is applied record by record; the batches after it still find their
    staging tables, whether none had committed before (they are created again) or one had
    (they are kept for the session and no DDL is sent)."""
    url, _ = two_databases
    codec = Codec.default()
    millis = int(NOW.timestamp() * 1000)

    def registry(offset: int, household: str, labour: int) -> Record:
        frame = codec.encode(*registry_record(household, NOW, labour=labour))
        return Record("household.registry", 0, offset, frame, millis)

    projector = Projector(
        ProjectorConfig(bootstrap="unused:1", database_url=url),
        codec,
        ProjectorMetrics(CollectorRegistry()),
    )
    conn = await asyncpg.connect(url)
    try:
        # refused first: nothing committed the tables yet; then good, refused again, good
        assert (
            await projector.apply(conn, [registry(0, "st-bad0", -3), registry(1, "st-a", 1)]) == 1
        )
        assert await projector.apply(conn, [registry(2, "st-b", 2)]) == 1
        assert (
            await projector.apply(conn, [registry(3, "st-bad1", -1), registry(4, "st-c", 1)]) == 1
        )
        assert await projector.apply(conn, [registry(5, "st-d", 3), registry(6, "st-d", 4)]) == 2
        households = await conn.fetch("SELECT household_id, labourers FROM households")
        rejected = await conn.fetch("SELECT kafka_offset FROM projection_rejects")
    finally:
        await conn.close()
    assert sorted((r["household_id"], r["labourers"]) for r in households) == [
        ("st-a", 1),
        ("st-b", 2),
        ("st-c", 1),
        ("st-d", 4),
    ]
    assert sorted(r["kafka_offset"] for r in rejected) == [0, 3]
