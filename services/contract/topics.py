"""The topic catalogue: every topic's name, event type, key and settings, as data."""

from __future__ import annotations

from dataclasses import dataclass, field

# Event topics are the audit record: they keep history forever and are never compacted.
FOREVER = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


@dataclass(frozen=True)
class Topic:
    """One topic of the catalogue."""

    name: str
    event_type: str  # full schema name of its records
    key: str  # record field used as the Kafka key
    # "input" (from outside), "output" (from a service), "dead-letter", or "operator" (changes
    # to what the system trusts and uses: tokens, catalogues)
    role: str
    doc: str
    config: dict[str, str] = field(default_factory=lambda: dict(FOREVER))
    # Household topics must be co-partitioned so one worker owns all of a household's events.
    household_partitioned: bool = True


HOUSEHOLD_REGISTRY = Topic(
    "household.registry",
    "shouwang.events.HouseholdRegistryRecorded",
    "household_id",
    "input",
    "Household registry (户表) baselines and changes.",
)
VISITS = Topic(
    "household.visits",
    "shouwang.events.VisitRecorded",
    "household_id",
    "input",
    "Home visits recorded by cadres.",
)
INCOME = Topic(
    "household.income",
    "shouwang.events.IncomeUpdated",
    "household_id",
    "input",
    "Income updates.",
)
HARDSHIPS = Topic(
    "household.hardships",
    "shouwang.events.HardshipReported",
    "household_id",
    "input",
    "Department early warnings and self-reported hardships.",
)
REVIEWS = Topic(
    "household.reviews",
    "shouwang.events.ReviewDecided",
    "household_id",
    "input",
    "Review and audit group decisions.",
)
MEASURES = Topic(
    "household.measures",
    "shouwang.events.MeasureStepRecorded",
    "household_id",
    "input",
    "Measure steps recorded by operators and cadres (accepted, delivered, completed, cancelled).",
)
PROBLEMS = Topic(
    "household.problems",
    "shouwang.events.ProblemRecorded",
    "household_id",
    "input",
    "Problems found, rectification tasks and rectifications.",
)
CADRES = Topic(
    "cadre.registry",
    "shouwang.events.CadreRegistryRecorded",
    "cadre_id",
    "input",
    "Cadre registry records, keyed by cadre id (read by support).",
    household_partitioned=False,
)
RISK = Topic(
    "household.risk",
    "shouwang.events.RiskAssessed",
    "household_id",
    "output",
    "Risk assessments, emitted by monitoring when a household's assessment changes.",
)
SUPPORT_MEASURES = Topic(
    "support.measures",
    "shouwang.events.MeasureStepRecorded",
    "household_id",
    "output",
    "Measure steps decided by the support service (recommendations, capacity releases).",
)
DEAD_LETTERS = Topic(
    "shouwang.deadletter",
    "shouwang.events.DeadLetter",
    "origin_topic",
    "dead-letter",
    "Records that could not be decoded or applied, with origin and reason.",
    household_partitioned=False,
)
OPERATOR_ACTIONS = Topic(
    "operator.actions",
    "shouwang.events.OperatorActionRecorded",
    "subject_id",
    "operator",
    "Operator actions (tokens issued and revoked, catalogues activated), keyed by their subject.",
    household_partitioned=False,
)

CATALOGUE: tuple[Topic, ...] = (
    HOUSEHOLD_REGISTRY,
    VISITS,
    INCOME,
    HARDSHIPS,
    REVIEWS,
    MEASURES,
    PROBLEMS,
    CADRES,
    RISK,
    SUPPORT_MEASURES,
    DEAD_LETTERS,
    OPERATOR_ACTIONS,
)
INPUT_TOPICS = tuple(t for t in CATALOGUE if t.role == "input")
BY_NAME = {t.name: t for t in CATALOGUE}


@dataclass(frozen=True)
class TopicLayout:
    """Cluster-dependent sizing: partitions of household topics and replication."""

    household_partitions: int = 12
    other_partitions: int = 3
    replication_factor: int = 1
    min_insync_replicas: int = 1

    def __post_init__(self) -> None:
        for name in ("household_partitions", "other_partitions", "replication_factor"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 1 <= self.min_insync_replicas <= self.replication_factor:
            raise ValueError("min_insync_replicas must be between 1 and replication_factor")

    def partitions(self, topic: Topic) -> int:
        return self.household_partitions if topic.household_partitioned else self.other_partitions

    def config(self, topic: Topic) -> dict[str, str]:
        return {**topic.config, "min.insync.replicas": str(self.min_insync_replicas)}


def topic_for(event_type: str, role: str = "input") -> Topic:
    """The topic where records of `event_type` with `role` go."""
    for topic in CATALOGUE:
        if topic.event_type == event_type and topic.role == role:
            return topic
    raise KeyError(f"no {role} topic for {event_type}")
