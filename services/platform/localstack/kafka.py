"""A single-node Apache Kafka broker in KRaft mode, run from Maven Central jars with local Java.

Long because `LocalKafka` is one server's whole life (configuration, SCRAM users, storage format,
launch, readiness, stop, kill, log tails) around one pid file and one data directory; the jars
(`jars.py`) and the three-node cluster (`kafka_cluster.py`) are apart.
"""

import asyncio
import base64
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from services.platform.localstack.errors import LocalStackError
from services.platform.localstack.jars import (
    DEFAULT_POM,
    DEPLOY_DIR,
    MIN_JAVA,
    java_major_version,
    kafka_version,
    resolve_classpath,
)
from services.platform.localstack.ports import LOOPBACK, free_ports
from services.platform.localstack.processes import (
    POLL_SECONDS,
    command_line,
    pid_alive,
    read_pid,
    tail,
    terminate,
    wait_for_exit,
)

LOG_CONFIG = DEPLOY_DIR / "log4j2.properties"
STARTED_LINE = "Kafka Server started"

# Broker settings for one node that is both controller and broker. Internal topics get one
# replica, and fewer partitions than the defaults (50) so the first consumer group and the first
# transactional producer do not wait for 50 partitions to be created on a laptop.
log = logging.getLogger(__name__)

BASE_CONFIG = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "num.partitions": "1",
    # Topics come from our catalogue (and faust's own declarations), never from a typo.
    "auto.create.topics.enable": "false",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "10",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "10",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
}

# For fault tests: a broker restarted after SIGKILL cannot register again until the controller
# expires its previous registration (broker.session.timeout.ms, 9 s by default). Passed as
# `extra_config`, this brings a crash-restart from about 15 s to about 6 s, at the price of
# fencing the broker if it misses heartbeats for 3 s (fine for tests, not for a loaded laptop).
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


# kafka-storage parses `[name=...,password=...]` itself, splitting at `,` `=` and `]`; values
# from this set need no quoting rules (this broker is for tests and a laptop, not production).
_SCRAM_VALUE = re.compile(r"[A-Za-z0-9_.@+-]+")


QUICK_RESTART_CONFIG = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
}


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _read_properties(path: Path) -> dict[str, str]:
    properties = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            properties[key.strip()] = value.strip()
    return properties


async def _cluster_answers(bootstrap: str, request_timeout: float) -> bool:
    # Imported here: the broker's lifecycle does not need a Kafka client, only this check does.
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(request_timeout * 1000)
    )
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        await admin.list_topics()
        return bool(cluster.get("brokers"))
    except Exception:
        return False
    finally:
        await admin.close()


def _cluster_answers_blocking(bootstrap: str, timeout: float) -> bool:
    """Run the admin check on a private event loop in a thread, so callers may hold a loop."""
    answer: list[bool] = []
    worker = threading.Thread(
        target=lambda: answer.append(asyncio.run(_cluster_answers(bootstrap, timeout))),
        daemon=True,
    )
    worker.start()
    worker.join(timeout + 10.0)
    return bool(answer and answer[0])


