"""A synthetic county modelled on the seed (Dianjiang, 2020): pure generation plus sinks.

`generate(parameters)` yields the campaign's events in the order the system would receive them;
`simulate(parameters, sink)` writes them through a sink (Kafka, the visits API, JSON lines or
memory) at a chosen speed and returns a summary.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Imported on first use (PEP 562): the CLI imports services.tools.simulation.command to build its
# parser, and loading the county's generator then cost more than the rest of the parser.
_EXPORTS = {
    "CampaignCalendar": "services.tools.simulation.parameters",
    "Event": "services.tools.simulation.stream",
    "Rates": "services.tools.simulation.parameters",
    "SimulationParameters": "services.tools.simulation.parameters",
    "Summary": "services.tools.simulation.summary",
    "generate": "services.tools.simulation.stream",
    "simulate": "services.tools.simulation.runner",
}

if TYPE_CHECKING:
    from services.tools.simulation.parameters import CampaignCalendar, Rates, SimulationParameters
    from services.tools.simulation.runner import simulate
    from services.tools.simulation.stream import Event, generate
    from services.tools.simulation.summary import Summary

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
