"""Scenario "poison": garbage and impossible records on every input topic the monitoring worker
reads, and a hypothesis fuzz of the contract decoder.

Fuzz: whatever the bytes (random, a known header with a random body, a valid frame truncated or
with a flipped byte), `Codec.decode` returns a record or raises CorruptFrame, nothing else.

Live: for each input topic, a household gets a valid registry record, then poison on that
topic under its key (random bytes, an empty value, a truncated frame, a known header with a
garbage body, another type's frame), then one valid record of the topic's type. Afterwards
every poison record is in the dead-letter topic with its origin (topic, partition, offset) and
a reason, and the household's state in the worker counts exactly its valid records: the
record after the poison was processed. Records valid in Avro but impossible in the domain (a
household of -1 members, a review decision for a household nobody registered) are sent too and
their fate is reported: dead-lettered, or applied (a finding).
"""

from __future__ import annotations

import copy
import random
import time
import uuid
from typing import Any

from services.contract.codec import HEADER_LENGTH, MAGIC
from services.contract.errors import CorruptFrame
from services.contract.inputs import MONITORING_INPUTS
from services.contract.topics import DEAD_LETTERS, HOUSEHOLD_REGISTRY, REVIEWS
from services.platform.kafka import clients as kafka_clients
from services.platform.kafka.admin import ensure_topics
from services.tools.faults.crashes import MONITORING_APP, PROJECTOR_GROUP
from services.tools.faults.load import PROJECTED, expected_projection, projected_counts
from services.tools.faults.observe import CODEC, household_events, read_topics
from services.tools.faults.processes import monitoring_worker, projector_worker
from services.tools.faults.stack import LAYOUT, PrivateStack
from services.tools.faults.verdict import Result, wait_for
from services.tools.simulation.parameters import SimulationParameters
from services.tools.simulation.stream import generate

REGISTRY_TYPE = HOUSEHOLD_REGISTRY.event_type
# Valid records the domain accepts before their context exists: a review decision whose
# household's registry record has not arrived yet is kept (late-syncing registries and
# devices are normal, DOMAIN.md), and counts once the registry arrives.
HELD = {"decision-for-unknown-household"}


def sample_records() -> dict[str, dict[str, Any]]:
    """One valid record of each event type, from a tiny simulated campaign."""
    samples: dict[str, dict[str, Any]] = {}
    for event in generate(SimulationParameters(seed=7, scale=0.01)):
        samples.setdefault(event.event_type, event.record)
    return samples


def for_household(record: dict[str, Any], household_id: str) -> dict[str, Any]:
    """A copy of `record` for another household, with a fresh event id."""
    copied = copy.deepcopy(record)
    copied["household_id"] = household_id
    copied["event_id"] = str(uuid.uuid4())
    if "measure_id" in copied:
        copied["measure_id"] = f"{household_id}-m1"
    if "problem_id" in copied:
        copied["problem_id"] = f"{household_id}-p1"
    return copied


