"""deploy/docker-compose.yml: validated by `docker compose config` when the docker CLI has the
compose plugin (no engine needed), and its structure checked in Python always."""

from __future__ import annotations

import shutil
import subprocess
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
    assert (DEPLOY / compose["services"]["visits"]["build"]["dockerfile"].split("/", 1)[1]).exists()
