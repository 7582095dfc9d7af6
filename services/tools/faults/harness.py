"""The fault harness's machinery: a private stack, worker processes it may kill, the log's counts.

Every scenario runs against servers of its own (a LocalKafka and a LocalPostgres under a run
directory), never the developer's stack or the test session's shared servers, because it stops
and kills them. Workers are `shouwang monitoring` / `shouwang projector` / `shouwang visits`
child processes started with the environment a deployment would give them; the load scenarios
post hardship reports to the visits API as a department feed would.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.contract.codec import Codec
from services.contract.topics import TopicLayout
from services.platform.kafka import clients as kafka_clients
from services.platform.localstack.kafka import QUICK_RESTART_CONFIG, LocalKafka
from services.platform.localstack.ports import free_ports
from services.platform.localstack.postgres import LocalPostgres
from services.platform.personal.keys import personal_master_key_env
from services.tools.simulation import records as rec
from services.tools.simulation.parameters import SimulationParameters
from services.tools.simulation.sinks.api import SERVER_FIELDS
from services.tools.simulation.sinks.jsonl import to_json
from services.tools.simulation.stream import generate
from services.tools.workers import monitoring_env

ROOT = Path(__file__).resolve().parents[3]
# Few partitions: the workers start and rebalance faster on a shared 2-core machine, and every
# fault still lands on a multi-partition topic.
LAYOUT = TopicLayout(household_partitions=4, other_partitions=2)
CODEC = Codec.default()


class ScenarioFailed(AssertionError):
    """A check of a scenario did not hold; the message says which and with what counts."""


@dataclass
class Result:
    """One scenario's outcome: PASS/FAIL, the counts behind it, and the failed checks."""

    name: str
    counts: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)

    def render(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        counts = ", ".join(f"{k}={v}" for k, v in self.counts.items())
        lines = [f"{verdict} {self.name} ({self.seconds:.0f} s): {counts}"]
        lines += [f"    failed: {f}" for f in self.failures]
        return "\n".join(lines)


async def wait_for(
    condition: Callable[[], Awaitable[bool]] | Callable[[], bool],
    seconds: float,
    what: str,
    poll: float = 0.5,
    alive: Iterable[Worker] = (),
) -> None:
    """Poll `condition` until true; ScenarioFailed after `seconds` or when a worker died."""
    deadline = time.monotonic() + seconds
    while True:
        answer = condition()
        if asyncio.iscoroutine(answer):
            answer = await answer
        if answer:
            return
        for worker in alive:
            if not worker.running:
                raise ScenarioFailed(
                    f"{worker.name} exited ({worker.returncode}) while waiting for {what}; "
                    f"log: {worker.log_path}"
                )
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"timed out after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(poll)


class PrivateStack:
    """A broker and a PostgreSQL server of the harness's own, under `run_dir`."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        run_dir.chmod(0o755)  # PostgreSQL runs unprivileged when started as root
        self.kafka = LocalKafka(run_dir / "kafka", extra_config=QUICK_RESTART_CONFIG)
        self.postgres = LocalPostgres(run_dir / "postgres")

    def start(self) -> None:
        self.kafka.start(timeout=180)
        self.postgres.start(timeout=120)

    def stop(self) -> None:
        for stop in (self.kafka.stop, self.postgres.stop):
            try:
                stop()
            except Exception as exc:  # stop the other one anyway
                print(f"warning: stopping {stop.__self__}: {exc}", file=sys.stderr)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def database_url(self) -> str:
        return self.postgres.database_url

    @property
    def home(self) -> Path:
        return self.run_dir / "home"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a service of this stack gets (12-factor)."""
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.database_url,
            "SHOUWANG_HOME": str(self.home),
            "SHOUWANG_PARTITIONS": str(LAYOUT.household_partitions),
            "SHOUWANG_OTHER_PARTITIONS": str(LAYOUT.other_partitions),
            **personal_master_key_env(self.run_dir),
            **extra,
        }


class Worker:
    """A `shouwang <command>` child process that can be killed (-9) and started again."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def start(self) -> None:
        if self.running:
            return
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", *self.command],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def last_error(self) -> str:
        """The last line of the log naming an error or exception (for a FAIL message)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        found = [line for line in lines if "Error" in line or "Exception" in line]
        return found[-1][-300:] if found else ""

    def kill9(self) -> None:
        """SIGKILL, as a crash (or the OOM killer) would."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
            self.kills += 1

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self.process = None


def monitoring_worker(
    stack: PrivateStack,
    app_id: str,
    port: int | None = None,
    name: str = "monitoring",
    **extra: str,
) -> tuple[Worker, int]:
    """A monitoring worker (exactly-once, event clock so the output is a function of the log)
    and its web port (a free one when None); `extra` adds to or overrides the stack's
    environment."""
    if port is None:
        (port,) = free_ports(1)
    env = monitoring_env(stack.bootstrap, stack.home, app_id, port, base=stack.env(), **extra)
    return Worker(name, ["monitoring"], env, stack.run_dir), port


def projector_worker(stack: PrivateStack, group: str) -> Worker:
    return Worker(
        "projector", ["projector"], stack.env(SHOUWANG_PROJECTOR_GROUP=group), stack.run_dir
    )


def visits_worker(stack: PrivateStack, port: int, name: str = "visits", **extra: str) -> Worker:
    """The visits API on 127.0.0.1:`port`, telling refused clients to retry after one second
    (the scenarios' clients wait as told); `extra` adds to or overrides the stack's environment."""
    env = stack.env(
        SHOUWANG_VISITS_PORT=str(port),
        SHOUWANG_VISITS_HOST="127.0.0.1",
        SHOUWANG_VISITS_RETRY_AFTER_SECONDS="1",
        **extra,
    )
    return Worker(name, ["visits"], env, stack.run_dir)


def issue_feed_token(stack: PrivateStack) -> str:
    """A feed token for hardship reports, issued as an operator would (the CLI)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "tokens",
            "issue",
            "--kind",
            "feed",
            "--holder",
            "feed-overload",
            "--event-type",
            "HardshipReported",
        ],
        cwd=ROOT,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for line in done.stdout.splitlines():
        if line.startswith("token (shown once"):
            return line.rsplit(" ", 1)[-1]
    raise RuntimeError(f"no token in the output of `shouwang tokens issue`: {done.stdout!r}")


