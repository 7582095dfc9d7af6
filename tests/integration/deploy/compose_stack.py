"""deploy/docker-compose.yml read as the Docker engine would run it, turned into local processes.

No Docker engine is reachable here, so each Shouwang service of the compose file becomes a
process on this machine with what the container would get: the image's entrypoint
(deploy/Dockerfile's ENTRYPOINT, `python -m services.cli`) and the service's `command`; the
image's ENV and the service's `environment`, interpolated with the defaults a user gets (an
empty shell environment). What differs between a container and a process is mapped, and
nothing else: the compose network's host names (`kafka:9092`, `postgres:5432`) become the
test's broker and PostgreSQL; each container port set by a `*_PORT` variable becomes a free
local port (all containers listen on their own address, processes share one); a secret under
/run/secrets/ becomes a file; the image's home directory becomes a temporary one. A port the
healthcheck or Prometheus uses must be set by a variable of the service: the test cannot map
it otherwise, and fails. A variable set for the wrong port name is caught when the process
runs: nothing listens on the port, and envtrace.py shows that no code read the variable.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from services.platform.localstack.ports import LOOPBACK, free_ports

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
ENVTRACE = Path(__file__).with_name("envtrace.py")
IMAGE_HOME = "/var/lib/shouwang"
SECRETS_DIR = "/run/secrets/"

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$\$")


class Unmappable(AssertionError):
    """Something in the compose file that no process could do as the container would."""


def interpolate(value: str, shell: dict[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default}, $$."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, default = match.groups()
        if operator in (":?", "?"):
            if shell.get(name) or (operator == "?" and name in shell):
                return shell[name]
            raise Unmappable(f"${{{name}}} is required: {default}")
        if operator == ":-":
            return shell.get(name) or default
        if operator == "-":
            return shell.get(name, default)
        return shell.get(name, "")

    return _VARIABLE.sub(substitute, value)


def network_address() -> str:
    """This machine's address on its network (not loopback), where another container (e.g.
    Prometheus) would reach a service: a process that binds loopback only is unreachable
    there, as it would be from outside its container. Loopback when there is no network."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            address = probe.getsockname()[0]
        except OSError:
            return LOOPBACK
    return LOOPBACK if address.startswith("127.") else address


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text("utf-8"))


def load_prometheus() -> dict[str, Any]:
    return yaml.safe_load(PROMETHEUS.read_text("utf-8"))


