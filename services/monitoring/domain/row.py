"""What the monitoring worker keeps per household: its row and the summary its gauges count."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from services.monitoring.domain.state import HouseholdState


@dataclass(frozen=True, slots=True)
class Row:
    """A household's table row: its state, the hash chain over its input records in log order,
    and what was last emitted (to emit only on change, with a deterministic id)."""

    state: HouseholdState
    chain: tuple[tuple[str, int, int, str], ...] = ()  # (topic, partition, offset, head) by topic
    emitted_digest: str = ""
    emitted_event_id: str = ""
    # What the last emitted record said beyond its digest, so that a re-send (after a
    # redelivered input) is the same record, not the same id over a newer as_of and chain.
    emitted_as_of: datetime | None = None
    emitted_chain_hash: str = ""
    emitted_recorded_at: datetime | None = None
    # Assessment.content() of the last emitted record, in memory only (not stored): a row read
    # back from the table has None and is compared by digest.
    emitted_content: tuple | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Summary:
    """What the gauges count, per household (no personal data, small, in its own table)."""

    workflow: str
    category: str | None
    township: str
    level: str
    overdue: tuple[str, ...]
    open_problems: int
    problems: int
    rectified: int
    next_check: date | None = None  # first day a deadline can turn overdue