def hardship_template(seed: int) -> dict:
    """One simulated hardship report as the API takes it (server fields left out)."""
    for event in generate(SimulationParameters(seed=seed, scale=0.01)):
        if event.event_type == rec.HARDSHIP:
            record = to_json(event.record)
            return {k: v for k, v in record.items() if k not in SERVER_FIELDS}
    raise RuntimeError("the simulation produced no hardship report")


class HardshipClient:
    """Posts hardship reports to a running visits API as a department feed would."""

    def __init__(self, http: aiohttp.ClientSession, base: str, secret: str, template: dict):
        self.http, self.base, self.template = http, base, template
        self.headers = {"Authorization": f"Bearer {secret}"}

    async def ready(self) -> bool:
        try:
            async with self.http.get(f"{self.base}/readyz") as answer:
                return answer.status == 200
        except aiohttp.ClientError:
            return False

    async def post(self, event_id: str, household: str) -> tuple[str, str | None]:
        """(status or the client error's name, Retry-After) of one report."""
        body = {**self.template, "event_id": event_id, "household_id": household}
        try:
            async with self.http.post(
                f"{self.base}/v1/hardships", json=body, headers=self.headers
            ) as answer:
                await answer.read()
                return str(answer.status), answer.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError) as exc:
            return type(exc).__name__, None


def random_id(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng` (the scenario's seeded generator)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def household_events(port: int, household_id: str) -> int | None:
    """Events in the monitoring worker's state for a household (its view), None if unknown."""
    import json

    url = f"http://127.0.0.1:{port}/v1/households/{household_id}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(json.load(answer)["events"])
    except Exception:
        return None


async def read_topics(bootstrap: str, topics: Iterable[str]) -> list[Any]:
    """Every committed record of `topics`, from the beginning to the current end."""
    topics = list(topics)
    consumer = kafka_clients.consumer(
        bootstrap=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = await all_partitions(consumer, topics)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)  # last stable offset under read_committed
        records: list[Any] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for items in batch.values():
                records.extend(items)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        if remaining:
            raise ScenarioFailed(f"could not read {sorted(map(str, remaining))} to the end")
        return records
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def all_partitions(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics`, asking the broker when the consumer's metadata lacks one."""
    return [
        TopicPartition(t, p)
        for t in topics
        for p in sorted(consumer.partitions_for_topic(t) or await _partitions(consumer, t))
    ]


def duplicates(ids: Iterable[str]) -> int:
    """How many ids occur more than once (extra copies counted)."""
    return sum(n - 1 for n in Counter(ids).values() if n > 1)


async def run_replay_verify(
    stack: PrivateStack, household_prefix: str, seconds: float = 300
) -> tuple[int, str]:
    """`shouwang replay --verify` against the private stack for the households whose id starts
    with `household_prefix`: its exit code and last lines."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "replay",
        "--verify",
        "--household-prefix",
        household_prefix,
        cwd=ROOT,
        env=stack.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, f"replay --verify took over {seconds:.0f} s"
    text = output.decode(errors="replace").strip().splitlines()
    return process.returncode or 0, "\n".join(text[-8:])


def support_worker(stack: PrivateStack, app_id: str) -> Worker:
    """A support (matching) worker with the shipped catalogue."""
    return Worker("support", ["support"], stack.env(SHOUWANG_SUPPORT_APP_ID=app_id), stack.run_dir)


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> int:
    """The sum of the topics' end offsets: it stops moving when nobody writes to them."""
    consumer = kafka_clients.consumer(bootstrap=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await all_partitions(consumer, topics)
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def group_caught_up(bootstrap: str, group: str, topics: Iterable[str]) -> bool:
    """Whether `group` has committed every record of `topics` (False while the broker cannot
    tell: a coordinator still loading or moving)."""
    from aiokafka.errors import KafkaError

    admin = kafka_clients.admin(bootstrap, client_id="faults")
    consumer = kafka_clients.consumer(bootstrap=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = await all_partitions(consumer, topics)
        ends = await consumer.end_offsets(partitions)
    except KafkaError as exc:
        if not exc.retriable:
            raise
        return False
    finally:
        await consumer.stop()
        await admin.close()
    return all(
        ends[tp] == 0 or (tp in committed and committed[tp].offset >= ends[tp]) for tp in partitions
    )
