"""A three-broker KRaft cluster of LocalKafka nodes, for the broker-loss fault scenario."""

import logging
import time
from collections.abc import Mapping
from pathlib import Path

from services.platform.localstack.kafka import LocalKafka, new_cluster_id
from services.platform.localstack.ports import LOOPBACK, free_ports

log = logging.getLogger(__name__)

# A cluster's internal topics replicate like production ones (3 copies, 2 in sync).
CLUSTER_CONFIG = {
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "share.coordinator.state.topic.replication.factor": "3",
    "share.coordinator.state.topic.min.isr": "2",
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
}


class LocalKafkaCluster:
    """Three (or `nodes`) combined broker+controller JVMs forming one KRaft cluster with a
    static quorum, under `data_dir/node-N`. For the fault harness's broker loss: any node
    can be killed and started again while the others keep serving."""

    def __init__(
        self,
        data_dir: Path,
        nodes: int = 3,
        *,
        heap: str = "384m",
        extra_config: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        id_file = self.data_dir / "cluster.id"
        if not id_file.exists():
            id_file.write_text(new_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        ports_file = self.data_dir / "ports"
        if not ports_file.exists():
            ports_file.write_text(" ".join(map(str, free_ports(2 * nodes))) + "\n")
        ports = [int(p) for p in ports_file.read_text().split()]
        voters = ",".join(f"{n + 1}@{LOOPBACK}:{ports[2 * n + 1]}" for n in range(nodes))
        self.nodes = [
            LocalKafka(
                self.data_dir / f"node-{n + 1}",
                port=ports[2 * n],
                controller_port=ports[2 * n + 1],
                heap=heap,
                extra_config={**CLUSTER_CONFIG, **(extra_config or {})},
                node_id=n + 1,
                voters=voters,
                cluster_id=cluster_id,
            )
            for n in range(nodes)
        ]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self, timeout: float = 180.0) -> str:
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if not node.is_running:
                node.launch()
        try:
            for node in self.nodes:
                node.wait_ready(deadline)
        except BaseException:
            self.stop()
            raise
        return self.bootstrap

    def stop(self) -> None:
        for node in self.nodes:
            try:
                node.stop()
            except Exception as exc:  # stop the others anyway
                log.warning("stopping %s: %s", node.data_dir, exc)