class LocalKafka:
    """One Kafka broker+controller (KRaft) whose data, config and logs live under `data_dir`.

    Ports default to the ones recorded in `data_dir` by an earlier start (so a restarted broker
    keeps its bootstrap address), else to free ports. With `detach=True` the broker runs in its
    own session and outlives the starting process (for `shouwang stack up`); otherwise it shares
    the caller's process group, so a Ctrl-C reaches it too.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        pom: Path = DEFAULT_POM,
        heap: str = "512m",
        detach: bool = False,
        extra_config: Mapping[str, str] | None = None,
        java: str = "java",
        mvn: str = "mvn",
        node_id: int = 1,
        voters: str | None = None,
        cluster_id: str | None = None,
        scram_users: Mapping[str, str] | None = None,
        sasl_port: int | None = None,
        tls_keystore: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        # With users (name -> password), a third listener on `sasl_port` takes SASL_PLAINTEXT
        # with SCRAM-SHA-256 or -512, as a production cluster would; the PLAINTEXT listener stays
        # for the controller link and the readiness check. The credentials are written when the
        # storage is formatted (first start), so changing them later needs a fresh data_dir.
        # With `tls_keystore` (one PEM file: the broker's unencrypted PKCS#8 key, then its
        # certificate chain) that listener is SASL_SSL instead.
        self.scram_users = dict(scram_users or {})
        self.tls_keystore = Path(tls_keystore).resolve() if tls_keystore else None
        if self.tls_keystore is not None and not self.scram_users:
            raise LocalStackError("tls_keystore secures the SASL listener: give scram_users too")
        self.sasl_protocol = "SASL_SSL" if self.tls_keystore else "SASL_PLAINTEXT"
        for name, password in self.scram_users.items():
            if not _SCRAM_VALUE.fullmatch(name):
                raise LocalStackError(f"SCRAM user name {name!r}: use letters, digits, _ . @ + -")
            if not _SCRAM_VALUE.fullmatch(password):
                raise LocalStackError(
                    f"SCRAM password of {name!r}: use letters, digits, _ . @ + - (local broker)"
                )
        # Cluster membership (LocalKafkaCluster): a static controller quorum "1@host:port,...",
        # every node formatted with the same cluster id. Unset: one standalone node.
        self.node_id = node_id
        self.voters = voters
        self.cluster_id = cluster_id
        self.pom = pom
        self.heap = heap
        self.detach = detach
        self.extra_config = dict(extra_config or {})
        self.java = java
        self.mvn = mvn
        recorded = self._recorded_ports()
        if port is None or controller_port is None:
            chosen = recorded or tuple(free_ports(2))
            port = port if port is not None else chosen[0]
            controller_port = controller_port if controller_port is not None else chosen[1]
        self.port = port
        self.controller_port = controller_port
        self.sasl_port: int | None = None
        if self.scram_users:
            self.sasl_port = sasl_port or self._recorded_sasl_port() or free_ports(1)[0]
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where this start's lines begin in server.log

    @property
    def version(self) -> str:
        return kafka_version(self.pom)

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The SASL (SCRAM) listener's address; only with `scram_users`."""
        if self.sasl_port is None:
            raise LocalStackError("this broker has no SASL listener (no scram_users given)")
        return f"{LOOPBACK}:{self.sasl_port}"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "kraft"

    @property
    def log_file(self) -> Path:
        """The broker's log4j log (server.log)."""
        return self.data_dir / "server.log"

    @property
    def console_file(self) -> Path:
        """The JVM's stdout and stderr: errors that happen before logging is set up."""
        return self.data_dir / "kafka.out"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def pid(self) -> int | None:
        """The broker's pid while it runs (also when started by another process)."""
        if self._process is not None:
            return self._process.pid if self._process.poll() is None else None
        pid = read_pid(self.pid_file)
        if pid is None or not pid_alive(pid):
            return None
        line = command_line(pid)
        # Guard against a recycled pid: it must be a broker started on our config file.
        if line is not None and str(self.config_file) not in line:
            return None
        return pid

    @property
    def is_running(self) -> bool:
        return self.pid is not None

    def start(self, timeout: float = 90.0) -> str:
        """Format storage on first use, start the broker and wait until a client is served.

        Returns the bootstrap address. Raises LocalStackError with the log's tail when the
        broker exits or is not ready within `timeout` seconds (the broker is then stopped).
        """
        if self.is_running:
            return self.bootstrap
        deadline = time.monotonic() + timeout
        self.launch()
        self.wait_ready(deadline)
        return self.bootstrap

    def launch(self) -> None:
        """Format storage on first use and start the JVM, without waiting for it (a node of a
        cluster only becomes ready once a majority of the controller quorum runs)."""
        java_version = java_major_version(self.java)
        if java_version < MIN_JAVA:
            raise LocalStackError(
                f"Kafka {self.version} needs Java {MIN_JAVA}+; `{self.java}` is Java {java_version}"
            )
        classpath = resolve_classpath(self.pom, mvn=self.mvn)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not (self.log_dir / "meta.properties").exists():
            self._format(classpath)

        self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.console_file.open("ab") as console:
            self._process = subprocess.Popen(
                [*self._java_command(), "kafka.Kafka", str(self.config_file)],
                env={**os.environ, "CLASSPATH": classpath},
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=self.detach,
            )
        self.pid_file.write_text(f"{self._process.pid}\n")

    def wait_ready(self, deadline: float) -> None:
        """Wait for a launched broker to serve clients; stop it if it does not by `deadline`."""
        try:
            self._wait_until_ready(deadline)
        except BaseException:
            self.kill()
            raise

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the broker down cleanly (SIGTERM), killing it after `timeout` seconds."""
        pid = self.pid
        if pid is not None:
            terminate(pid, timeout)
        self._forget()

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would; its data stays for the next start."""
        pid = self.pid
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_for_exit(pid, 10.0)
        self._forget()

    def _forget(self) -> None:
        if self._process is not None:
            self._process.wait()  # reap, so no zombie is left behind
            self._process = None
        self.pid_file.unlink(missing_ok=True)

    def _recorded_ports(self) -> tuple[int, int] | None:
        if not self.config_file.exists():
            return None
        listeners = _read_properties(self.config_file).get("listeners", "")
        ports = dict(re.findall(r"(\w+)://[^:,]*:(\d+)", listeners))
        if "PLAINTEXT" in ports and "CONTROLLER" in ports:
            return int(ports["PLAINTEXT"]), int(ports["CONTROLLER"])
        return None

    def _recorded_sasl_port(self) -> int | None:
        if not self.config_file.exists():
            return None
        listeners = _read_properties(self.config_file).get("listeners", "")
        found = re.search(r"SASL_(?:PLAINTEXT|SSL)://[^:,]*:(\d+)", listeners)
        return int(found.group(1)) if found else None

    def _sasl_config(self) -> dict[str, str]:
        if self.sasl_port is None:
            return {}
        name = self.sasl_protocol
        prefix = f"listener.name.{name.lower()}"
        tls = (
            {f"{prefix}.ssl.keystore.type": "PEM", f"{prefix}.ssl.keystore.location": str(path)}
            if (path := self.tls_keystore)
            else {}
        )
        return {
            "listener.security.protocol.map": (
                f"PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,{name}:{name}"
            ),
            f"{prefix}.sasl.enabled.mechanisms": ",".join(SCRAM_MECHANISMS),
            **{
                f"{prefix}.{m.lower()}.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                )
                for m in SCRAM_MECHANISMS
            },
            **tls,
        }

    def _write_config(self) -> None:
        host = LOOPBACK
        sasl = f",{self.sasl_protocol}://{host}:{self.sasl_port}" if self.sasl_port else ""
        config = {
            **BASE_CONFIG,
            "listeners": (
                f"PLAINTEXT://{host}:{self.port},CONTROLLER://{host}:{self.controller_port}{sasl}"
            ),
            "advertised.listeners": f"PLAINTEXT://{host}:{self.port}{sasl}",
            **self._sasl_config(),
            "log.dirs": str(self.log_dir),
            "node.id": str(self.node_id),
            **(
                {"controller.quorum.voters": self.voters}
                if self.voters
                else {"controller.quorum.bootstrap.servers": f"{host}:{self.controller_port}"}
            ),
            **self.extra_config,
        }
        lines = [
            "# Written by services/platform/localstack/kafka.py on every start; edits are lost."
        ]
        lines += [f"{key}={value}" for key, value in config.items()]
        self.config_file.write_text("\n".join(lines) + "\n")

    def _java_command(self) -> list[str]:
        return [
            shutil.which(self.java) or self.java,
            f"-Xmx{self.heap}",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG_CONFIG}",
            f"-Dkafka.logs.dir={self.data_dir}",
        ]

    def _format(self, classpath: str) -> None:
        command = [
            *self._java_command(),
            "kafka.tools.StorageTool",
            "format",
            # a static quorum (voters in the config) takes no controller option
            *([] if self.voters else ["--standalone"]),
            # One argument, `=`-joined: an id may start with "-" and parse as an option.
            f"--cluster-id={self.cluster_id or new_cluster_id()}",
            f"--config={self.config_file}",
            *(
                f"--add-scram={mechanism}=[name={name},password={password}]"
                for name, password in self.scram_users.items()
                for mechanism in SCRAM_MECHANISMS
            ),
        ]
        result = subprocess.run(
            command,
            env={**os.environ, "CLASSPATH": classpath},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            for password in self.scram_users.values():
                output = output.replace(password, "***")
            raise LocalStackError(
                f"formatting Kafka storage in {self.log_dir} failed (exit {result.returncode}):\n"
                + output
            )

    def _wait_until_ready(self, deadline: float) -> None:
        while STARTED_LINE.encode() not in self._this_start_log():
            self._check_alive()
            self._check_deadline(deadline)
            time.sleep(POLL_SECONDS)
        while not _cluster_answers_blocking(self.bootstrap, 5.0):
            self._check_alive()
            self._check_deadline(deadline)
            time.sleep(POLL_SECONDS)

    def _this_start_log(self) -> bytes:
        try:
            with self.log_file.open("rb") as log:
                log.seek(self._log_offset)
                return log.read()
        except OSError:
            return b""

    def _check_alive(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise LocalStackError(
                f"the Kafka broker exited with code {code} while starting.\n{self._log_tails()}"
            )

    def _check_deadline(self, deadline: float) -> None:
        if time.monotonic() >= deadline:
            raise LocalStackError(
                f"the Kafka broker on {self.bootstrap} was not ready in time.\n{self._log_tails()}"
            )

    def _log_tails(self) -> str:
        # The errors explain a failed start; the tail after them is mostly shutdown chatter.
        lines = self._this_start_log().decode(errors="replace").splitlines()
        errors = []
        for number, line in enumerate(lines):
            if " ERROR " in line or " FATAL " in line:
                errors.append(line)
                # The exception's message is on the line below; its stack trace is noise.
                if number + 1 < len(lines) and not lines[number + 1].startswith(("[", "\t")):
                    errors.append("    " + lines[number + 1])
        errors = errors[:16]
        return (
            f"--- errors in {self.log_file} ---\n" + "\n".join(errors or ["(none)"]) + "\n"
            f"--- {self.console_file} ---\n{tail(self.console_file, 20)}\n"
            f"--- {self.log_file} ---\n{tail(self.log_file, 15)}"
        )
