"""The entry and exit procedure end to end on the read side: assessments carrying procedures
and exceptions on the real broker (out of order, re-sent), the real projector into PostgreSQL,
and the real operator API (`shouwang support-api`): households in notice with its end, awaiting
township review or county approval, steps overdue, exceptions, a narrowed token's scope, bad
queries, and the same figures on its /metrics and in the demo's report."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import uuid

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.platform.auth.tokens import PostgresTokenStore, hash_secret, new_secret, new_token
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.ports import free_ports
from services.readmodel import procedure_queries
from services.tools.demo.read_model import read_facts
from services.tools.demo.report import RunStats, build_report, render_text
from tests.integration.readmodel.test_campaign import start_api
from tests.integration.readmodel.test_projector import (  # noqa: F401 (fresh_database: a fixture)
    fresh_database,
    start_projector,
    wait_for,
)
from tests.records import registry, review, risk

pytestmark = pytest.mark.integration
D0 = dt.datetime(2020, 6, 1, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
RUN = RunStats(seed=1, scale=0.01, campaign_start=D0.date(), campaign_end=D0.date(),
               events_written=0, ingest_seconds=0, settle_seconds=0, wall_seconds=0,
               records_by_topic={}, input_topics=())  # fmt: skip


def today() -> dt.date:
    """The API's today (its default wall clock reckons dates in UTC)."""
    return dt.datetime.now(dt.UTC).date()


def procedure(awaiting: str, direction: str = "ENTRY", **fields) -> dict:
    return {"direction": direction, "awaiting": awaiting, "since": D0, "due": None,
            "notice_start": None, "notice_ends": None, "objections": 0, "steps": [],
            **fields}  # fmt: skip


def exception(code: str, decision: str, message: str) -> dict:
    return {"code": code, "message": message, "event_ids": [decision]}


def events(p: str) -> list[tuple[str, tuple]]:
    a, b = f"{p}-甲镇", f"{p}-乙镇"
    h1, h2, h3, h4, h5 = (f"{p}-h{i}" for i in range(1, 6))
    notice_ends = today() + 3 * DAY
    deliberation = review(h1, D0, "VILLAGE_DELIBERATION", outcome="PASSED", body="VILLAGE",
                          approving_level="VILLAGE", reason="村民代表会议通过")  # fmt: skip
    notice = review(h1, D0 + DAY, "NOTICE", body="VILLAGE", approving_level="VILLAGE",
                    notice_start=today() - 2 * DAY, notice_days=5)  # fmt: skip
    running = procedure(
        "NOTICE_RUNNING",
        notice_start=today() - 2 * DAY,
        notice_ends=notice_ends,
        due=notice_ends + 10 * DAY,
        objections=1,
        steps=[str(deliberation[1]["event_id"]), str(notice[1]["event_id"])],
    )
    verifying = {"category": None, "workflow": "VERIFYING"}
    late = risk(
        h4,
        D0 + DAY,
        category="MARGINAL",
        workflow="MONITORED",
        label="late",
        reasons=[exception("procedure_exception", f"{p}-d4", "approved without notice")],
    )
    return [
        ("household.registry", registry(h, D0 - 30 * DAY, township=t))
        for h, t in ((h1, a), (h2, a), (h3, b), (h4, b), (h5, a))
    ] + [
        # h1's steps: the village deliberation (sent twice) and the notice
        ("household.reviews", deliberation),
        ("household.reviews", deliberation),
        ("household.reviews", notice),
        # h1: in notice; its newer assessment is read before the older one, and sent twice
        ("household.risk", risk(h1, D0 + 2 * DAY, procedure=running, **verifying, label="new")),
        ("household.risk", risk(h1, D0 + 2 * DAY, procedure=running, **verifying, label="new")),
        ("household.risk", risk(h1, D0, procedure=procedure("VILLAGE_DELIBERATION"),
                                **verifying, label="old")),
        # h2: awaiting the township's review since 2020, past its last day
        ("household.risk", risk(h2, D0, procedure=procedure("TOWNSHIP_REVIEW",
                                                            due=(D0 + 5 * DAY).date()),
                                overdue=["procedure_step_overdue"], **verifying)),
        # h3: its exit awaits the county's approval, no limit set
        ("household.risk", risk(h3, D0, workflow="ELIMINATION_PROPOSED",
                                procedure=procedure("COUNTY_APPROVAL", direction="EXIT"))),
        # h4: included by exception (notice skipped); the later assessment repeating it is read
        # first, then the one that first recorded it; the procedure is over
        ("household.risk", late),
        ("household.risk", risk(h4, D0, category="MARGINAL", workflow="MONITORED", label="first",
                                reasons=[exception("procedure_exception", f"{p}-d4",
                                                   "INCLUDE by county on 2020-06-01 although "
                                                   "the public notice was skipped")])),
        # h5: eliminated although the policy's conditions did not hold
        ("household.risk", risk(h5, D0, category=None, workflow="ELIMINATED",
                                reasons=[exception("policy_exception", f"{p}-d5",
                                                   "ELIMINATE although monitored too short")])),
    ]  # fmt: skip