def runtime_stage(dockerfile: str) -> list[tuple[str, str]]:
    """The last stage's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), rest.strip()))
    return stages[-1]


def image_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, rest in stage:
        if instruction == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def image_entrypoint(stage: list[tuple[str, str]]) -> list[str]:
    entries = [json.loads(rest) for instruction, rest in stage if instruction == "ENTRYPOINT"]
    if not entries:
        raise Unmappable("deploy/Dockerfile's runtime stage has no ENTRYPOINT")
    return entries[-1]


def shouwang_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services run from the Shouwang image (built from deploy/Dockerfile)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("build", {}).get("dockerfile", "")).endswith("deploy/Dockerfile")
    }


def scrape_targets(prometheus: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    """(job, metrics path, host, port) of every static target."""
    found = []
    for job in prometheus["scrape_configs"]:
        path = job.get("metrics_path", "/metrics")
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                found.append((job["job_name"], path, host, int(port)))
    return found


@dataclass
class Launch:
    """One compose service as a local process: what to run, with which environment, and how
    its container ports map to local ones."""

    name: str
    command: list[str]  # as the image runs it: entrypoint + command
    argv: list[str]  # as this test runs it (through envtrace.py)
    env: dict[str, str]  # the process's whole environment
    compose_env: dict[str, str]  # the service's `environment`, interpolated
    ports: dict[int, int] = field(default_factory=dict)  # container port → local port
    healthcheck: list[str] = field(default_factory=list)
    healthcheck_shown: str = ""
    record: Path = Path()
    log: Path = Path()

    def local(self, port: int, what: str) -> int:
        if port not in self.ports:
            set_by = ", ".join(f"{n}={v}" for n, v in self.compose_env.items() if "PORT" in n)
            raise Unmappable(
                f"{self.name}: {what} uses port {port}, which no variable of its environment "
                f"sets ({set_by or 'none'}): set it there, so that the file says where the "
                "process listens and this test can map it"
            )
        return self.ports[port]


def plan(
    compose: dict[str, Any],
    dockerfile: str,
    *,
    kafka_bootstrap: str,
    database_url: str,
    work: Path,
) -> dict[str, Launch]:
    """Every Shouwang service of `compose` as a Launch (nothing started)."""
    stage = runtime_stage(dockerfile)
    entrypoint = image_entrypoint(stage)
    if entrypoint != ["python", "-m", "services.cli"]:
        raise Unmappable(f"ENTRYPOINT {entrypoint}: this test runs `python -m services.cli`")
    hosts = {"kafka:9092": kafka_bootstrap}
    local_db = urlsplit(database_url)
    secrets = compose.get("secrets", {})
    launches = {}
    for name, service in shouwang_services(compose).items():
        shell: dict[str, str] = {}  # the defaults a user gets: no variable set in the shell
        compose_env = {k: interpolate(str(v), shell) for k, v in service["environment"].items()}
        home = work / name
        home.mkdir(parents=True)
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
        for key, value in image_env(stage).items():
            if key == "PATH":
                continue  # the image's virtualenv is this test's interpreter
            env[key] = (
                str(ROOT)
                if key == "PYTHONPATH"
                else value.replace(IMAGE_HOME, str(home / "image-home"))
            )
        launch = Launch(name, [*entrypoint, *service["command"]], [], env, compose_env)
        container_ports = [
            (k, int(v)) for k, v in compose_env.items() if k.endswith("_PORT") and v.isdigit()
        ]
        for (_, container), local in zip(
            container_ports, free_ports(len(container_ports)), strict=True
        ):
            launch.ports[container] = local
        for key, value in compose_env.items():
            if key.endswith("_PORT") and value.isdigit():
                value = str(launch.ports[int(value)])
            for compose_host, local_host in hosts.items():
                value = value.replace(compose_host, local_host)
            if value.startswith(("postgresql://", "postgres://")):
                value = _local_database(value, local_db)
            if value.startswith(SECRETS_DIR):
                value = str(_secret(value[len(SECRETS_DIR) :], secrets, service, home))
            env[key] = value
        for published in service.get("ports", []):
            container = int(str(published).rsplit(":", 1)[-1].split("/")[0])
            launch.local(container, f"published port {published}")
        launch.record = home / "environment-read.txt"
        launch.log = home / "process.log"
        launch.argv = [sys.executable, str(ENVTRACE), str(launch.record), *service["command"]]
        launch.healthcheck, launch.healthcheck_shown = _healthcheck(launch, service)
        launches[name] = launch
    return launches


def _local_database(url: str, local: Any) -> str:
    """The compose database URL with the compose host replaced by the test's server; user,
    password and database name kept (the test creates them as the postgres image would)."""
    parts = urlsplit(url)
    if parts.hostname != "postgres" or parts.port != 5432:
        raise Unmappable(f"a database URL names {parts.hostname}:{parts.port}, not postgres:5432")
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{local.hostname}:{local.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _secret(name: str, secrets: dict[str, Any], service: dict[str, Any], home: Path) -> Path:
    if name not in secrets:
        raise Unmappable(f"{SECRETS_DIR}{name}: no top-level secret of that name")
    if name not in service.get("secrets", []):
        raise Unmappable(f"{SECRETS_DIR}{name}: the service does not mount that secret")
    path = home / "secrets" / name
    path.parent.mkdir(exist_ok=True)
    # What the README tells an operator to put in the file: 32 random bytes, base64.
    path.write_text(base64.b64encode(os.urandom(32)).decode("ascii") + "\n", encoding="ascii")
    return path


def _healthcheck(launch: Launch, service: dict[str, Any]) -> tuple[list[str], str]:
    test = service.get("healthcheck", {}).get("test")
    if not test or test[0] != "CMD":
        raise Unmappable(f"{launch.name}: healthcheck {test!r} is not an exec-form CMD")
    argv = list(test[1:])
    if argv[0] != "python":
        raise Unmappable(f"{launch.name}: healthcheck runs {argv[0]}, not the image's python")
    urls = re.findall(r"http://localhost:(\d+)(/[^'\"\s]*)", " ".join(argv))
    if len(urls) != 1:
        raise Unmappable(f"{launch.name}: healthcheck should probe one localhost URL: {argv}")
    port, path = int(urls[0][0]), urls[0][1]
    local = launch.local(port, "the healthcheck")
    mapped = [a.replace(f"http://localhost:{port}", f"http://{LOOPBACK}:{local}") for a in argv[1:]]
    return [sys.executable, *mapped], f":{port}{path}"
