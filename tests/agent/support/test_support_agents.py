"""Support's three agents under faust's test_context: profiles planned into pool commands,
cadres routed to their pairing pool, pools deciding, each with an injected clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry

from services.contract.catalogue import DEFAULT_CATALOGUE, load_catalogue
from services.contract.codec import Codec
from services.contract.topics import DEAD_LETTERS, SUPPORT_MEASURES, TopicLayout
from services.platform.kafka.worker import RecordingOutbox
from services.support.adapters.pool_codec import dump_command, load_command
from services.support.domain.matcher import Cadre, plan
from services.support.domain.pool_commands import (
    AllocateNeed,
    ReleaseMeasure,
    UpdateCadre,
)
from services.support.entrypoints.app import build_app, pool_commands_topic
from services.support.metrics import SupportMetrics
from tests.records import at, cadre, measure, registry
from tests.records import risk as assessed
from tests.unit.support.households import household

CODEC = Codec.default()
CATALOGUE = load_catalogue(DEFAULT_CATALOGUE)
NOW = at("2020-05-16", 21)
HOUSEHOLD = "500231-wu"


class Harness:
    def __init__(self):
        self.outbox = RecordingOutbox()
        self.registry = CollectorRegistry()
        self.fatal: list[BaseException] = []
        self.app_id = f"support-agent-{uuid.uuid4().hex[:6]}"
        app = build_app(app_id=self.app_id, bootstrap="127.0.0.1:9", catalogue=CATALOGUE,
                        codec=CODEC, metrics=SupportMetrics(self.registry),
                        layout=TopicLayout(household_partitions=2), clock=lambda: NOW,
                        outbox=self.outbox, on_fatal=self.fatal.append,
                        retry_delays=(0.01, 0.01))  # fmt: skip
        app.finalize()
        self.agents = {name.rsplit(".", 1)[-1]: agent for name, agent in app.agents.items()}

    def pool_commands(self) -> list[tuple[str, object]]:
        topic = pool_commands_topic(self.app_id)
        return [(k.decode(), load_command(v)) for t, k, v in self.outbox.sent if t == topic]

    def steps(self) -> list[dict]:
        return [CODEC.decode(v).record for v in self.outbox.values(SUPPORT_MEASURES.name)]

    def dead(self) -> list[dict]:
        return [CODEC.decode(v).record for v in self.outbox.values(DEAD_LETTERS.name)]


async def until(condition: Callable[[], object], seconds: float = 10.0) -> None:
    """Wait for `condition` with a deadline (a retry waits for its backoff)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
def harness() -> Harness:
    return Harness()


def risk(label: str | None = None) -> bytes:
    """Monitoring's assessment of the household: monitored, high risk (a new event per label)."""
    return CODEC.encode(*assessed(HOUSEHOLD, NOW, label=label))


async def test_a_monitored_household_sends_its_needs_to_their_pools(harness: Harness):
    async with harness.agents["households"].test_context() as context:
        baseline = CODEC.encode(*registry(HOUSEHOLD, at("2020-01-10")))
        await context.put(baseline, key=HOUSEHOLD.encode())
        assert harness.pool_commands() == [] and harness.steps() == []  # not monitored yet
        await context.put(risk(), key=HOUSEHOLD.encode())
        await context.put(risk("risk/again"), key=HOUSEHOLD.encode())  # nothing new to ask for
    commands = harness.pool_commands()
    assert commands and all(isinstance(c, AllocateNeed) for _, c in commands)
    assert all(pool == c.need.pool for pool, c in commands)
    assert "township:鹤游镇:pairing" in [pool for pool, _ in commands]
    unpooled = harness.steps()  # needs without a capacity limit are recommended at once
    assert all(s["waiting_for"] is None and s["recorded_at"] == NOW for s in unpooled)
    assert len({c.need.measure_id for _, c in commands}) == len(commands)
    assert harness.dead() == [] and harness.fatal == []


