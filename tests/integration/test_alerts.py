"""The alert rules and dashboards deploy/ ships, run in a real Prometheus against the real
services: each household alert reaches `firing`, and every dashboard query has data.

The services run as deployed (`shouwang visits|monitoring|support|projector`, their defaults,
the wall clock) on a broker and a database of this test's own. The scenario is dated 2020, so
on today's wall clock a flagged household is undecided past the deadline, a monitored one
unvisited past the interval, and a problem found on a visit (sent through the visits API with
a cadre token, as a phone would) unrectified past its deadline; a record no one can decode is
dead-lettered. Prometheus (Debian's `prometheus`; .ci/run installs it) loads a copy of
deploy/prometheus/prometheus.yml with its rule files, scraping every second, each rule's `for:`
shortened to a few seconds (observability.prometheus_config says why) and each job pointed at
the local process. The series it scraped are compared with the fixture the promtool tests
take theirs from (`SHOUWANG_RECORD_SCRAPE=1` rewrites it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from services.contract.codec import Codec
from services.contract.topics import TopicLayout, topic_for
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.ports import LOOPBACK, free_ports
from tests.integration import observability as obs
from tests.records import Record, approved, at, registry, risk
from tests.scrape_fixture import SCRAPE_FIXTURE, promtool_input_series, signature, unknown_series
from tests.scrape_fixture import recorded as fixture
from tests.seed_households import marginal, zhou_uremia
from tests.visits_samples import sample

pytestmark = pytest.mark.integration
CODEC = Codec.default()
TOWNSHIP = "鹤游镇"  # the records' default township
HOUSEHOLD_ALERTS = ("HouseholdDecisionOverdue", "MonitoredHouseholdNotVisited",
                    "HouseholdProblemOverdue")  # fmt: skip
PROCEDURE_ALERTS = ("ProcedureStepOverdue", "ExceptionRecorded")
# Jobs of deploy/prometheus/prometheus.yml the test does not run, and why.
NOT_RUN = {"kafka-exporter": "a container image (danielqsj/kafka-exporter), not a process here"}
# Dashboard queries that may return nothing after this workload, and why.
EXPECTED_EMPTY = {
    "sum by (consumergroup) (kafka_consumergroup_lag)": NOT_RUN["kafka-exporter"],
}


@pytest.fixture
async def private_database(database_url: str) -> AsyncIterator[str]:
    """A new database on the session's server: the projector keeps its positions there, and
    the session database's would be another broker's offsets."""
    name = f"alerts_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def scenario(prefix: str) -> tuple[list[Record], str]:
    """Records for an undecided flagged household, a monitored one last visited in 2020 and a
    registered one (its problem comes through the API); the last one's id."""
    flagged, monitored, problem = (f"{prefix}-{n}" for n in ("flagged", "monitored", "problem"))
    records = [
        *marginal(flagged),
        *zhou_uremia(monitored),
        *approved(monitored, at("2020-05-16", 20), "INCLUDE", "UNSTABLE_LIFTED"),
        registry(problem, at("2019-12-31"), baseline=(2019, 9000)),
        procedure_assessment(f"{prefix}-procedure"),
    ]
    return records, problem


def procedure_assessment(household_id: str) -> Record:
    """The monitoring fold's word on a household whose entry procedure awaits the township's
    review since 2020 (long overdue) after an exception: written straight to household.risk,
    as the worker would once it computes procedures (it writes none yet). No registry record,
    so the worker never assesses it again (and its township is unknown: label "")."""
    decided = at("2020-06-01")
    return risk(household_id, decided, category=None, workflow="VERIFYING",
                overdue=["procedure_step_overdue"],
                reasons=[{"code": "procedure_exception", "event_ids": [f"{household_id}-d1"],
                          "message": "NOTICE skipped with the county's approval"}],
                procedure={"direction": "ENTRY", "awaiting": "TOWNSHIP_REVIEW",
                           "since": decided, "due": decided.date(), "notice_start": None,
                           "notice_ends": None, "objections": 0,
                           "steps": [f"{household_id}-d1"]})  # fmt: skip


