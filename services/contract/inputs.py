"""What writers may put on the input topics: each kind's route slug, topic and summary.

Declared once here for the visits API, its tokens' scopes, the OpenAPI document and the imports;
and the topics each worker consumes (monitoring's for its app, replay and the benches; support's).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.contract.topics import (
    CADRES,
    HARDSHIPS,
    HOUSEHOLD_REGISTRY,
    INCOME,
    MEASURES,
    PROBLEMS,
    REVIEWS,
    RISK,
    SUPPORT_MEASURES,
    VISITS,
    Topic,
)


@dataclass(frozen=True)
class EventKind:
    """One kind of input event the API accepts: its route segment, schema and topic."""

    slug: str  # route segment: POST /v1/{slug} and /v1/{slug}:batch
    topic: Topic
    summary: str

    @property
    def event_type(self) -> str:
        return self.topic.event_type

    @property
    def short_name(self) -> str:
        return self.event_type.rsplit(".", 1)[-1]

    @property
    def carries_township(self) -> bool:
        """Whether the record names its own township (else the household registry does)."""
        return self.topic in (HOUSEHOLD_REGISTRY, CADRES)


KINDS: tuple[EventKind, ...] = (
    EventKind("visits", VISITS, "Record a home visit (the six checks, problems found and fixed)."),
    EventKind("households", HOUSEHOLD_REGISTRY, "Record a household registry (户表) row."),
    EventKind("income-updates", INCOME, "Record a household's income over a period."),
    EventKind("hardships", HARDSHIPS, "Report a hardship (department warning or self-report)."),
    EventKind("measure-steps", MEASURES, "Record a support measure step (accepted, delivered...)."),
    EventKind("problems", PROBLEMS, "Record a problem found, a rectification task or a fix."),
    EventKind("review-decisions", REVIEWS, "Record a review group's decision."),
    EventKind("cadres", CADRES, "Record a cadre registry row (keyed by cadre id)."),
)
BY_SLUG = {kind.slug: kind for kind in KINDS}
BY_EVENT_TYPE = {kind.event_type: kind for kind in KINDS}

# The topics the monitoring worker consumes, each with one record type: its agent subscribes to
# them, replay re-reads them, the benches and fault tools load them.
MONITORING_INPUTS: tuple[Topic, ...] = (
    HOUSEHOLD_REGISTRY,
    VISITS,
    INCOME,
    HARDSHIPS,
    REVIEWS,
    MEASURES,
    PROBLEMS,
    SUPPORT_MEASURES,
)
# Topic name -> the record type monitoring expects on it (decoding checks it).
MONITORING_EXPECTED = {t.name: t.event_type for t in MONITORING_INPUTS}
# The topics the support worker's household agent consumes.
SUPPORT_INPUTS: tuple[Topic, ...] = (HOUSEHOLD_REGISTRY, RISK, MEASURES)