async def test_a_cadre_goes_to_the_pairing_pool_of_their_township(harness: Harness):
    async with harness.agents["cadres"].test_context() as context:
        await context.put(CODEC.encode(*cadre("c-1", NOW)), key=b"c-1")
    assert harness.pool_commands() == [
        ("township:鹤游镇:pairing", UpdateCadre(Cadre("c-1", "鹤游镇", "水井村", "town", 6)))
    ]


async def test_a_pool_decides_releases_and_refuses_a_pool_it_does_not_know(harness: Harness):
    need = next(
        n for n in plan(household(HOUSEHOLD), CATALOGUE) if n.pool == "township:鹤游镇:pairing"
    )
    cadre = UpdateCadre(Cadre("c-1", "鹤游镇", "水井村", "town", 6))
    async with harness.agents["pool_owner"].test_context() as context:
        pool = need.pool.encode()
        await context.put(dump_command(cadre), key=pool)
        await context.put(dump_command(AllocateNeed(need)), key=pool)
        await context.put(dump_command(AllocateNeed(need)), key=pool)  # redelivered
        await context.put(dump_command(ReleaseMeasure(need.measure_id, "COMPLETED")), key=pool)
        await context.put(dump_command(AllocateNeed(need)), key=b"county:no-such-pool")
    first, again = harness.steps()
    assert first == again and first["cadre_id"] == "c-1" and first["recorded_at"] == NOW
    (dead,) = harness.dead()
    assert dead["error_kind"] == "NOT_APPLICABLE" and "no-such-pool" in dead["error"]
    assert (
        harness.registry.get_sample_value("shouwang_support_releases_total", {"step": "COMPLETED"})
        == 1
    )
    assert (
        harness.registry.get_sample_value(
            "shouwang_support_pool_used", {"pool": "township:鹤游镇:pairing"}
        )
        == 0
    )


async def test_a_release_the_catalogue_cannot_place_is_dead_lettered_and_the_rest_applies(
    harness: Harness,
):
    unknown = measure(HOUSEHOLD, at("2020-05-16"), "m-x", "COMPLETED", catalogue_id="no.such")
    unknown[1]["pool"] = "township:鹤游镇:industry-poultry"
    async with harness.agents["households"].test_context() as context:
        await context.put(
            CODEC.encode(*registry(HOUSEHOLD, at("2020-01-10"))), key=HOUSEHOLD.encode()
        )
        await context.put(risk(), key=HOUSEHOLD.encode())
        planned = len(harness.pool_commands())
        await context.put(CODEC.encode(*unknown), key=HOUSEHOLD.encode())
    (dead,) = harness.dead()
    assert dead["error_kind"] == "NOT_APPLICABLE" and "no.such" in dead["error"]
    assert len(harness.pool_commands()) == planned  # no release sent; nothing asked twice
    assert harness.fatal == []


async def test_a_release_retried_after_a_broker_error_still_promotes_the_next_in_line(
    harness: Harness,
):
    from aiokafka.errors import KafkaConnectionError

    jobs = "township:鹤游镇:industry-livestock"  # 30 slots
    needs = [
        next(n for n in plan(household(f"h-{i}"), CATALOGUE) if n.pool == jobs) for i in range(2)
    ]
    capacity = CATALOGUE.capacity(jobs)
    async with harness.agents["pool_owner"].test_context() as context:
        # The first takes a slot, fillers take the rest, so the second waits.
        await context.put(dump_command(AllocateNeed(needs[0])), key=jobs.encode())
        for i in range(capacity - 1):
            filler = replace(needs[0], measure_id=f"filler-{i}", household_id=f"f-{i}")
            await context.put(dump_command(AllocateNeed(filler)), key=jobs.encode())
        await context.put(dump_command(AllocateNeed(needs[1])), key=jobs.encode())
        assert harness.steps()[-1]["waiting_for"] == jobs
        harness.outbox.fail_next(SUPPORT_MEASURES.name, KafkaConnectionError("blink"))
        release = ReleaseMeasure(needs[0].measure_id, "CANCELLED")
        await context.put(dump_command(release), key=jobs.encode())
        await until(lambda: harness.steps()[-1]["waiting_for"] is None)
    promoted = harness.steps()[-1]
    assert promoted["household_id"] == needs[1].household_id
    assert harness.dead() == [] and harness.fatal == []


