"""Scenario "broker-loss": a three-broker KRaft cluster (replication 3, min.insync.replicas 2);
one broker is killed (-9) under steady load through the visits API and started again.

The visits service and a monitoring worker run against the cluster as deployed services would
(all three brokers in their bootstrap list). Clients post hardship reports at a steady pace
throughout, honouring Retry-After.

Checks: ingest kept answering while the broker was down (answers are only 202, 429 or 503, and
some were 202 during the outage: two in-sync replicas remain, acks=all succeeds); every event
id answered 202 is in the log; the monitoring worker resumed without anyone touching it: its
state counts every distinct hardship of the load's households found in the log.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict

import aiohttp

from services.contract.topics import HARDSHIPS, TopicLayout
from services.platform.kafka.admin import ensure_topics
from services.platform.localstack.kafka import QUICK_RESTART_CONFIG
from services.platform.localstack.kafka_cluster import LocalKafkaCluster
from services.platform.localstack.ports import free_ports
from services.tools.faults.feed import (
    HardshipClient,
    hardship_template,
    issue_feed_token,
    random_id,
)
from services.tools.faults.load import wait_for_state
from services.tools.faults.observe import CODEC, read_topics
from services.tools.faults.processes import Worker, monitoring_worker, visits_worker
from services.tools.faults.stack import PrivateStack
from services.tools.faults.verdict import Result, wait_for

CLUSTER_LAYOUT = TopicLayout(
    household_partitions=4, other_partitions=2, replication_factor=3, min_insync_replicas=2
)
MONITORING_APP = "faults-brokerloss-monitoring"


async def run(stack: PrivateStack, quick: bool, seed: int) -> Result:
    result = Result("broker-loss")
    started = time.monotonic()
    rng = random.Random(seed)
    load_seconds, down_seconds, clients = (40.0, 10.0, 12) if quick else (150.0, 40.0, 24)
    cluster = LocalKafkaCluster(stack.run_dir / "cluster", extra_config=QUICK_RESTART_CONFIG)
    visits_port, monitoring_port = free_ports(2)
    workers: list[Worker] = []
    statuses: Counter[str] = Counter()
    during_outage: Counter[str] = Counter()
    acknowledged: dict[str, str] = {}  # event id -> household
    down = False
    try:
        cluster.start(timeout=240)
        await ensure_topics(cluster.bootstrap, CLUSTER_LAYOUT)
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap,
            "SHOUWANG_REPLICATION_FACTOR": "3",
            "SHOUWANG_MIN_INSYNC_REPLICAS": "2",
        }
        visits = visits_worker(stack, visits_port, "visits-cluster", **env)
        monitoring, _ = monitoring_worker(
            stack, MONITORING_APP, monitoring_port, "monitoring-cluster", **env
        )
        workers = [visits, monitoring]
        secret = issue_feed_token(stack)
        template = hardship_template(seed % 10_000 + 5)
        for worker in workers:
            worker.start()
        base = f"http://127.0.0.1:{visits_port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            api = HardshipClient(http, base, secret, template)
            await wait_for(api.ready, 120, "the visits API to be ready", 0.5, workers)
            stop_at = time.monotonic() + load_seconds

            async def client(n: int) -> None:
                while time.monotonic() < stop_at:
                    event_id, household = random_id(rng), f"LOSS{n:03d}{rng.randrange(20):03d}"
                    outage = down
                    status, retry_after = await api.post(event_id, household)
                    statuses[status] += 1
                    if outage:
                        during_outage[status] += 1
                    if status == "202":
                        acknowledged[event_id] = household
                        await asyncio.sleep(0.1)  # a steady pace, not a flood
                    else:
                        await asyncio.sleep(float(retry_after or 1))

            async def lose_a_broker() -> None:
                nonlocal down
                await asyncio.sleep(load_seconds / 4)
                victim = rng.choice(cluster.nodes)
                result.counts["killed"] = f"node {victim.node_id}"
                victim.kill()
                down = True
                try:
                    await asyncio.sleep(down_seconds)  # the fault: one broker gone
                finally:
                    down = False
                    await asyncio.to_thread(victim.start, 180)

            await asyncio.gather(lose_a_broker(), *(client(n) for n in range(clients)))

        result.counts["load"] = f"{clients} clients for {load_seconds:.0f} s"
        result.counts["broker_down"] = f"{down_seconds:.0f} s"
        result.counts["answers"] = dict(sorted(statuses.items()))
        result.counts["answers_while_down"] = dict(sorted(during_outage.items()))
        unexpected = {s: n for s, n in statuses.items() if s not in ("202", "429", "503")}
        result.check(not unexpected, f"answers other than 202, 429 or 503: {unexpected}")
        result.check(
            during_outage["202"] > 0, "ingest accepted nothing while one broker of three was down"
        )

        in_log: dict[str, set[str]] = defaultdict(set)
        for record in await read_topics(cluster.bootstrap, [HARDSHIPS.name]):
            decoded = CODEC.decode(record.value).record
            in_log[str(decoded["household_id"])].add(str(decoded["event_id"]))
        logged = {i for ids in in_log.values() for i in ids}
        missing = set(acknowledged) - logged
        result.counts["acknowledged"] = len(acknowledged)
        result.counts["acknowledged_missing_from_log"] = len(missing)
        result.check(not missing, f"{len(missing)} records answered 202 are not in the log")

        households = set(acknowledged.values())
        want = {h: len(in_log[h]) for h in households}

        async def fixed() -> dict[str, int]:
            return want  # hardships only: nothing else writes to these households

        _, have = await wait_for_state(
            result, monitoring_port, fixed, 240 if quick else 600, workers
        )
        found = sum(min(have.get(h) or 0, n) for h, n in want.items())
        result.counts["state_events_expected"] = sum(want.values())
        result.counts["state_events_found"] = found
        result.check(found == sum(want.values()), "the monitoring worker did not catch up")
    except AssertionError as exc:
        result.failures.append(str(exc))
    finally:
        for worker in workers:
            worker.stop()
        cluster.stop()
        result.seconds = time.monotonic() - started
    return result
