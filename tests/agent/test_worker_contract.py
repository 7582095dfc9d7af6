"""One error policy, two workers: monitoring's and support's household agents under faust's
test_context, held to the contract of `services.platform.kafka.worker`."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry

from services.contract.catalogue import DEFAULT_CATALOGUE, load_catalogue
from services.contract.codec import Codec
from services.contract.topics import DEAD_LETTERS, RISK, TopicLayout
from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.entrypoints.app import build_app as monitoring_app
from services.monitoring.metrics import MonitoringMetrics
from services.platform.kafka.worker import RecordingOutbox
from services.support.entrypoints.app import build_app as support_app
from services.support.entrypoints.app import pool_commands_topic
from services.support.metrics import SupportMetrics
from tests import records
from tests.seed_households import wu_chickens

CODEC = Codec.default()
NOW = records.at("2020-03-11")
HOUSEHOLD = "500231-wu"


@dataclass
class Subject:
    """One worker's household agent, its outbox, its dead-letter counter, what stopped it."""

    name: str
    agent: object
    outbox: RecordingOutbox
    registry: CollectorRegistry
    counter: str
    # Records that lead up to `record`, and `record`, which sends to `output` when applied.
    before: list[bytes]
    record: bytes
    output: str
    fatal: list[BaseException] = field(default_factory=list)
    in_flight: list = field(default_factory=list)  # events put without waiting
    acked_when_stopped: list[bool] = field(default_factory=list)

    def on_fatal(self, exc: BaseException) -> None:
        """What a worker does by exiting at once: here, note what was acked at that moment."""
        self.fatal.append(exc)
        self.acked_when_stopped = [event.message.acked for event in self.in_flight]

    def dead(self) -> list[dict]:
        return [CODEC.decode(v).record for v in self.outbox.values(DEAD_LETTERS.name)]

    def dead_letter_count(self, kind: str) -> float:
        samples = [
            s.value
            for metric in self.registry.collect()
            if metric.name + "_total" == self.counter
            for s in metric.samples
            if s.name == self.counter and s.labels.get("kind") == kind
        ]
        return sum(samples)


def monitoring(outbox: RecordingOutbox, registry: CollectorRegistry, on_fatal) -> Subject:
    app = monitoring_app(app_id=f"contract-monitoring-{uuid.uuid4().hex[:6]}",
                         bootstrap="127.0.0.1:9", codec=CODEC, policies=load_policies(),
                         metrics=MonitoringMetrics(registry),
                         layout=TopicLayout(household_partitions=2), clock=lambda: NOW,
                         outbox=outbox, on_fatal=on_fatal, retry_delays=(0.01, 0.01))  # fmt: skip
    first = CODEC.encode(*wu_chickens(HOUSEHOLD)[0])
    return Subject("monitoring", households_of(app), outbox, registry,
                   "shouwang_monitoring_dead_letters_total", [], first, RISK.name)  # fmt: skip


def support(outbox: RecordingOutbox, registry: CollectorRegistry, on_fatal) -> Subject:
    app_id = f"contract-support-{uuid.uuid4().hex[:6]}"
    app = support_app(app_id=app_id, bootstrap="127.0.0.1:9",
                      catalogue=load_catalogue(DEFAULT_CATALOGUE), codec=CODEC,
                      metrics=SupportMetrics(registry), layout=TopicLayout(household_partitions=2),
                      clock=lambda: NOW, outbox=outbox, on_fatal=on_fatal,
                      retry_delays=(0.01, 0.01))  # fmt: skip
    baseline = CODEC.encode(*records.registry(HOUSEHOLD, records.at("2020-01-10"), labour=1))
    risk = CODEC.encode(*records.risk(HOUSEHOLD, NOW))
    # A monitored household needs a pairing cadre: its need goes to the pairing pool's owner.
    return Subject("support", households_of(app), outbox, registry,
                   "shouwang_support_dead_letters_total", [baseline], risk,
                   pool_commands_topic(app_id))  # fmt: skip


def households_of(app):
    app.finalize()
    return next(a for name, a in app.agents.items() if name.endswith(".households"))