def garbage_frames(event_type: str, valid: bytes, other: bytes, rng: random.Random) -> list:
    """(label, bytes) of records no decoder should accept for `event_type`'s topic."""
    version = CODEC.registry.schema(event_type)
    return [
        ("random-bytes", rng.randbytes(rng.randint(1, 64))),
        ("empty", b""),
        ("truncated-frame", valid[: max(HEADER_LENGTH + 1, len(valid) // 2)]),
        ("header-garbage-body", MAGIC + version.fingerprint + b"\xff" * 9 + rng.randbytes(8)),
        ("unknown-fingerprint", MAGIC + rng.randbytes(8) + valid[HEADER_LENGTH:]),
        ("other-type-frame", other),
    ]


def fuzz_decoder(examples: int) -> dict[str, int]:
    """Hypothesis over the decoder; returns counts by outcome, raises on any other exception."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    samples = sample_records()
    frames = [CODEC.encode(t, r) for t, r in samples.items()]
    fingerprints = [v.fingerprint for v in CODEC.registry.by_fingerprint.values()]
    outcomes = {"decoded": 0, "corrupt": 0}

    def attempt(data: bytes) -> None:
        try:
            CODEC.decode(data)
        except CorruptFrame:
            outcomes["corrupt"] += 1
        else:
            outcomes["decoded"] += 1

    mutated = st.tuples(st.sampled_from(frames), st.integers(0, 10_000), st.integers(1, 255)).map(
        lambda t: (
            t[0][: t[1] % len(t[0])]
            + bytes([t[0][t[1] % len(t[0])] ^ t[2]])
            + t[0][t[1] % len(t[0]) + 1 :]
        )
    )
    truncated = st.tuples(st.sampled_from(frames), st.integers(0, 10_000)).map(
        lambda t: t[0][: t[1] % len(t[0])]
    )
    headed = st.tuples(st.sampled_from(fingerprints), st.binary(max_size=512)).map(
        lambda t: MAGIC + t[0] + t[1]
    )
    anything = st.one_of(st.binary(max_size=512), headed, truncated, mutated)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(anything)
    def decoder_never_crashes(data: bytes) -> None:
        attempt(data)

    decoder_never_crashes()
    return outcomes


async def run(stack: PrivateStack, quick: bool, seed: int) -> Result:
    result = Result("poison")
    started = time.monotonic()
    rng = random.Random(seed)
    try:
        outcomes = fuzz_decoder(300 if quick else 3000)
        result.counts["fuzz_decoded"] = outcomes["decoded"]
        result.counts["fuzz_corrupt_frames"] = outcomes["corrupt"]
    except Exception as exc:  # hypothesis re-raises the falsifying example's exception
        result.failures.append(f"decoder fuzz: {type(exc).__name__}: {exc}"[:500])

    await ensure_topics(stack.bootstrap, LAYOUT)
    prefix = f"poison-{uuid.uuid4().hex[:6]}"
    worker, port = monitoring_worker(stack, MONITORING_APP)
    samples = sample_records()
    producer = kafka_clients.producer(stack.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    poisoned: dict[tuple[str, int, int], str] = {}  # (topic, partition, offset) -> label
    expected_events: dict[str, int] = {}
    impossible: dict[str, tuple[str, int, int]] = {}
    projector = projector_worker(stack, PROJECTOR_GROUP)
    try:
        worker.start()
        projector.start()

        async def send(topic: str, key: str, value: bytes) -> tuple[str, int, int]:
            meta = await producer.send_and_wait(topic, value, key=key.encode())
            return (meta.topic, meta.partition, meta.offset)

        for n, topic in enumerate(MONITORING_INPUTS):
            household = f"{prefix}-{n}"
            registry = for_household(samples[REGISTRY_TYPE], household)
            await send(HOUSEHOLD_REGISTRY.name, household, CODEC.encode(REGISTRY_TYPE, registry))
            valid = for_household(samples[topic.event_type], household)
            frame = CODEC.encode(topic.event_type, valid)
            other_type = next(
                t for t, r in samples.items() if t != topic.event_type and "household_id" in r
            )
            other = CODEC.encode(other_type, for_household(samples[other_type], household))
            for label, value in garbage_frames(topic.event_type, frame, other, rng):
                poisoned[await send(topic.name, household, value)] = label
            await send(topic.name, household, frame)
            expected_events[household] = 2  # the registry baseline and the valid record

        # Valid Avro, impossible in the domain.
        negative = for_household(samples[REGISTRY_TYPE], f"{prefix}-negative")
        negative["members"] = {**negative["members"], "count": -3, "labour": -1}
        impossible["negative-members"] = await send(
            HOUSEHOLD_REGISTRY.name, negative["household_id"], CODEC.encode(REGISTRY_TYPE, negative)
        )
        stranger = for_household(samples[REVIEWS.event_type], f"{prefix}-unregistered")
        impossible["decision-for-unknown-household"] = await send(
            REVIEWS.name, stranger["household_id"], CODEC.encode(REVIEWS.event_type, stranger)
        )
        result.counts["topics_poisoned"] = len(MONITORING_INPUTS)
        result.counts["poison_sent"] = len(poisoned)

        dead: dict[tuple[str, int, int], dict] = {}

        async def all_dead_lettered() -> bool:
            for record in await read_topics(stack.bootstrap, [DEAD_LETTERS.name]):
                letter = CODEC.decode(record.value).record
                origin = (
                    letter["origin_topic"],
                    letter["origin_partition"],
                    letter["origin_offset"],
                )
                if origin in poisoned or origin in impossible.values():
                    dead[origin] = letter
            return all(origin in dead for origin in poisoned)

        await wait_for(
            all_dead_lettered, 240 if quick else 400, "poison in dead letters", 2.0, [worker]
        )
        result.counts["dead_lettered"] = sum(1 for o in poisoned if o in dead)
        reasons = [dead[o] for o in poisoned if o in dead]
        result.check(
            all(r["error"] and r["error_kind"] for r in reasons), "every dead letter has a reason"
        )
        result.check(
            all(r["original_value"] is not None for r in reasons),
            "every dead letter keeps the original bytes",
        )

        def valid_ones_applied() -> bool:
            return all(household_events(port, h) == n for h, n in expected_events.items())

        try:
            await wait_for(valid_ones_applied, 120, "the valid records after the poison", 1.0)
        except AssertionError:
            pass
        seen = {h: household_events(port, h) for h in expected_events}
        applied = sum(1 for h, n in expected_events.items() if seen[h] == n)
        result.counts["valid_after_poison_applied"] = f"{applied}/{len(expected_events)}"
        result.check(
            applied == len(expected_events),
            f"valid record after the poison applied on every topic: {seen}",
        )
        owners = {"negative-members": "negative", "decision-for-unknown-household": "unregistered"}

        async def impossible_settled() -> bool:
            await all_dead_lettered()
            return all(
                origin in dead or household_events(port, f"{prefix}-{owners[label]}")
                for label, origin in impossible.items()
            )

        try:
            await wait_for(impossible_settled, 60, "the impossible records' fate", 2.0)
        except AssertionError:
            pass
        for label, origin in impossible.items():
            household = f"{prefix}-{owners[label]}"
            if origin in dead:
                result.counts[label] = f"dead-lettered ({dead[origin]['error_kind']})"
            elif label in HELD:
                events = household_events(port, household)
                result.counts[label] = f"held ({events} event(s) in the household's state)"
                result.check(
                    events == 1,
                    f"{label}: neither dead-lettered nor held in the household's state "
                    f"(view says {events} event(s))",
                )
            else:
                events = household_events(port, household)
                result.counts[label] = f"APPLIED (state has {events} event(s))"
                result.failures.append(
                    f"{label}: valid Avro but impossible in the domain, not dead-lettered "
                    f"(applied to the household's state: {events} event(s))"
                )
        result.check(worker.running, "the monitoring worker is still running")

        # The read model: the poison households' registry, visit and risk records of the right
        # type for their topic, each once; the poison skipped, the negative household refused.
        households = {*expected_events, *(f"{prefix}-{o}" for o in owners.values())}
        want: dict[str, int] = {}
        have: dict[str, int] = {}

        async def projected() -> bool:
            nonlocal want, have
            records = await read_topics(stack.bootstrap, PROJECTED)
            want = expected_projection(records, households)
            want.pop(f"{prefix}-negative", None)  # refused by the database: projection_rejects
            have = await projected_counts(stack.database_url) or {}
            return all(have.get(h) == n for h, n in want.items())

        try:
            await wait_for(projected, 120, "the read model of the poison households", 2.0)
        except AssertionError:
            pass
        wrong = {h: (have.get(h), n) for h, n in want.items() if have.get(h) != n}
        result.counts["read_model_households_exact"] = f"{len(want) - len(wrong)}/{len(want)}"
        result.check(not wrong, f"read model (found, expected) differs: {wrong}")
        result.check(projector.running, "the projector is still running")
    except AssertionError as exc:
        result.failures.append(str(exc))
    finally:
        await producer.stop()
        worker.stop()
        projector.stop()
        result.seconds = time.monotonic() - started
    return result