async def test_procedures_and_exceptions_from_the_log_to_the_api_and_metrics(
    kafka_bootstrap: str,
    fresh_database: str,  # noqa: F811 (the imported fixture)
):
    await ensure_topics(kafka_bootstrap, TopicLayout())
    p = f"proc-{uuid.uuid4().hex[:8]}"
    a, b = f"{p}-甲镇", f"{p}-乙镇"
    codec = Codec.default()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for topic, event in events(p):
            await producer.send_and_wait(
                topic, codec.encode(*event), key=event[1]["household_id"].encode()
            )
    finally:
        await producer.stop()

    conn = await asyncpg.connect(fresh_database)
    secrets = {"county": new_secret(), "town": new_secret()}
    store = PostgresTokenStore(conn)
    await store.issue(new_token("operator", "op-proc"), hash_secret(secrets["county"]))
    await store.issue(new_token("operator", "op-town", [a]), hash_secret(secrets["town"]))
    (port,) = free_ports(1)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "DATABASE_URL": fresh_database, "SHOUWANG_SUPPORT_API_PORT": str(port)}  # fmt: skip
    projector = start_projector(kafka_bootstrap, fresh_database, f"test-procedures-{p}")
    api = start_api(env)
    base = f"http://127.0.0.1:{port}"
    try:

        async def projected() -> bool:
            # every assessment applied: 7 distinct events (h1's re-sent one counts once more)
            applied = await conn.fetchval(
                "SELECT coalesce(sum(events_projected), 0) FROM households "
                "WHERE household_id LIKE $1",
                p + "%",
            )
            reviews = await conn.fetchval(
                "SELECT count(*) FROM review_steps WHERE household_id LIKE $1", p + "%"
            )
            return applied == 5 + 8 and reviews == 2

        await wait_for(projected, 120, "the procedures in the read model", projector)

        async with aiohttp.ClientSession() as http:

            async def get(path: str, who: str = "county", **params: str):
                headers = {"Authorization": f"Bearer {secrets[who]}"}
                try:
                    async with http.get(base + path, params=params, headers=headers) as response:
                        return response.status, await response.json()
                except aiohttp.ClientConnectionError:
                    return None  # not listening yet

            await wait_for(lambda: get("/v1/procedure-households"), 120, "the operator API", api)

            def ids(body: dict) -> list[str]:
                return [item["household_id"] for item in body["items"]]

            status, in_a = await get("/v1/procedure-households", township=a)
            assert status == 200, in_a
            assert ids(in_a) == [f"{p}-h1", f"{p}-h2"]  # h5 eliminated: none under way
            h1, h2 = in_a["items"]
            assert h1["awaiting"] == "notice_running" and h1["direction"] == "entry"
            assert h1["notice_ends"] == (today() + 3 * DAY).isoformat()
            assert h1["notice_days_left"] == 3 and h1["objections"] == 1
            assert len(h1["steps"]) == 2 and h1["overdue"] is False
            assert h1["assessed_at"].startswith((D0 + 2 * DAY).date().isoformat())  # the newer
            assert h2["awaiting"] == "township_review" and h2["overdue"] is True
            assert h2["due"] == "2020-06-06" and h2["days_left"] < 0

            _, notice = await get("/v1/procedure-households", township=a,
                                  awaiting="notice_running")  # fmt: skip
            assert ids(notice) == [f"{p}-h1"]
            _, county = await get("/v1/procedure-households", township=b,
                                  awaiting="county_approval", direction="exit")  # fmt: skip
            assert ids(county) == [f"{p}-h3"] and county["items"][0]["due"] is None
            _, review = await get("/v1/procedure-households", township=b,
                                  awaiting="township_review")  # fmt: skip
            assert ids(review) == []  # h4's procedure ended with its inclusion
            _, late = await get("/v1/procedure-households", township=a, overdue="true")
            assert ids(late) == [f"{p}-h2"]
            _, first = await get("/v1/procedure-households", township=a, limit="1")
            assert ids(first) == [f"{p}-h1"] and first["next_after"] == f"{p}-h1"
            _, rest = await get("/v1/procedure-households", township=a, limit="1",
                                after=first["next_after"])  # fmt: skip
            assert ids(rest) == [f"{p}-h2"]

            _, counts = await get("/v1/procedure-households/counts", township=a)
            assert counts["as_of"] == today().isoformat()
            assert [(c["direction"], c["awaiting"], c["households"], c["overdue"])
                    for c in counts["items"]] == [
                ("entry", "notice_running", 1, 0), ("entry", "township_review", 1, 1),
            ]  # fmt: skip

            status, found = await get("/v1/exceptions", township=b)
            assert status == 200
            [h4] = found["items"]
            assert h4["exception_id"] == f"{p}-h4/{p}-d4/procedure_exception"
            assert h4["household_id"] == f"{p}-h4" and h4["decision_event_id"] == f"{p}-d4"
            assert h4["message"].startswith("INCLUDE by county")  # the first assessment's
            assert h4["recorded_at"].startswith(D0.date().isoformat())
            _, policy = await get("/v1/exceptions", township=a, code="policy_exception")
            assert [(e["household_id"], e["message"]) for e in policy["items"]] == [
                (f"{p}-h5", "ELIMINATE although monitored too short")
            ]
            _, none = await get("/v1/exceptions", township=a, code="procedure_exception")
            assert none["items"] == []

            # an operator token narrowed to township a reads a's households only
            _, mine = await get("/v1/procedure-households", "town")
            assert {item["township"] for item in mine["items"]} == {a}
            assert ids(mine) == [f"{p}-h1", f"{p}-h2"]
            _, mine = await get("/v1/exceptions", "town")
            assert [e["household_id"] for e in mine["items"]] == [f"{p}-h5"]
            for path in ("/v1/procedure-households", "/v1/procedure-households/counts",
                         "/v1/exceptions", "/v1/monitored-households",
                         "/v1/overdue-households", "/v1/measures", "/v1/problems",
                         "/v1/rectification", "/v1/campaign",
                         "/v1/waiting-households"):  # fmt: skip
                status, refused = await get(path, "town", township=b)
                assert status == 403 and b in refused["detail"], (path, refused)
            # every route cuts its answer to the token's townships, asked for none
            # (h3 and h4 of town b are monitored, none of town a is; h2 of a is overdue)
            _, everywhere = await get("/v1/monitored-households", township=b)
            assert ids(everywhere) == [f"{p}-h3", f"{p}-h4"]
            _, monitored = await get("/v1/monitored-households", "town")
            assert not {f"{p}-h3", f"{p}-h4"} & set(ids(monitored))
            _, counted = await get("/v1/monitored-households/counts", "town")
            assert b not in {item["township"] for item in counted["items"]}
            _, late = await get("/v1/overdue-households", "town")
            assert f"{p}-h2" in ids(late) and {i["township"] for i in late["items"]} == {a}
            _, fixed = await get("/v1/rectification", "town")
            assert {row["township"] for row in fixed["townships"]} <= {a}
            _, totals = await get("/v1/campaign", "town")
            assert {row["township"] for row in totals["items"] if not row["total"]} <= {a}

            for path, name, value in [
                ("/v1/procedure-households", "awaiting", "NOTICE"),
                ("/v1/procedure-households", "direction", "sideways"),
                ("/v1/procedure-households", "overdue", "yes"),
                ("/v1/procedure-households", "limit", "0"),
                ("/v1/exceptions", "code", "invalid_transition"),
                ("/v1/exceptions", "township", "a\x00b"),
            ]:
                status, bad = await get(path, **{name: value})
                assert status == 400, (path, name, bad)
                assert [e["field"] for e in bad["errors"]] == [name], bad

            async with http.get(f"{base}/metrics") as response:
                text = await response.text()
        series = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("township") in (a, b):
                    labels = tuple(v for k, v in sorted(sample.labels.items()) if k != "township")
                    series[(sample.name, sample.labels["township"], labels)] = sample.value
        assert series == {
            ("shouwang_readmodel_procedure_households", a, ("notice_running", "entry")): 1.0,
            ("shouwang_readmodel_procedure_households", a, ("township_review", "entry")): 1.0,
            ("shouwang_readmodel_procedure_households", b, ("county_approval", "exit")): 1.0,
            ("shouwang_readmodel_procedure_overdue", a, ("notice_running", "entry")): 0.0,
            ("shouwang_readmodel_procedure_overdue", a, ("township_review", "entry")): 1.0,
            ("shouwang_readmodel_procedure_overdue", b, ("county_approval", "exit")): 0.0,
            ("shouwang_readmodel_exceptions_total", a, ("policy_exception",)): 1.0,
            ("shouwang_readmodel_exceptions_total", b, ("procedure_exception",)): 1.0,
        }

        # The procedure's steps, named (the grounds stay in the log), as the console shows them
        [steps] = [i["steps"] for i in in_a["items"] if i["household_id"] == f"{p}-h1"]
        named = await procedure_queries.review_steps(conn, [*steps, "not-yet-projected"])
        assert [(s["decision"], s["outcome"], s["body"]) for s in named] == [
            ("VILLAGE_DELIBERATION", "PASSED", "VILLAGE"), ("NOTICE", None, "VILLAGE"),
            (None, None, None),
        ]  # fmt: skip
        assert named[1]["notice_days"] == 5 and named[2]["event_id"] == "not-yet-projected"

        # The demo's report reads the same read model (other tests' households are there too:
        # this test's townships are its own, and the county holds at least them).
        report = build_report(await read_facts(fresh_database), RUN)
        assert report["procedure"]["by_township"][a] == {"notice_running": 1,
                                                         "township_review": 1}  # fmt: skip
        assert report["procedure"]["by_township"][b] == {"county_approval": 1}
        assert report["procedure"]["in_notice"] >= 1 and report["procedure"]["overdue"] >= 1
        # A simulated run's report reckons overdue steps on the run's last day: a month on,
        # h1's notice (due 13 days from today) is overdue too
        later = build_report(await read_facts(fresh_database, today=today() + 30 * DAY), RUN)
        running = [r["procedure"]["overdue_by_step"].get("notice_running", 0)
                   for r in (report, later)]  # fmt: skip
        assert running[1] > running[0], running
        assert later["procedure"]["by_township"] == report["procedure"]["by_township"]
        assert report["exceptions"]["by_code"]["procedure_exception"] >= 1
        assert report["exceptions"]["by_code"]["policy_exception"] >= 1
        text = render_text(report)
        assert "entry and exit procedure: in public notice" in text
        assert "exceptions (decisions taken by exception): " in text
    finally:
        for process in (projector, api):
            process.terminate()
        for process in (projector, api):
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()
        await conn.close()