@pytest.fixture(params=[monitoring, support], ids=["monitoring", "support"])
def subject(request) -> Subject:
    fatal: list[Callable[[BaseException], None]] = []
    made = request.param(RecordingOutbox(), CollectorRegistry(), lambda exc: fatal[0](exc))
    fatal.append(made.on_fatal)
    return made


async def put(context, value: bytes, key: bytes = HOUSEHOLD.encode()):
    return await context.put(value, key=key)


async def until(condition: Callable[[], object], seconds: float = 10.0) -> None:
    """Wait for `condition` with a deadline: `put` returns once the agent has taken the record,
    not once it is done with it (a retry waits for its backoff)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_an_undecodable_record_is_dead_lettered_with_its_reason(subject: Subject):
    async with subject.agent.test_context() as context:
        await put(context, b"not avro at all")
        await put(context, b"\xc3\x01" + b"\x00" * 8 + b"x")
        for value in subject.before:
            await put(context, value)
        await put(context, subject.record)  # the next record is processed
    dead = subject.dead()
    assert [d["error_kind"] for d in dead] == ["UNDECODABLE", "UNKNOWN_SCHEMA"]
    assert all(d["error"] for d in dead)  # each says why
    assert dead[0]["original_value"] == b"not avro at all"
    assert dead[0]["original_key"] == HOUSEHOLD.encode()
    assert dead[0]["actor"] == subject.name
    assert subject.outbox.values(subject.output)
    assert subject.dead_letter_count("UNDECODABLE") == 1
    assert subject.fatal == []


async def test_a_record_that_cannot_apply_is_dead_lettered(subject: Subject):
    async with subject.agent.test_context() as context:
        await put(context, subject.record, key=b"someone-else")
    (dead,) = subject.dead()
    assert dead["error_kind"] == "NOT_APPLICABLE" and "not the household id" in dead["error"]
    assert dead["original_value"] == subject.record
    assert subject.outbox.values(subject.output) == []
    assert subject.dead_letter_count("NOT_APPLICABLE") == 1
    assert subject.fatal == []


async def test_a_transient_broker_error_is_retried_and_never_dead_lettered(subject: Subject):
    subject.outbox.fail_next(subject.output, KafkaConnectionError("broker blinked"))
    async with subject.agent.test_context() as context:
        for value in subject.before:
            await put(context, value)
        await put(context, subject.record)
        await until(lambda: subject.outbox.values(subject.output))
    assert subject.outbox.attempts.count(subject.output) > len(
        subject.outbox.values(subject.output)
    )  # the failed send was tried again ...
    assert subject.outbox.values(subject.output)  # ... and went through
    assert subject.dead() == [] and subject.fatal == []


async def test_a_transient_error_that_persists_stops_the_worker_without_dead_letter(
    subject: Subject,
):
    subject.outbox.fail_next(subject.output, KafkaConnectionError("broker gone"), times=100)
    async with subject.agent.test_context() as context:
        for value in subject.before:
            await put(context, value)
        with contextlib.suppress(KafkaConnectionError):
            await put(context, subject.record)
            await until(lambda: subject.fatal)
    assert [type(e) for e in subject.fatal] == [KafkaConnectionError]
    assert subject.outbox.attempts.count(subject.output) == 3  # first try and two retries
    assert subject.dead() == []


async def test_an_unexpected_exception_stops_the_worker_and_the_record_is_not_committed(
    subject: Subject,
):
    subject.outbox.fail_next(subject.output, RuntimeError("a bug of ours"))
    async with subject.agent.test_context() as context:
        for value in subject.before:
            await put(context, value)
        event = await context.put(subject.record, key=HOUSEHOLD.encode(), wait=False)
        subject.in_flight.append(event)
        await until(lambda: subject.fatal)
    # In a worker `on_fatal` exits the process there and then: faust never acks the record,
    # so its offset is not committed and it is read again after the restart.
    assert subject.acked_when_stopped == [False]
    assert [type(e) for e in subject.fatal] == [RuntimeError]
    assert subject.outbox.attempts.count(subject.output) == 1  # a bug is not retried
    assert subject.dead() == []