async def produce(bootstrap: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for event_type, record in records:
            topic = ("household.risk" if event_type == "RiskAssessed"  # the worker's output
                     else topic_for(f"shouwang.events.{event_type}").name)  # fmt: skip
            await producer.send(topic, key=record["household_id"].encode(),
                                value=CODEC.encode(event_type, record))  # fmt: skip
        # A record no one can decode: monitoring dead-letters it, the projector skips it.
        await producer.send("household.visits", key=b"garbage", value=b"\x00from an old app")
        await producer.flush()
    finally:
        await producer.stop()


async def test_household_alerts_fire_and_every_panel_has_data(
    local_kafka_factory, private_database: str, tmp_path: Path
) -> None:
    binary = obs.shutil_which("prometheus")
    bootstrap = local_kafka_factory().start()
    await ensure_topics(bootstrap, TopicLayout())
    ports = free_ports(7)
    console_port = ports.pop()
    visits_port, monitoring_port, support_port, projector_port, api_port, prometheus_port = ports
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DATABASE_URL": private_database,
           "SHOUWANG_HOME": str(tmp_path)}  # fmt: skip
    for name in ("SHOUWANG_MONITORING_CLOCK", "SHOUWANG_MONITORING_APP_ID", "SHOUWANG_CATALOGUE"):
        env.pop(name, None)  # the defaults a user gets
    services = {  # job name in deploy/prometheus/prometheus.yml → (command, its own environment)
        "shouwang-visits": (["visits"], {"SHOUWANG_VISITS_HOST": LOOPBACK,
                                         "SHOUWANG_VISITS_PORT": str(visits_port)}, visits_port),
        "shouwang-monitoring": (["monitoring"], {"SHOUWANG_MONITORING_PORT": str(monitoring_port),
                                                 # gauges refreshed each second, not minute
                                                 "SHOUWANG_MONITORING_SWEEP_SECONDS": "1"},
                                monitoring_port),
        "shouwang-support": (["support"], {"SHOUWANG_SUPPORT_METRICS_PORT": str(support_port)},
                             support_port),
        "shouwang-projector": (["projector"],
                               {"SHOUWANG_PROJECTOR_METRICS_PORT": str(projector_port)},
                               projector_port),
        "shouwang-support-api": (["support-api"], {"SHOUWANG_SUPPORT_API_PORT": str(api_port)},
                                 api_port),
        "shouwang-console": (["console"], {"SHOUWANG_CONSOLE_PORT": str(console_port)},
                             console_port),
    }  # fmt: skip
    # Only the jobs deploy/ scrapes are started (prometheus_config fails on one not here).
    services = {job: s for job, s in services.items() if job in obs.deployed_jobs()}
    targets = {job: f"{LOOPBACK}:{port}" for job, (_, _, port) in services.items()}
    targets |= dict.fromkeys(NOT_RUN, "")
    targets["prometheus"] = f"{LOOPBACK}:{prometheus_port}"
    config = obs.prometheus_config(targets, tmp_path)

    prefix = f"alerts-{uuid.uuid4().hex[:6]}"
    records, problem_household = scenario(prefix)
    await produce(bootstrap, records)
    processes = []
    try:
        for job, (command, own, _) in services.items():
            processes.append(obs.start([sys.executable, "-m", "services.cli", *command],
                                       {**env, **own}, tmp_path / f"{job}.log"))  # fmt: skip
        processes.append(
            obs.start([binary, f"--config.file={config}",
                       f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                       f"--web.listen-address={LOOPBACK}:{prometheus_port}"],
                      os.environ, tmp_path / "prometheus.log")
        )  # fmt: skip
        prometheus = f"http://{LOOPBACK}:{prometheus_port}"
        visits = f"http://{LOOPBACK}:{visits_port}"

        # A cadre's phone reports a problem not fixed on the spot (in 2020: long overdue). The
        # API knows the household once the projector has put the registry in the read model.
        secret = issue_cadre_token(env, processes)
        body = sample("visits", household_id=problem_household, cadre_id="cadre-0042",
                      occurred_at="2020-06-01T09:30:00+08:00",
                      problems=[{"kind": "POLICY_CARD", "description": "card missing",
                                 "fixed_on_spot": False}])  # fmt: skip
        post = json.dumps(body).encode()
        auth = {"Authorization": f"Bearer {secret}"}
        obs.until(lambda: obs.status(f"{visits}/v1/visits", "POST", post, auth) == 202, 180,
                  "the visits API to accept the problem visit", processes)  # fmt: skip
        assert obs.status(f"{visits}/v1/visits", "POST", b"{}") == 401  # counted by status

        def firing() -> list[dict]:
            data = obs.api(prometheus, "/api/v1/alerts") or {"alerts": []}
            alerts = [a for a in data["alerts"] if a["labels"]["alertname"] in HOUSEHOLD_ALERTS]
            names = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
            return alerts if names == set(HOUSEHOLD_ALERTS) else []

        alerts = obs.until(firing, 300, f"{HOUSEHOLD_ALERTS} to fire", processes,
                           lambda: json.dumps(obs.api(prometheus, "/api/v1/alerts")))  # fmt: skip
        print("\n/api/v1/alerts (household alerts):")
        print(json.dumps(sorted(alerts, key=lambda a: a["labels"]["alertname"]),
                         ensure_ascii=False, indent=1))  # fmt: skip
        counts = {a["labels"]["alertname"]: float(a["value"]) for a in alerts}

        def procedure_firing() -> list[dict]:
            data = obs.api(prometheus, "/api/v1/alerts") or {"alerts": []}
            alerts = [a for a in data["alerts"] if a["labels"]["alertname"] in PROCEDURE_ALERTS]
            names = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}
            return alerts if names == set(PROCEDURE_ALERTS) else []

        procedure = obs.until(
            procedure_firing,
            180,
            f"{PROCEDURE_ALERTS} to fire",
            processes,
            lambda: json.dumps(obs.api(prometheus, "/api/v1/alerts")),
        )
        labels = {a["labels"]["alertname"]: a["labels"] for a in procedure}
        assert labels["ProcedureStepOverdue"]["awaiting"] == "township_review"
        assert labels["ExceptionRecorded"]["code"] == "procedure_exception"
        assert all(a["labels"]["township"] == TOWNSHIP for a in alerts)
        # One household each; the problem household's visit also flagged it (a medical check
        # not secured, income under the line), so two await a decision.
        assert counts["MonitoredHouseholdNotVisited"] == counts["HouseholdProblemOverdue"] == 1
        assert counts["HouseholdDecisionOverdue"] >= 1

        # Every panel's query answers with a series (rates need two scrapes of a change).
        queries = obs.panel_queries()
        assert queries

        def empty() -> list[tuple[str, str, str]]:
            return [(f, title, q) for f, title, q in queries if q not in EXPECTED_EMPTY
                    and not (obs.api(prometheus, "/api/v1/query", query=grafana(q)) or {})
                    .get("result")]  # fmt: skip

        obs.until(lambda: not empty(), 180, "every dashboard query to have data", processes,
                  lambda: f"empty: {empty()}")  # fmt: skip
        for query in EXPECTED_EMPTY:
            assert query in {q for _, _, q in queries}, f"{query!r} is no longer on a dashboard"

        # Everything sent is in the read model: the oldest unapplied record's age is 0 on
        # every topic the projector was assigned (not the age of the last record applied).
        obs.until(lambda: obs.value(prometheus, "max(shouwang_projector_lag_seconds)") == 0.0,
                  120, "the projector's lag to be 0 once caught up", processes,
                  lambda: str(obs.api(prometheus, "/api/v1/query",
                                      query="shouwang_projector_lag_seconds")))  # fmt: skip
        assert obs.value(prometheus, "count(shouwang_projector_lag_seconds)") >= 1

        jobs = [job for job in targets if targets[job] and job.startswith("shouwang-")]
        version = metadata.version("shouwang")
        for job in jobs:  # the platform collectors and the build, on every service
            build = f'shouwang_build_info{{job="{job}", version="{version}"}}'
            for selector in (f'process_cpu_seconds_total{{job="{job}"}}',
                             f'python_info{{job="{job}"}}', build):  # fmt: skip
                assert obs.value(prometheus, f"count({selector})") == 1, selector
        check_scrape_fixture(obs.scraped_series(prometheus, jobs))
    finally:
        for process in reversed(processes):
            obs.stop(process)


