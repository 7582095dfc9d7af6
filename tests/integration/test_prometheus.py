"""A real Prometheus server scrapes a running service and answers a query for its metric.

The visits API runs as a process (`shouwang visits`, as deployed) on the session's broker and
database; Prometheus (Debian's `prometheus` package; .ci/run installs it) gets a generated scrape
config pointing at it. Both are stopped at the end; a missing binary fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.platform.localstack.ports import LOOPBACK, free_ports
from tests.integration.observability import shutil_which, start, status, stop, until, value

pytestmark = pytest.mark.integration
UNAUTHENTICATED = 3  # requests without a token, each counted by the service


def test_prometheus_scrapes_the_visits_api_and_answers_a_query(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    binary = shutil_which("prometheus")
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
        processes.append(start([sys.executable, "-m", "services.cli", "visits"], env,
                                tmp_path / "visits.log"))  # fmt: skip
        visits = f"http://{LOOPBACK}:{visits_port}"
        until(lambda: status(f"{visits}/healthz") == 200, 60, "the visits API", processes)
        for _ in range(UNAUTHENTICATED):
            assert status(f"{visits}/v1/visits", method="POST", body=b"{}") == 401

        processes.append(
            start(
                [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address={LOOPBACK}:{prometheus_port}"],
                os.environ, tmp_path / "prometheus.log",
            )
        )  # fmt: skip
        api = f"http://{LOOPBACK}:{prometheus_port}"
        query = 'sum(shouwang_visits_rejections_total{reason="unauthenticated"})'

        def scraped() -> bool:
            return value(api, 'up{job="visits"}') == 1.0 and (value(api, query) or 0) >= 3

        until(scraped, 90, "Prometheus to scrape the visits API", processes)
        assert value(api, query) == float(UNAUTHENTICATED)
        assert value(api, "shouwang_visits_requests_in_flight") is not None
    finally:
        for process in reversed(processes):
            stop(process)
