"""A synthetic county modelled on the seed (Dianjiang, 2020): pure generation plus sinks.

`generate(parameters)` yields the campaign's events in the order the system would receive them;
`simulate(parameters, sink)` writes them through a sink (Kafka, the visits API, JSON lines or
memory) at a chosen speed and returns a summary.
"""

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