def grafana(query: str) -> str:
    """The query as Grafana sends it with the dashboard's defaults (`$township` = All)."""
    return query.replace("$township", ".*")


def issue_cadre_token(env: dict[str, str], processes: list[subprocess.Popen]) -> str:
    """A cadre token for the scenario's township, issued by the real CLI as an operator would:
    `tokens issue --township` refuses a township the read model does not know yet (exit 2,
    nothing issued), so it is asked again until the projector has applied the registry."""
    argv = [sys.executable, "-m", "services.cli", "tokens", "issue", "--kind", "cadre",
            "--holder", "cadre-0042", "--township", TOWNSHIP]  # fmt: skip

    def issued() -> str | None:
        done = subprocess.run(argv, cwd=obs.ROOT, env=env, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
        if done.returncode == 2 and "knows no township yet" in done.stderr:
            return None
        assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr}"
        found = re.search(r"(sw_\S+)", done.stdout + done.stderr)
        assert found, done.stdout + done.stderr
        return found.group(1)

    return obs.until(issued, 180, "the projector to put the township in the read model",
                     processes)  # fmt: skip


def check_scrape_fixture(live: list[str]) -> None:
    """The fixture the promtool tests take their series from still matches a live scrape:
    each metric name with its label names is still exported (values vary with the workload's
    timing), and every series the promtool tests use is one Prometheus really scraped.

    A series that only a rare path creates (a duplicate after a rebalance) may appear live
    without being in the fixture; that is not a failure, and test_metric_names fails as soon as
    a rule or panel queries a name the fixture lacks."""
    if os.environ.get("SHOUWANG_RECORD_SCRAPE"):
        SCRAPE_FIXTURE.write_text(json.dumps(live, ensure_ascii=False, indent=0) + "\n")
    gone = {signature(s) for s in fixture()} - {signature(s) for s in live}
    assert gone == set(), (
        "the services no longer export these as recorded: rerun with SHOUWANG_RECORD_SCRAPE=1, "
        "then update the promtool tests' input series from deploy/prometheus/tests/scrape.json"
    )
    assert unknown_series(promtool_input_series(), live) == [], (
        "promtool tests use series no live scrape has"
    )
