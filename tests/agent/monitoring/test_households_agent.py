"""The monitoring agent under faust's test_context: frames in, assessments and dead letters out."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta
from itertools import count

import pytest
from prometheus_client import CollectorRegistry

from services.contract.codec import Codec
from services.contract.topics import DEAD_LETTERS, RISK, TopicLayout
from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.entrypoints.app import build_app
from services.monitoring.metrics import MonitoringMetrics
from services.platform.kafka.worker import RecordingOutbox
from tests.records import at, review
from tests.seed_households import wu_chickens, wu_sales_aid, zhou_uremia

CODEC = Codec.default()


class Outbox(RecordingOutbox):
    def records(self, topic: str) -> list[dict]:
        return [CODEC.decode(v).record for v in self.values(topic)]


@pytest.fixture
def harness():
    now = {"at": at("2020-05-16", 21)}
    return (*_agent(lambda: now["at"]), now)


def _agent(clock):
    outbox = Outbox()
    registry = CollectorRegistry()
    app = build_app(
        app_id=f"monitoring-agent-{uuid.uuid4().hex[:6]}",
        bootstrap="127.0.0.1:9",
        codec=CODEC,
        policies=load_policies(),
        metrics=MonitoringMetrics(registry),
        layout=TopicLayout(household_partitions=2),
        clock=clock,
        outbox=outbox,
        on_fatal=lambda exc: None,  # the agent re-raises, the test fails; pytest goes on
    )
    app.finalize()
    agent = next(a for name, a in app.agents.items() if name.endswith(".households"))
    return agent, outbox, registry


async def put_all(context, records):
    for event_type, record in records:
        await context.put(CODEC.encode(event_type, record), key=record["household_id"].encode())


async def test_seed_household_is_assessed_and_emitted_only_on_change(harness):
    agent, outbox, registry, _ = harness
    async with agent.test_context() as context:
        await put_all(context, zhou_uremia())
    emitted = outbox.records(RISK.name)
    assert 1 <= len(emitted) < len(zhou_uremia())  # not one per event
    last = emitted[-1]
    assert (last["level"], last["category"], last["workflow"]) == (
        "HIGH",
        "UNSTABLE_LIFTED",
        "FLAGGED",
    )
    assert last["policy_version"] == "dianjiang-2020"
    assert len(last["chain_hash"]) == 64
    assert len({str(r["event_id"]) for r in emitted}) == len(emitted)
    applied = registry.get_sample_value(
        "shouwang_monitoring_events_applied_total", {"event_type": "VisitRecorded"}
    )
    assert applied == 1


async def test_redelivered_event_changes_nothing_and_re_emits_the_same_id(harness):
    agent, outbox, registry, _ = harness
    records = wu_chickens()
    async with agent.test_context() as context:
        await put_all(context, records)
        before = outbox.records(RISK.name)
        await put_all(context, records[-1:])
    after = outbox.records(RISK.name)
    assert len(after) == len(before) + 1
    assert after[-1]["event_id"] == before[-1]["event_id"]
    assert after[-1]["workflow"] == before[-1]["workflow"]
    duplicates = registry.get_sample_value(
        "shouwang_monitoring_duplicate_events_total", {"event_type": "VisitRecorded"}
    )
    assert duplicates == 1


async def test_assessment_changes_when_aid_and_decisions_arrive(harness):
    agent, outbox, _, now = harness
    now["at"] = at("2020-03-21")
    async with agent.test_context() as context:
        await put_all(context, wu_chickens())
        assert outbox.records(RISK.name)[-1]["workflow"] == "FLAGGED"
        await put_all(context, wu_sales_aid())
        assert outbox.records(RISK.name)[-1]["workflow"] == "NOT_FLAGGED"
        await put_all(context, [review("500231-wu", at("2020-03-21"), "START_VERIFICATION")])
        assert outbox.records(RISK.name)[-1]["workflow"] == "VERIFYING"


async def test_poison_records_are_dead_lettered_and_the_next_record_is_processed(harness):
    agent, outbox, registry, _ = harness
    zhou = zhou_uremia()
    frame = CODEC.encode(*zhou[0])
    async with agent.test_context() as context:
        await context.put(b"not avro at all", key=b"500231-zhou")
        await context.put(b"\xc3\x01" + b"\x00" * 8 + b"x", key=b"500231-zhou")
        await context.put(frame, key=b"someone-else")
        await context.put(CODEC.encode(*zhou[1])[:-3], key=b"500231-zhou")
        await put_all(context, zhou)
    dead = outbox.records(DEAD_LETTERS.name)
    assert [d["error_kind"] for d in dead] == [
        "UNDECODABLE",
        "UNKNOWN_SCHEMA",
        "NOT_APPLICABLE",
        "UNDECODABLE",
    ]
    assert dead[0]["original_value"] == b"not avro at all"
    assert dead[2]["original_value"] == frame and "not the household id" in dead[2]["error"]
    assert outbox.records(RISK.name)[-1]["level"] == "HIGH"
    assert (
        registry.get_sample_value(
            "shouwang_monitoring_dead_letters_total", {"kind": "UNDECODABLE", "topic": "<internal>"}
        )
        == 2
    )


async def test_a_record_monitoring_does_not_consume_is_dead_lettered_as_invalid(harness):
    agent, outbox, _, _ = harness
    async with agent.test_context() as context:
        await put_all(context, wu_chickens())
        risk = outbox.sent[-1][2]
        await context.put(risk, key=b"500231-wu")
    (dead,) = outbox.records(DEAD_LETTERS.name)
    assert dead["error_kind"] == "INVALID" and "RiskAssessed" in dead["error"]


async def test_an_unexpected_error_stops_the_worker_without_dead_letter():
    outbox = Outbox()
    outbox.fail_next(RISK.name, RuntimeError("broker said no"))
    fatal: list[BaseException] = []
    agent = households_agent(outbox, fatal.append, (0.01, 0.01))
    records = wu_chickens()
    async with agent.test_context() as context:
        # In a worker `on_fatal` exits the process; here it records, and the agent re-raises.
        with contextlib.suppress(RuntimeError):
            await put_all(context, records)
    assert [type(exc) for exc in fatal] == [RuntimeError]
    assert outbox.attempts.count(RISK.name) == 1  # a bug is not retried
    # not the record's fault: not dead-lettered, read again after the restart
    assert outbox.records(DEAD_LETTERS.name) == []


async def test_transient_errors_are_retried_then_the_process_gives_up_without_dead_letter():
    from aiokafka.errors import KafkaConnectionError

    outbox = Outbox()
    outbox.fail_next(RISK.name, KafkaConnectionError("broker gone"), times=10)
    fatal: list[BaseException] = []
    gave_up = asyncio.Event()

    def on_fatal(exc: BaseException) -> None:
        fatal.append(exc)
        gave_up.set()

    agent = households_agent(outbox, on_fatal, (0.01, 0.01))
    async with agent.test_context() as context:
        # In a worker `on_fatal` exits the process; here it records, and the agent re-raises.
        with contextlib.suppress(KafkaConnectionError):
            await put_all(context, wu_chickens()[:1])
            await asyncio.wait_for(gave_up.wait(), 10)
    assert outbox.attempts.count(RISK.name) == 3 and len(fatal) == 1
    assert outbox.records(DEAD_LETTERS.name) == []  # not the record's fault: not dead-lettered


def households_agent(outbox, on_fatal, retry_delays):
    app = build_app(
        app_id=f"monitoring-agent-{uuid.uuid4().hex[:6]}",
        bootstrap="127.0.0.1:9",
        codec=CODEC,
        policies=load_policies(),
        metrics=MonitoringMetrics(CollectorRegistry()),
        layout=TopicLayout(household_partitions=2),
        clock=lambda: at("2020-03-11"),
        outbox=outbox,
        on_fatal=on_fatal,
        retry_delays=retry_delays,
    )
    app.finalize()
    return next(a for name, a in app.agents.items() if name.endswith(".households"))


async def test_a_deadline_tick_emits_the_overdue_signal(harness):
    agent, outbox, _, now = harness
    app = agent.app
    ticks = next(a for name, a in app.agents.items() if name.endswith(".deadline_ticks"))
    now["at"] = at("2020-03-11")
    async with agent.test_context() as context:
        await put_all(context, wu_chickens())
    assert outbox.records(RISK.name)[-1]["overdue"] == []
    now["at"] = at("2020-03-30")  # 15 days after the flag, no decision
    async with ticks.test_context() as context:
        await context.put(b"tick", key=b"500231-wu")
        await context.put(b"tick", key=b"500231-unknown")  # no row: nothing to do
    latest = outbox.records(RISK.name)[-1]
    assert latest["overdue"] == ["decision_overdue"] and latest["workflow"] == "FLAGGED"


async def until(condition, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_records_at_hand_are_one_batch_assessed_once_per_household(harness):
    agent, outbox, registry, _ = harness
    zhou, wu = zhou_uremia(), wu_chickens()
    async with agent.test_context() as context:
        # put without waiting: every record is in the stream's queue before the agent runs
        events = []
        for event_type, record in [*zhou, *wu]:
            frame = CODEC.encode(event_type, record)
            key = record["household_id"].encode()
            events.append(await context.put(frame, key=key, wait=False))
        await until(lambda: all(event.message.acked for event in events))
    emitted = outbox.records(RISK.name)
    # one assessment per household of the batch: its state after all its records
    assert sorted(r["household_id"] for r in emitted) == ["500231-wu", "500231-zhou"]
    zhou_last = next(r for r in emitted if r["household_id"] == "500231-zhou")
    assert (zhou_last["level"], zhou_last["workflow"]) == ("HIGH", "FLAGGED")
    applied = sum(
        registry.get_sample_value("shouwang_monitoring_events_applied_total", {"event_type": name})
        or 0
        for name in {t.rsplit(".", 1)[-1] for t, _ in [*zhou, *wu]}
    )
    assert applied == len(zhou) + len(wu)


async def test_each_household_of_a_batch_is_assessed_at_its_own_moment():
    # A catching-up batch of thousands takes seconds: a household assessed late in it carries
    # the clock of its own assessment, not the batch's start.
    start, readings = at("2020-05-16", 21), count()
    agent, outbox, _ = _agent(lambda: start + timedelta(seconds=next(readings)))
    async with agent.test_context() as context:
        events = []
        for event_type, record in [*zhou_uremia(), *wu_chickens()]:
            key = record["household_id"].encode()
            events.append(await context.put(CODEC.encode(event_type, record), key=key, wait=False))
        await until(lambda: all(event.message.acked for event in events))
    emitted = outbox.records(RISK.name)
    assert sorted(r["household_id"] for r in emitted) == ["500231-wu", "500231-zhou"]
    assert len({r["recorded_at"] for r in emitted}) == 2


async def test_a_poison_record_is_dead_lettered_alone_and_its_batch_applied(harness):
    agent, outbox, _, _ = harness
    zhou = zhou_uremia()
    frames = [CODEC.encode(*r) for r in zhou]
    async with agent.test_context() as context:
        events = [await context.put(frames[0], key=b"500231-zhou", wait=False)]
        events.append(await context.put(b"not avro at all", key=b"500231-zhou", wait=False))
        events.append(await context.put(frames[1], key=b"someone-else", wait=False))
        for frame in frames[1:]:
            events.append(await context.put(frame, key=b"500231-zhou", wait=False))
        await until(lambda: all(event.message.acked for event in events))
    dead = outbox.records(DEAD_LETTERS.name)
    assert [d["error_kind"] for d in dead] == ["UNDECODABLE", "NOT_APPLICABLE"]
    (emitted,) = outbox.records(RISK.name)
    assert (emitted["level"], emitted["workflow"]) == ("HIGH", "FLAGGED")


async def test_a_bug_in_the_batch_step_stops_the_worker_without_acking_the_batch(monkeypatch):
    from services.monitoring.entrypoints import app as monitoring_app

    def broken(*args, **kwargs):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(monitoring_app, "apply_records", broken)
    outbox = Outbox()
    fatal: list[BaseException] = []
    acked: list[bool] = []
    events: list = []

    def on_fatal(exc: BaseException) -> None:  # a worker exits here, before any ack
        fatal.append(exc)
        acked.extend(event.message.acked for event in events)

    agent = households_agent(outbox, on_fatal, (0.01, 0.01))
    async with agent.test_context() as context:
        with contextlib.suppress(RuntimeError):
            for event_type, record in wu_chickens():
                frame = CODEC.encode(event_type, record)
                events.append(await context.put(frame, key=b"500231-wu", wait=False))
            await until(lambda: fatal)
    assert [type(exc) for exc in fatal] == [RuntimeError]
    assert acked and not any(acked)
    assert outbox.records(DEAD_LETTERS.name) == [] and outbox.records(RISK.name) == []
