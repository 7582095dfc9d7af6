"""Replay, pure: log records → monitoring's fold and rules → rebuilt households, and the checks
of `replay --verify` (emitted assessments re-derived from the log prefix their chain hash
names; the read model compared with the rebuilt state). No Kafka, no database here.

The record handling is the monitoring agent's own (services.monitoring.service): `read_input`
(decode with the topic's expected type, translate, check the key), then `evolve`; a record the
agent would dead-letter is not applied and not chained here either.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from services.audit.chain import HouseholdChains, describe_window, locate
from services.contract import rejection
from services.contract.codec import Codec
from services.contract.inputs import MONITORING_EXPECTED
from services.contract.rejection import decode
from services.contract.topics import RISK
from services.monitoring.adapters import avro_translation as avro
from services.monitoring.domain.assess import Assessment, assess, remembering
from services.monitoring.domain.facts import registry_at
from services.monitoring.domain.fold import NotApplicable, evolve
from services.monitoring.domain.policy import PolicyBook
from services.monitoring.domain.state import HouseholdState, empty
from services.monitoring.service import Refusal, emitted_digest, policy_for, read_input

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class EventNote:
    """What an auditor is told about one event: its type, times, who recorded it, where it is."""

    event_id: str
    event_type: str
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    source: str
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Difference:
    """One disagreement: `expected` is what the log gives, `found` what the other side says."""

    household_id: str
    field: str
    expected: Any
    found: Any
    where: str = ""

    def line(self) -> str:
        where = f"  ({self.where})" if self.where else ""
        return (
            f"{self.household_id}  {self.field}: expected {_show(self.expected)}, "
            f"found {_show(self.found)}{where}"
        )


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class Emission:
    """A RiskAssessed record read from household.risk."""

    record: dict[str, Any]
    partition: int
    offset: int
    timestamp: int

    @property
    def where(self) -> str:
        return f"{RISK.name}[{self.partition}]@{self.offset}"


@dataclass
class HouseholdLog:
    """A household's applied records in log order, per topic (aligned with its chains)."""

    household_id: str
    chains: HouseholdChains
    events: dict[str, list[Any]] = field(default_factory=dict)
    notes: dict[str, EventNote] = field(default_factory=dict)
    state: HouseholdState | None = None
    emissions: list[Emission] = field(default_factory=list)

    def prefix_events(self, low: dict[str, int], high: dict[str, int]) -> Iterable[Any]:
        for topic, items in self.events.items():
            yield from items[low.get(topic, 0) : high.get(topic, 0)]


@dataclass(frozen=True, slots=True)
class Derived:
    """An emitted assessment, re-derived from the log prefix its chain hash names."""

    emission: Emission
    assessment: Assessment
    state_version: int
    event_id: str


@dataclass
class Rejected:
    topic: str
    partition: int
    offset: int
    kind: str
    error: str