async def test_records_that_are_not_pool_commands_are_dead_lettered_and_the_pool_goes_on(
    harness: Harness,
):
    need = next(
        n for n in plan(household(HOUSEHOLD), CATALOGUE) if n.pool == "township:鹤游镇:pairing"
    )
    other = next(n for n in plan(household(HOUSEHOLD), CATALOGUE) if n.pool != need.pool)
    pool = need.pool.encode()
    async with harness.agents["pool_owner"].test_context() as context:
        await context.put(b"not json", key=pool)
        await context.put(b'{"neeed": 1}', key=pool)  # a field this code does not know
        await context.put(b'{"release": "m-1"}', key=pool)  # a release without its step
        await context.put(dump_command(AllocateNeed(other)), key=pool)  # another pool's need
        await context.put(dump_command(AllocateNeed(need)), key=b"\xff\xfe")  # no pool's name
        await context.put(dump_command(UpdateCadre(Cadre("c-1", "鹤游镇", "水井村", "town", 6))),
                          key=pool)  # fmt: skip
        await context.put(dump_command(AllocateNeed(need)), key=pool)
    assert harness.fatal == []
    kinds = [(d["error_kind"], d["origin_offset"]) for d in harness.dead()]
    assert kinds == [
        ("UNDECODABLE", 0),
        ("UNDECODABLE", 1),
        ("UNDECODABLE", 2),
        ("NOT_APPLICABLE", 3),
        ("NOT_APPLICABLE", 4),
    ]
    (step,) = harness.steps()  # the good records after them still applied
    assert step["cadre_id"] == "c-1" and step["measure_id"] == need.measure_id


async def test_an_eliminated_households_releases_are_recorded_once_as_cancelled_steps(
    harness: Harness,
):
    from aiokafka.errors import KafkaConnectionError

    eliminated = CODEC.encode(*assessed(HOUSEHOLD, at("2020-06-15"), workflow="ELIMINATED",
                                        label="eliminated"))  # fmt: skip
    async with harness.agents["households"].test_context() as context:
        await context.put(
            CODEC.encode(*registry(HOUSEHOLD, at("2020-01-10"))), key=HOUSEHOLD.encode()
        )
        await context.put(risk(), key=HOUSEHOLD.encode())
        booked = {c.need.measure_id: c.need for _, c in harness.pool_commands()}
        # The first CANCELLED send meets a broker blink: the record is retried from the row as
        # it was, and the retry records the same steps.
        harness.outbox.fail_next(SUPPORT_MEASURES.name, KafkaConnectionError("blink"))
        await context.put(eliminated, key=HOUSEHOLD.encode())
        await until(lambda: len(cancelled(harness)) >= len(booked))
        await context.put(eliminated, key=HOUSEHOLD.encode())  # redelivered: nothing more
    steps = cancelled(harness)
    assert sorted(s["measure_id"] for s in steps) == sorted(booked)  # each once
    released = {c.measure_id: c.reason for _, c in harness.pool_commands()
                if isinstance(c, ReleaseMeasure)}  # fmt: skip
    for step in steps:
        need = booked[step["measure_id"]]
        assert (step["pool"], step["catalogue_id"], step["measure_type"]) == (
            need.pool, need.catalogue_id, need.measure_type)  # fmt: skip
        assert step["reasons"] == [released[step["measure_id"]]]
        assert "household ELIMINATED as of 2020-06-15" in step["reasons"][0]
        assert step["actor"] == "support" and step["recorded_at"] == NOW
    assert harness.dead() == [] and harness.fatal == []
    counted = sum(
        harness.registry.get_sample_value(
            "shouwang_support_cancellations_total", {"measure_type": t}
        )
        or 0
        for t in {n.measure_type for n in booked.values()}
    )
    assert counted == len(booked)


def cancelled(harness: Harness) -> list[dict]:
    return [s for s in harness.steps() if s["step"] == "CANCELLED"]
