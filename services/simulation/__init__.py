"""A synthetic county modelled on the seed (Dianjiang, 2020): pure generation plus sinks.

`generate(parameters)` yields the campaign's events in the order the system would receive them;
`simulate(parameters, sink)` writes them through a sink (Kafka, the visits API, JSON lines or
memory) at a chosen speed and returns a summary.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Imported on first use (PEP 562): the CLI imports services.simulation.command to build its
# parser, and loading the county's generator then cost more than the rest of the parser.
_EXPORTS = {
    "CampaignCalendar": "services.simulation.parameters",
    "Event": "services.simulation.stream",
    "Rates": "services.simulation.parameters",
    "SimulationParameters": "services.simulation.parameters",
    "Summary": "services.simulation.summary",
    "generate": "services.simulation.stream",
    "simulate": "services.simulation.runner",
}

if TYPE_CHECKING:
    from services.simulation.parameters import CampaignCalendar, Rates, SimulationParameters
    from services.simulation.runner import simulate
    from services.simulation.stream import Event, generate
    from services.simulation.summary import Summary

__all__ = [
    "CampaignCalendar",
    "Event",
    "Rates",
    "SimulationParameters",
    "Summary",
    "generate",
    "simulate",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
