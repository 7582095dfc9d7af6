"""A real Prometheus server scrapes a running service and answers a query for its metric.

The visits API runs as a process (`shouwang visits`, as deployed) on the session's broker and
database; Prometheus (Debian's `prometheus` package; .ci/run installs it) gets a generated scrape
config pointing at it. Both are stopped at the end; a missing binary fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from services.platform.localstack.ports import LOOPBACK, free_ports
from services.platform.localstack.processes import tail

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UNAUTHENTICATED = 3  # requests without a token, each counted by the service


def test_prometheus_scrapes_the_visits_api_and_answers_a_query(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "`prometheus` is not on PATH: install Debian's prometheus package (.ci/run does)"
        )
    visits_port, prometheus_port = free_ports(2)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": database_url,
           "SHOUWANG_VISITS_HOST": LOOPBACK, "SHOUWANG_VISITS_PORT": str(visits_port),
           "SHOUWANG_HOME": str(tmp_path)}  # fmt: skip
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: visits\n    static_configs:\n"
        f"      - targets: ['{LOOPBACK}:{visits_port}']\n"
    )
    processes: list[subprocess.Popen] = []
    try:
        processes.append(_start([sys.executable, "-m", "services.cli", "visits"], env,
                                tmp_path / "visits.log"))  # fmt: skip
        visits = f"http://{LOOPBACK}:{visits_port}"
        _until(lambda: _status(f"{visits}/healthz") == 200, 60, "the visits API", processes)
        for _ in range(UNAUTHENTICATED):
            assert _status(f"{visits}/v1/visits", method="POST", body=b"{}") == 401

        processes.append(
            _start(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address={LOOPBACK}:{prometheus_port}"],
                os.environ, tmp_path / "prometheus.log",
            )
        )  # fmt: skip
        api = f"http://{LOOPBACK}:{prometheus_port}/api/v1/query"
        query = 'sum(shouwang_visits_rejections_total{reason="unauthenticated"})'

        def scraped() -> bool:
            return _value(api, 'up{job="visits"}') == 1.0 and (_value(api, query) or 0) >= 3

        _until(scraped, 90, "Prometheus to scrape the visits API", processes)
        assert _value(api, query) == float(UNAUTHENTICATED)
        assert _value(api, "shouwang_visits_requests_in_flight") is not None
    finally:
        for process in reversed(processes):
            _stop(process)


def _start(argv: list[str], env, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    process.log = str(log)  # type: ignore[attr-defined]  # where to look when it fails
    return process


def _logs(processes: list[subprocess.Popen]) -> list[Path]:
    return [Path(process.log) for process in processes]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _until(done, seconds: float, what: str, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        for process, log in zip(processes, _logs(processes), strict=True):
            assert process.poll() is None, (
                f"{process.args[0]} exited with {process.returncode}:\n{tail(log, 30)}"
            )
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {log} ---\n{tail(log, 20)}" for log in _logs(processes))
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}\n{logs}")
        time.sleep(0.25)


def _status(url: str, method: str = "GET", body: bytes | None = None) -> int | None:
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _value(api: str, query: str) -> float | None:
    """The query's single value, or None when Prometheus has none (yet) or is not up."""
    try:
        with urllib.request.urlopen(f"{api}?{urllib.parse.urlencode({'query': query})}",
                                    timeout=2) as response:  # fmt: skip
            answer = json.load(response)
    except OSError:
        return None
    results = answer.get("data", {}).get("result", [])
    return float(results[0]["value"][1]) if len(results) == 1 else None
