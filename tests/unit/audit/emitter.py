"""Test data for the audit: contract records laid out as a log, and what a monitoring worker
would emit for them (monitoring.service's chain and assessment code, event clock), as log
records."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

from services.contract.codec import Codec
from services.contract.topics import RISK, TopicLayout, topic_for
from services.monitoring.adapters import avro_translation as avro
from services.monitoring.domain.assess import assess
from services.monitoring.domain.fold import evolve
from services.monitoring.domain.policy import PolicyBook
from services.monitoring.domain.row import Row
from services.monitoring.domain.state import empty
from services.monitoring.service import Position, chain_hash, extend_chain, policy_for
from services.platform.kafka.log import LogRecord, partition_of

CODEC = Codec.default()
LAYOUT = TopicLayout()


def as_log(records: list[tuple[str, dict[str, Any]]], base_ms: int = 1_600_000_000_000):
    """Contract records → LogRecords, offsets counted per topic-partition in list order."""
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    out = []
    for i, (event_type, record) in enumerate(records):
        full = event_type if "." in event_type else f"shouwang.events.{event_type}"
        topic = topic_for(full)
        key = record["household_id"].encode()
        partition = partition_of(key, LAYOUT.partitions(topic))
        offset = offsets[(topic.name, partition)]
        offsets[(topic.name, partition)] += 1
        out.append(
            LogRecord(topic.name, partition, offset, base_ms + i, key, CODEC.encode(full, record))
        )
    return out


def emitted(log: list[LogRecord], policies: PolicyBook) -> list[LogRecord]:
    """What the monitoring agent would send to household.risk, processing `log` in its order."""
    rows: dict[str, Row] = {}
    out: list[LogRecord] = []
    for r in log:
        decoded = CODEC.decode(r.value)
        event = avro.event_from(decoded.event_type, decoded.record)
        row = rows.get(event.household_id) or Row(empty(event.household_id))
        state = evolve(row.state, event)
        row = replace(
            row,
            state=state,
            chain=extend_chain(row, Position(r.topic, r.partition, r.offset), r.value),
        )
        as_of = state.last_occurred_at
        assessment = assess(state, policy_for(policies, None, as_of), as_of)
        if assessment.digest() != row.emitted_digest:
            record = avro.assessment_record(assessment, state.version, as_of, chain_hash(row.chain))
            out.append(
                LogRecord(
                    RISK.name,
                    r.partition,
                    len(out),
                    r.timestamp,
                    r.key,
                    CODEC.encode(avro.RISK_ASSESSED, record),
                )
            )
            row = replace(row, emitted_digest=assessment.digest())
        rows[event.household_id] = row
    return out
