"""Contract records as the monitoring domain's events, through the one translation adapter."""

from __future__ import annotations

from services.monitoring.adapters.avro_translation import event_from
from tests.records import Record


def domain(records: list[Record]) -> list[object]:
    return [event_from(event_type, record) for event_type, record in records]
