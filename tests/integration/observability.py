"""What the Prometheus tests share: child processes with logs, waiting on a condition with a
deadline, the Prometheus HTTP API, a test copy of deploy/'s Prometheus config, and the scrape
fixture the promtool tests take their series from.

The scrape fixture and its series syntax are tests/scrape_fixture.py's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from services.platform.localstack.processes import tail
from tests.scrape_fixture import as_selector

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
SHORT_FOR = "3s"


def shutil_which(name: str) -> str:
    """The binary's path; a missing one fails the test (never skips it)."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"`{name}` is not on PATH: install Debian's prometheus package "
                             "(.ci/run does)")  # fmt: skip
    return path


def run(argv: list[str], env) -> str:
    """Run a command to its end; its output, which must come with exit status 0."""
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def start(argv: list[str], env, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    process.log = str(log)  # type: ignore[attr-defined]  # where to look when it fails
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def logs(processes: Iterable[subprocess.Popen], lines: int = 20) -> str:
    return "\n".join(f"--- {p.log} ---\n{tail(Path(p.log), lines)}" for p in processes)  # type: ignore[attr-defined]


def until(done: Callable[[], Any], seconds: float, what: str,
          processes: list[subprocess.Popen], explain: Callable[[], str] = str) -> Any:  # fmt: skip
    """Poll `done` until it returns something true (returned); fail on a deadline or when a
    process exits, with the processes' last log lines."""
    deadline = time.monotonic() + seconds
    while not (result := done()):
        for process in processes:
            assert process.poll() is None, (
                f"{process.args} exited with {process.returncode}:\n{logs([process], 40)}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {seconds:.0f} s waiting for {what}\n"
                f"{explain()}\n{logs(processes)}"
            )
        time.sleep(0.25)
    return result


def status(url: str, method: str = "GET", body: bytes | None = None,
           headers: dict[str, str] | None = None) -> int | None:  # fmt: skip
    request = urllib.request.Request(
        url,
        data=body,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def api(base: str, path: str, **params: str) -> Any:
    """The `data` of a Prometheus API answer, or None while Prometheus is not answering."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    try:
        with urllib.request.urlopen(f"{base}{path}{query}", timeout=5) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{path} {params}: {exc.code} {exc.read().decode()[:500]}") from None
    except OSError:
        return None
    assert answer["status"] == "success", answer
    return answer["data"]


def value(base: str, query: str) -> float | None:
    """The query's single value, or None when Prometheus has none (yet) or is not up."""
    data = api(base, "/api/v1/query", query=query)
    results = (data or {}).get("result", [])
    return float(results[0]["value"][1]) if len(results) == 1 else None


def deployed_jobs() -> set[str]:
    """The job names deploy/prometheus/prometheus.yml scrapes."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text("utf-8"))
    return {job["job_name"] for job in config["scrape_configs"]}


def prometheus_config(targets: dict[str, str], directory: Path, interval: str = "1s") -> Path:
    """deploy/'s prometheus.yml for a test: every interval `interval`, its rule files copied
    with each `for:` shortened to SHORT_FOR (the policy's deadlines are days; `for` only
    debounces, and an hour of it would make the test an hour long), each job scraping the
    local target `targets` names for it. A job the test does not start fails here, so a
    scrape target added to deploy/ without a process in the test is noticed."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text("utf-8"))
    config["global"] = {**config.get("global", {}), "scrape_interval": interval,
                        "scrape_timeout": interval, "evaluation_interval": interval}  # fmt: skip
    rules = []
    for name in config.get("rule_files", []):
        groups = yaml.safe_load((PROMETHEUS_DIR / name).read_text("utf-8"))
        for group in groups["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = SHORT_FOR
        copy = directory / Path(name).name
        copy.write_text(yaml.safe_dump(groups, allow_unicode=True), "utf-8")
        rules.append(str(copy))
    config["rule_files"] = rules
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name not in targets:
            raise AssertionError(
                f"deploy/prometheus/prometheus.yml scrapes job {name!r}, which the test does not "
                f"run: add it to the test ({sorted(targets)})"
            )
        if targets[name]:  # "" marks a job left out of the test (its reason is beside it)
            jobs.append({**job, "static_configs": [{"targets": [targets[name]]}]})
    config["scrape_configs"] = jobs
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, query) of every panel target of deploy/'s dashboards."""
    found = []

    def walk(file: str, panels: list[dict]) -> None:
        for panel in panels:
            walk(file, panel.get("panels", []))
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((file, panel["title"], target["expr"]))

    for path in sorted(DASHBOARDS.glob("*.json")):
        walk(path.name, json.loads(path.read_text("utf-8"))["panels"])
    return found


def scraped_series(base: str, jobs: Iterable[str]) -> list[str]:
    """Every series Prometheus holds from `jobs`, as selectors (Prometheus' own series, scrape_*
    and the alerts' ALERTS*, which no service exports, left out)."""
    match = '{job=~"' + "|".join(jobs) + '"}'  # job names are plain words and dashes
    data = api(base, "/api/v1/series", **{"match[]": match})
    own = ("scrape_", "ALERTS")
    return sorted({as_selector(s) for s in data if not s["__name__"].startswith(own)})
