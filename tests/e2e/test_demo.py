"""`shouwang demo` end to end: a small county through the real stack, services as processes.

The demo runs in a subprocess with its own home (its own Kafka and PostgreSQL), exits by itself
(`--no-keep`), and must leave nothing running. Its report's JSON twin is then checked against the
read model (PostgreSQL restarted on the demo's data directory) and against the campaign the
seed determines (what the topics must hold).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from services.contract.topics import INPUT_TOPICS
from services.platform.localstack.kafka import LocalKafka
from services.platform.localstack.postgres import LocalPostgres
from services.platform.localstack.processes import pid_alive
from services.tools.demo.supervisor import stop_leftovers
from services.tools.simulation.parameters import CampaignCalendar, SimulationParameters
from services.tools.simulation.stream import generate

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SCALE = 0.008
SEED = 7
# Past the campaign into 2021, as the README's demo command runs: monitoring crosses the
# national policy switch of 2021-01-01 and the report shows who was carried over.
UNTIL = dt.date(2021, 6, 30)
DEMO_SECONDS = 840


@pytest.fixture
def demo_home():
    # Under SHOUWANG_TEST_TMPDIR when set, so .ci/run finds (by pid file) any server a crashed
    # demo leaves; o+x because PostgreSQL runs unprivileged when the tests run as root.
    base = os.environ.get("SHOUWANG_TEST_TMPDIR")
    home = Path(tempfile.mkdtemp(prefix="demo-e2e-", dir=base))
    home.chmod(0o755)
    yield home
    # Belt and braces: whatever the demo left behind is stopped here (the test fails first).
    stop_leftovers(home / "demo")
    LocalPostgres(home / "demo" / "stack" / "postgres").stop()
    LocalKafka(home / "demo" / "stack" / "kafka", detach=True).stop()
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(DEMO_SECONDS + 180)
# 2: `--workers 2`, two processes of monitoring, support and the projector sharing each group
@pytest.mark.parametrize("workers", [1, 2])
def test_demo_report_matches_the_read_model_and_the_log(demo_home: Path, workers: int) -> None:
    out = demo_home / "report"
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    started = time.monotonic()
    result = _run_demo(
        ["demo", "--no-keep", "--scale", str(SCALE), "--seed", str(SEED), "--until", str(UNTIL),
         "--home", str(demo_home), "--out", str(out), "--timeout", "600",
         "--workers", str(workers)],
        env,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 0, (
        f"demo failed after {elapsed:.0f} s:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    assert "report: " in result.stdout and str(out / "report.html") in result.stdout

    # Everything it started is stopped: servers, and each service process by its recorded pid.
    run_dir = demo_home / "demo"
    assert not LocalKafka(run_dir / "stack" / "kafka", detach=True).is_running
    postgres = LocalPostgres(run_dir / "stack" / "postgres")
    assert not postgres.is_running
    assert not (run_dir / "services.pids").exists()
    pids = [int(p) for p in _service_pids(result.stdout)]
    # visits, console, and `workers` each of monitoring, support and the projector
    assert len(pids) == 2 + 3 * workers
    worker_logs = {p.stem for p in (run_dir / "logs").glob("*.log")}
    for n in range(2, workers + 1):
        assert {f"monitoring-{n}", f"support-{n}", f"projector-{n}"} <= worker_logs
    assert all(not pid_alive(pid) for pid in pids)

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["services"]["console"]["console"].startswith("http://127.0.0.1:")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") >= 2  # self-contained: no scripts, styles or images fetched
    assert not any(tag in page for tag in ("<script src", "<link", "<img", "@import"))

    # The log holds exactly the campaign the seed determines (the API de-duplicates retries).
    calendar = CampaignCalendar(until=UNTIL)
    events = list(generate(SimulationParameters(seed=SEED, scale=SCALE, calendar=calendar)))
    expected = Counter(e.topic.name for e in events)
    run = report["run"]
    assert run["events_written"] == len(events)
    assert {t.name: run["records_by_topic"].get(t.name, 0) for t in INPUT_TOPICS} == {
        t.name: expected.get(t.name, 0) for t in INPUT_TOPICS
    }
    assert run["records_by_topic"].get("household.risk", 0) > 0  # monitoring produced
    assert run["lag_at_end"]["monitoring"] == 0 and run["lag_at_end"]["projector"] == 0
    assert run["ingest_events_per_second"] > 0 and run["end_to_end_events_per_second"] > 0

    # The report's numbers are the read model's, asked independently.
    postgres.start()
    try:
        db = asyncio.run(_read_model_numbers(postgres.database_url))
    finally:
        postgres.stop()
    hh = report["households"]
    assert hh["total"] == db["households"] > 0
    assert hh["monitored_by_category"] == db["monitored_by_category"]
    assert hh["monitored"] == sum(db["monitored_by_category"].values())
    assert hh["flagged"] == db["flagged"]
    assert hh["monitored"] + hh["flagged"] > 0  # the campaign finds somebody at risk
    assert sum(c["households"] for c in hh["by_township"].values()) == db["households"]
    measures = report["measures"]
    assert measures["delivered_by_type"] == db["delivered_by_type"]
    assert measures["recommended_by_type"] == db["recommended_by_type"]
    assert measures["waiting_measures"] == db["waiting"]
    visits = report["visits"]
    assert (visits["registered_households"], visits["registered_visited"]) == db["registered"]
    assert visits["overdue"] == db["overdue"]
    problems = report["problems"]
    assert (problems["found"], problems["rectified"]) == db["problems"]
    assert problems["found"] > 0
    # Every household in the workflow on 2021-01-01 was carried over to national-2021.
    transition = report["transition"]
    assert transition["carried_over"] == db["carried_over"] > 0
    assert "carried over by the policy switch" in result.stdout

    # The timeline (read back from household.risk) ends where the read model stands.
    last_day = {k: v[-1] for k, v in report["timeline"]["by_category"].items() if v[-1]}
    flagged = last_day.pop("flagged (pending decision)", 0)
    assert last_day == db["monitored_by_category"]
    assert flagged == db["flagged"]


def _run_demo(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `shouwang ARGV`; past the deadline, Ctrl-C it (so it stops what it started)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=DEMO_SECONDS)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        raise AssertionError(
            f"the demo took over {DEMO_SECONDS} s:\n{stdout[-4000:]}\n{stderr[-4000:]}"
        ) from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


async def _read_model_numbers(url: str) -> dict:
    conn = await asyncpg.connect(url)
    try:
        monitored = await conn.fetch(
            "SELECT coalesce(category, 'uncategorised') AS c, count(*) FROM households "
            "WHERE workflow_status IN ('monitored', 'elimination_proposed') GROUP BY 1"
        )
        delivered = await conn.fetch(
            "SELECT m.type, count(DISTINCT m.measure_id) FROM measures m WHERE EXISTS ("
            "SELECT 1 FROM measure_steps s WHERE s.measure_id = m.measure_id "
            "AND s.step IN ('DELIVERED', 'COMPLETED')) GROUP BY 1"
        )
        recommended = await conn.fetch(
            "SELECT m.type, count(DISTINCT m.measure_id) FROM measures m WHERE EXISTS ("
            "SELECT 1 FROM measure_steps s WHERE s.measure_id = m.measure_id "
            "AND s.step = 'RECOMMENDED' AND s.waiting_for IS NULL) GROUP BY 1"
        )
        overdue = await conn.fetch(
            "SELECT o, count(*) FROM households, jsonb_array_elements_text(overdue) o GROUP BY 1"
        )
        registered = await conn.fetchrow(
            "SELECT count(*), count(last_visit_at) FROM households "
            "WHERE registration_status IN ('lifted', 'not_lifted')"
        )
        return {
            "households": await conn.fetchval("SELECT count(*) FROM households"),
            "monitored_by_category": {r[0]: r[1] for r in monitored},
            "flagged": await conn.fetchval(
                "SELECT count(*) FROM households WHERE workflow_status IN ('flagged', 'verifying')"
            ),
            "delivered_by_type": {r[0]: r[1] for r in delivered},
            "recommended_by_type": {r[0]: r[1] for r in recommended},
            "waiting": await conn.fetchval("SELECT count(*) FROM measures WHERE status='waiting'"),
            "registered": (registered[0], registered[1]),
            "overdue": {r[0]: r[1] for r in sorted(overdue)},
            "carried_over": await conn.fetchval(
                "SELECT count(*) FROM households WHERE EXISTS (SELECT 1 FROM "
                "jsonb_array_elements(reasons) r WHERE r->>'code' = 'policy_transition')"
            ),
            "problems": tuple(
                await conn.fetchrow(
                    "SELECT count(*), count(*) FILTER (WHERE status = 'rectified') FROM problems"
                )
            ),
        }
    finally:
        await conn.close()


def _service_pids(stdout: str) -> list[str]:
    # The demo prints "  <service>: pid N, log FILE" for each service it starts.
    return re.findall(r"^  [\w-]+: pid (\d+),", stdout, re.M)
