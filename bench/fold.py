"""B3: monitoring's pure decode → translate → fold → assess, one core, against decode alone."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.data import Dataset
from bench.report import Figure
from services.contract.codec import Codec
from services.contract.inputs import MONITORING_EXPECTED as EXPECTED
from services.monitoring.adapters import avro_translation as avro
from services.monitoring.adapters.policy_files import load_policies
from services.monitoring.service import Position, apply_record

TARGET_EVENTS_PER_SECOND = 50_000
NOW = datetime(2021, 6, 30, tzinfo=UTC)


def _best_rate(run: Callable[[], int], min_seconds: float, min_rounds: int = 3) -> tuple:
    """Median events/s over rounds of `run` (each a full pass), at least `min_seconds` in all."""
    rates, total, rounds, count = [], 0.0, 0, 0
    while rounds < min_rounds or total < min_seconds:
        started = time.perf_counter()
        count = run()
        elapsed = time.perf_counter() - started
        rates.append(count / elapsed)
        total += elapsed
        rounds += 1
    return statistics.median(rates), count, total


def measure(data: Dataset, codec: Codec, min_seconds: float = 3.0) -> list[Figure]:
    policies = load_policies()
    records = data.records(set(EXPECTED))
    inputs = [(r, EXPECTED[r.topic], Position(r.topic, r.partition, r.offset)) for r in records]

    def decode_only() -> int:
        for r, expected, _ in inputs:
            codec.decode(r.value, expected=expected)
        return len(inputs)

    def pipeline() -> int:
        rows: dict = {}
        for r, expected, position in inputs:
            decoded = codec.decode(r.value, expected=expected)
            event = avro.event_from(decoded.event_type, decoded.record)
            hid = event.household_id
            rows[hid] = apply_record(
                rows.get(hid), event, position, r.value, policies, NOW, event_clock=True
            ).row
        return len(inputs)

    translated = [
        (
            avro.event_from(*_pair(codec.decode(r.value, expected=expected))),
            position,
            r.value,
        )
        for r, expected, position in inputs
    ]

    def fold_assess_only() -> int:
        rows: dict = {}
        for event, position, frame in translated:
            hid = event.household_id
            rows[hid] = apply_record(
                rows.get(hid), event, position, frame, policies, NOW, event_clock=True
            ).row
        return len(translated)

    decode_rate, n, _ = _best_rate(decode_only, min_seconds)
    full_rate, _, full_s = _best_rate(pipeline, min_seconds)
    fold_rate, _, fold_s = _best_rate(fold_assess_only, min_seconds)
    target = f">= {TARGET_EVENTS_PER_SECOND:,} events/s"
    return [
        Figure(
            "B3",
            "decode+translate+fold+assess, 1 core",
            full_rate,
            "events/s",
            "fastavro decode alone",
            decode_rate,
            target,
            full_rate >= TARGET_EVENTS_PER_SECOND,
            n,
            full_s,
            "service.apply_record (the faust agent's pure step, chain hash included)",
        ),
        Figure(
            "B3",
            "fold+assess only (pre-decoded), 1 core",
            fold_rate,
            "events/s",
            "fastavro decode alone",
            decode_rate,
            target,
            fold_rate >= TARGET_EVENTS_PER_SECOND,
            n,
            fold_s,
        ),
    ]


def _pair(decoded) -> tuple:
    return decoded.event_type, decoded.record