class Replay:
    """Feed it log records (any topics, any interleaving across topics, offset order within a
    partition); it keeps each household's fold, chains and emitted assessments.

    With `history=False` it keeps only each household's fold (what `shouwang replay` reports
    without --verify): no chains, per-topic event lists, event notes or emitted assessments,
    which only verifying and explaining read. The folded states are the same either way."""

    def __init__(
        self,
        codec: Codec,
        policies: PolicyBook,
        *,
        pinned_policy: str | None = None,
        household_prefix: str | None = None,
        history: bool = True,
    ):
        self.codec = codec
        self.policies = policies
        self.pinned = pinned_policy
        self.prefix = household_prefix.encode() if household_prefix else None
        self.history = history
        self.households: dict[str, HouseholdLog] = {}
        self.rejected: list[Rejected] = []
        self.records = 0
        self.applied = 0

    def household(self, household_id: str) -> HouseholdLog:
        log = self.households.get(household_id)
        if log is None:
            log = self.households[household_id] = HouseholdLog(
                household_id, HouseholdChains(household_id), state=empty(household_id)
            )
        return log

    def feed(self, record: Any) -> None:
        """One LogRecord (topic, partition, offset, timestamp, key, value)."""
        if self.prefix is not None and not (record.key or b"").startswith(self.prefix):
            return
        self.records += 1
        if record.topic == RISK.name:
            if self.history:  # emitted assessments are read only to verify them
                self._emission(record)
        elif record.topic in MONITORING_EXPECTED:
            self._input(record)

    def _reject(self, record: Any, kind: str, error: str) -> None:
        self.rejected.append(Rejected(record.topic, record.partition, record.offset, kind, error))

    def _emission(self, record: Any) -> None:
        try:
            decoded = decode(self.codec, record.value, RISK.event_type)
        except rejection.Rejected as exc:
            return self._reject(record, exc.kind, exc.reason)
        r = decoded.record
        self.household(r["household_id"]).emissions.append(
            Emission(r, record.partition, record.offset, record.timestamp)
        )

    def _input(self, record: Any) -> None:
        read = read_input(self.codec, record.topic, record.key, record.value)
        if isinstance(read, Refusal):
            return self._reject(record, read.kind, read.error)
        decoded, event = read.decoded, read.event
        log = self.household(event.household_id)
        try:
            log.state = evolve(log.state, event)
        except (NotApplicable, TypeError) as exc:
            return self._reject(record, rejection.NOT_APPLICABLE, str(exc))
        self.applied += 1
        if self.history:
            self._remember(log, record, decoded.event_type, decoded.record, event)

    def _remember(self, log: HouseholdLog, record: Any, event_type: str, r: dict, event) -> None:
        """The record's link in the household's chain for its topic, its event in log order and
        the note an explanation shows for it."""
        before = len(log.chains.links.get(record.topic, ()))
        log.chains.add(
            record.topic,
            record.partition,
            record.offset,
            bytes(record.value),
            event.event_id,
            event.occurred_at,
            record.timestamp,
        )
        if len(log.chains.links[record.topic]) > before:
            log.events.setdefault(record.topic, []).append(event)
        log.notes.setdefault(
            event.event_id,
            EventNote(
                event.event_id,
                event_type.rsplit(".", 1)[-1],
                event.occurred_at,
                event.recorded_at,
                r.get("actor", ""),
                r.get("source", ""),
                record.topic,
                record.partition,
                record.offset,
            ),
        )

    # --- results --------------------------------------------------------------------------

    def township_of(self, household_id: str) -> str | None:
        log = self.households.get(household_id)
        registry = registry_at(log.state, FAR_FUTURE) if log and log.state else None
        return registry.township if registry else None

    def selected(self, township: str | None = None) -> list[HouseholdLog]:
        return [
            log
            for hid, log in sorted(self.households.items())
            if township is None or self.township_of(hid) == township
        ]

    def assess_latest(self, log: HouseholdLog, as_of: datetime | None = None) -> Assessment | None:
        """The household's assessment at `as_of`, else as of its latest event (event clock)."""
        state = log.state
        moment = as_of or state.last_occurred_at
        if moment is None:
            return None
        return assess(state, policy_for(self.policies, self.pinned, moment), moment)

    def verify_emitted(
        self, township: str | None = None, limit: int = 200_000
    ) -> tuple[list[Derived], list[Difference]]:
        """Re-derive every emitted assessment from the log prefix its chain hash names."""
        if not self.history:
            raise ValueError("verifying needs the chains and emissions: Replay(history=True)")
        derived: list[Derived] = []
        differences: list[Difference] = []
        for log in self.selected(township):
            d, diffs = self._verify_household(log, limit)
            derived += d
            differences += diffs
        return derived, differences

    def _verify_household(self, log: HouseholdLog, limit: int):
        derived, differences = [], []
        hid = log.household_id
        frontier: dict[str, int] = {}
        state = empty(hid)
        emissions = sorted(log.emissions, key=lambda e: (e.partition, e.offset))
        total = log.chains.count(log.chains.full()) if log.chains.links else 0
        for emission in emissions:
            r = emission.record
            digest = emitted_digest(r)
            version = next(
                (
                    v
                    for v in range(total + 1)
                    if str(avro.assessment_id(hid, v, digest)) == str(r["event_id"])
                ),
                None,
            )
            if version is None:
                differences.append(
                    Difference(
                        hid,
                        "event_id",
                        "uuid5(household, state version, content digest)",
                        str(r["event_id"]),
                        f"{emission.where}: the record's content does not match its id, or it "
                        "cites more events than the log holds",
                    )
                )
            cited = {i for reason in r["reasons"] for i in reason["event_ids"]}
            search = locate(
                log.chains,
                r["chain_hash"],
                frontier,
                version=version,
                cited=cited,
                as_of=r["as_of"],
                limit=limit,
            )
            if search.vector is None:
                why = "search limit reached" if not search.exhausted else "no prefix of the log"
                differences.append(
                    Difference(
                        hid,
                        "chain_hash",
                        r["chain_hash"],
                        f"{why} reproduces it",
                        f"{emission.where}: an input record was removed, altered or reordered "
                        f"in {describe_window(log.chains, frontier, log.chains.full())}",
                    )
                )
                continue
            for event in log.prefix_events(frontier, search.vector):
                state = evolve(state, event)
            frontier = search.vector
            as_of = r["as_of"]
            try:
                policy = policy_for(self.policies, self.pinned, as_of)
            except LookupError as exc:
                differences.append(
                    Difference(hid, "policy_version", None, r["policy_version"], str(exc))
                )
                continue
            # the next emission's prefix starts from this state and the views it remembers
            assessment, state = remembering(state, policy, as_of)
            if r.get("exceptions") is None:
                # written before RiskAssessed v3: it lists no exceptions, and its id is the
                # digest of a content without them
                assessment = replace(assessment, exceptions=())
            event_id = str(avro.assessment_id(hid, state.version, assessment.digest()))
            derived.append(Derived(emission, assessment, state.version, event_id))
            differences += compare_assessment(hid, assessment, event_id, r, emission.where)
        return derived, differences


def compare_assessment(
    hid: str, a: Assessment, event_id: str, r: dict[str, Any], where: str
) -> list[Difference]:
    pairs = [
        ("policy_version", a.policy_version, r["policy_version"]),
        ("category", a.category, r["category"]),
        ("level", a.level, r["level"]),
        ("workflow", a.workflow, r["workflow"]),
        (
            "reasons",
            [[x.code, list(x.event_ids)] for x in a.reasons],
            [[x["code"], list(x["event_ids"])] for x in r["reasons"]],
        ),
        ("reason_messages", [x.message for x in a.reasons], [x["message"] for x in r["reasons"]]),
        ("overdue", list(a.overdue), list(r["overdue"])),
        (
            "procedure",
            None if a.procedure is None else list(a.procedure.content()),
            _procedure_content(r.get("procedure")),
        ),
        ("exceptions", list(a.exceptions), list(r.get("exceptions") or ())),
        ("event_id", event_id, str(r["event_id"])),
    ]
    return [Difference(hid, f, e, g, where) for f, e, g in pairs if e != g]


def _procedure_content(record: dict[str, Any] | None) -> list | None:
    procedure = avro.procedure_from(record)
    return None if procedure is None else list(procedure.content())
