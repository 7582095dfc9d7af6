"""A monitoring worker's logs as an operator's log collector gets them (stdout and stderr to
files, not a terminal): JSON lines when asked, no escape codes, and none of aiokafka's INFO
chatter (its list of assigned partitions) at the default level, while the worker works."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.contract.codec import Codec
from services.contract.topics import RISK, TopicLayout, topic_for
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.ports import free_port
from services.platform.localstack.processes import stop_child
from services.tools.workers import monitoring_env
from tests.seed_households import marginal

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
CODEC = Codec.default()


async def _assessed(bootstrap: str, household: str, worker: subprocess.Popen) -> None:
    """Send a household's records and wait (deadline) for the worker's assessment of it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    consumer = AIOKafkaConsumer(
        RISK.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await producer.start()
    await consumer.start()
    try:
        for event_type, record in marginal(household):
            await producer.send(
                topic_for(f"shouwang.events.{event_type}").name,
                key=household.encode(),
                value=CODEC.encode(event_type, record),
            )
        await producer.flush()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert worker.poll() is None, f"the worker exited with {worker.returncode}"
            batches = await consumer.getmany(timeout_ms=500)
            if any(r.key == household.encode() for rs in batches.values() for r in rs):
                return
        raise AssertionError("no assessment within 240 s")
    finally:
        await consumer.stop()
        await producer.stop()


def _start(env: dict[str, str], out: Path, err: Path) -> subprocess.Popen:
    with out.open("wb") as stdout, err.open("wb") as stderr:  # the child keeps its own
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "monitoring"],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )


async def _worker_records(
    bootstrap: str, tmp_path: Path, level: str | None
) -> tuple[bytes, list[dict]]:
    """Run a monitoring worker (JSON logs, `level` or the default) until it has assessed a
    household; what it wrote (stdout and stderr) and its stderr records."""
    await ensure_topics(bootstrap, TopicLayout())
    household = f"logs-{uuid.uuid4().hex[:8]}"
    env = monitoring_env(
        bootstrap, tmp_path, f"monitoring-logs-{household}", free_port(), SHOUWANG_LOG_FORMAT="json"
    )
    env.pop("SHOUWANG_LOG_LEVEL", None)  # the default an operator gets, unless `level`
    if level is not None:
        env["SHOUWANG_LOG_LEVEL"] = level
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    worker = _start(env, out, err)
    try:
        await _assessed(bootstrap, household, worker)
    finally:
        stop_child(worker)
    records = [json.loads(line) for line in err.read_text().splitlines() if line.strip()]
    return out.read_bytes() + err.read_bytes(), records


def _chatter(records: list[dict]) -> list[dict]:
    # Libraries' loggers, and mode's service lifecycle lines ("[^--Consumer]: Starting...")
    # whatever logger they come through.
    return [
        r
        for r in records
        if r["logger"].startswith(("aiokafka", "faust", "mode")) or r["message"].startswith("[^")
    ]


async def test_a_worker_logs_json_lines_without_chatter_or_escape_codes(kafka_bootstrap, tmp_path):
    written, records = await _worker_records(kafka_bootstrap, tmp_path, None)
    assert b"\x1b" not in written and b"\x08" not in written, written[-2000:]
    assert any(
        r["logger"].startswith("services.monitoring")
        and r["message"].startswith("monitoring worker")
        for r in records
    ), records[:5]
    chatter = _chatter(records)
    assert all(r["level"] in ("WARNING", "ERROR", "CRITICAL") for r in chatter), chatter[:5]


async def test_the_chatter_is_there_when_the_level_asks_for_it(kafka_bootstrap, tmp_path):
    written, records = await _worker_records(
        kafka_bootstrap, tmp_path, "INFO,aiokafka=INFO,mode=INFO"
    )
    assert b"\x1b" not in written and b"\x08" not in written, written[-2000:]
    infos = [r["message"] for r in _chatter(records) if r["level"] == "INFO"]
    assert any("Worker ready" in m for m in infos), infos[:20]
    assert any(r["logger"].startswith("aiokafka") and r["level"] == "INFO" for r in records)
