"""The campaign as one ordered stream of contract events, as the system would receive them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from services.contract.topics import Topic, topic_for
from services.tools.simulation.campaign import plan_campaign
from services.tools.simulation.county import County, build_county
from services.tools.simulation.parameters import SimulationParameters


class Event(NamedTuple):
    """One generated event: its full schema name and its record (current schema, native types)."""

    event_type: str
    record: dict[str, Any]

    @property
    def topic(self) -> Topic:
        return topic_for(self.event_type)

    @property
    def key(self) -> str:
        """The Kafka key: the record's household id (cadre id for the cadre registry)."""
        return str(self.record[self.topic.key])


def generate(parameters: SimulationParameters, county: County | None = None) -> Iterator[Event]:
    """Every event of the campaign, ordered by `recorded_at` (when the system receives it).

    Records made offline arrive after later ones made online, so `occurred_at` is not monotonic:
    that is the point. Ties keep registry and cadre records first, then planning order, so the
    stream is a pure function of `parameters`. With `parameters.days`, the stream stops at the
    start of that campaign day.
    """
    county = county or build_county(parameters)
    planned = plan_campaign(parameters, county)
    planned.sort(key=lambda p: (p[0], p[1]))  # stable: planning order breaks remaining ties
    stop_at = parameters.stop_at
    for recorded_at, _, event_type, record in planned:
        if stop_at is not None and recorded_at >= stop_at:
            return
        yield Event(event_type, record)
