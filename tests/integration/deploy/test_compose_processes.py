"""deploy/docker-compose.yml run as processes: every Shouwang service starts with its compose
command and environment against a private broker and PostgreSQL (compose_stack.py maps the
compose network onto them), passes its own healthcheck (run against localhost, as inside its
container), answers /healthz, and serves every target deploy/prometheus/prometheus.yml scrapes
for it on this machine's network address (Prometheus is another container: a process that
listens on loopback only fails here); every variable its environment sets is read by the
code. Prints the table service → command → health → scrape target.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import asyncpg
import pytest

from services.platform.localstack.ports import LOOPBACK
from services.platform.localstack.processes import stop_child, tail
from tests.integration.deploy import compose_stack as stack
from tests.integration.deploy.envtrace import COPIED

pytestmark = pytest.mark.integration

READY_WITHIN_SECONDS = 360.0  # five processes starting together on a shared 2-core machine


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


async def _as_the_postgres_image(url: str, compose_url: str) -> None:
    """What the postgres image does with POSTGRES_USER/PASSWORD/DB: a superuser that logs in
    with that password, owning that database."""
    parts = stack.urlsplit(compose_url)
    user, password, database = parts.username, parts.password, parts.path.lstrip("/")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE ROLE {user} SUPERUSER LOGIN PASSWORD '{password}'")
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            await conn.execute(f"ALTER DATABASE {database} OWNER TO {user}")
        else:
            await conn.execute(f"CREATE DATABASE {database} OWNER {user}")
    finally:
        await conn.close()


def test_every_shouwang_service_runs_as_composed(
    local_kafka_factory, local_postgres_factory, tmp_path: Path
) -> None:
    compose = stack.load_compose()
    bootstrap = local_kafka_factory().start(120)
    database_url = local_postgres_factory().start()
    compose_url = stack.interpolate(compose["x-shouwang"]["environment"]["DATABASE_URL"], shell={})
    asyncio.run(_as_the_postgres_image(database_url, compose_url))
    launches = stack.plan(
        compose,
        stack.DOCKERFILE.read_text("utf-8"),
        kafka_bootstrap=bootstrap,
        database_url=database_url,
        work=tmp_path,
    )
    assert {"visits", "monitoring", "support", "projector", "support-api"} <= set(launches)
    targets = stack.scrape_targets(stack.load_prometheus())
    scraped = {}
    for job, path, host, port in targets:
        if host in launches:
            scraped.setdefault(host, []).append((job, path, port))
        else:
            assert not job.startswith("shouwang-"), f"job {job} scrapes {host}: no such service"
    assert set(scraped) == set(launches), f"not scraped: {set(launches) - set(scraped)}"
    # Map every target before anything starts: an unmappable port fails fast.
    mapped = {
        name: [(job, path, port, launches[name].local(port, f"job {job}")) for job, path, port in t]
        for name, t in scraped.items()
    }

    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, launch in launches.items():
            with launch.log.open("wb") as log:
                processes[name] = subprocess.Popen(
                    launch.argv, env=launch.env, stdout=log, stderr=subprocess.STDOUT
                )
        healthy = _wait_healthy(launches, processes)
        # Prometheus scrapes from its own container: through the network, not loopback.
        network = stack.network_address()
        rows = []
        for name, launch in launches.items():
            status, body = _get(
                f"http://{LOOPBACK}:{launch.local(_probe_port(launch), '')}/healthz"
            )
            assert status == 200, f"{name} /healthz: {status} {body}"
            for job, path, _, local in mapped[name]:
                status, text = _get(f"http://{network}:{local}{path}")
                assert status == 200, f"{name} {job} {path}: {status}"
                assert "# TYPE shouwang_" in text, f"{name} {job}: no Shouwang metric in {path}"
                assert "# TYPE " in text
            read = (
                set(launch.record.read_text("utf-8").split()) if launch.record.exists() else set()
            )
            assert COPIED not in read, f"{name}: the code copied the whole environment"
            unread = sorted(set(launch.compose_env) - read)
            assert not unread, f"{name}: compose sets {unread}, which no code of `{name}` reads"
            rows.append(
                (
                    name,
                    " ".join(launch.command),
                    f"{launch.healthcheck_shown} {healthy[name]}",
                    ", ".join(
                        f"{job} {name}:{port}{path} 200" for job, path, port, _ in mapped[name]
                    ),
                )
            )
        _print_table(rows)
        print(f"(healthchecks on localhost as in the container; targets scraped via {network})")
    finally:
        for process in processes.values():
            stop_child(process, timeout=30)


def _probe_port(launch: stack.Launch) -> int:
    return int(launch.healthcheck_shown.split("/")[0].lstrip(":"))


def _wait_healthy(
    launches: dict[str, stack.Launch], processes: dict[str, subprocess.Popen]
) -> dict[str, str]:
    """Run each service's own healthcheck command until it exits 0; fail with the log's tail
    if a process exits or the deadline passes."""
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    healthy: dict[str, str] = {}
    started = time.monotonic()
    while len(healthy) < len(launches):
        for name, launch in launches.items():
            if name in healthy:
                continue
            if processes[name].poll() is not None:
                pytest.fail(f"{name} exited {processes[name].returncode}:\n{tail(launch.log)}")
            probe = subprocess.run(launch.healthcheck, capture_output=True, timeout=30)
            if probe.returncode == 0:
                healthy[name] = f"healthy after {time.monotonic() - started:.0f} s"
        if time.monotonic() > deadline:
            late = sorted(set(launches) - set(healthy))
            logs = "\n".join(f"--- {n}\n{tail(launches[n].log)}" for n in late)
            ready = {
                n: _get(
                    f"http://{LOOPBACK}:{launches[n].local(_probe_port(launches[n]), '')}/readyz"
                )
                for n in late
            }
            pytest.fail(f"not healthy within {READY_WITHIN_SECONDS:g} s: {ready}\n{logs}")
        time.sleep(1)  # between rounds of probes, as compose's interval does
    return healthy


def _print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("service", "command", "health (/readyz)", "scrape target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    print("\n" + "\n".join(lines))
