"""Steady simulated load, and the after-checks every load scenario shares.

Load: the simulation's campaign (`generate`) written through `KafkaSink` (acks=all, idempotent)
at a fixed rate, in the background while faults are injected. The acknowledged event ids are
kept: they are what must be found afterwards.

Checks, against what the log holds (read_committed), for the load's households:
- every acknowledged event is in the log;
- the monitoring worker's state counts each household's distinct valid input events exactly
  (the fold ignores a redelivered event id, so a count below is a loss);
- emitted RiskAssessed records are unique by event id;
- the read model's `households.events_projected` equals the household's registry, visit and
  risk records in the log (the projector is idempotent by position: above is a double apply,
  below a loss), and no record was refused (`projection_rejects`).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from services.contract.errors import ContractError
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
)
from services.monitoring.domain.state import LIMITS
from services.platform.personal.keys import CachedKeys, InMemoryKeyStore
from services.platform.personal.sealer import PersonalSealer
from services.tools.faults.observe import CODEC, duplicates, household_events, read_topics
from services.tools.faults.stack import LAYOUT, PrivateStack
from services.tools.faults.verdict import Result, wait_for
from services.tools.simulation.parameters import SimulationParameters
from services.tools.simulation.runner import simulate
from services.tools.simulation.sinks.kafka import KafkaSink
from services.tools.simulation.stream import Event

if TYPE_CHECKING:
    from services.tools.faults.processes import Worker

# Monitoring's input topics and the state set each one fills (services/monitoring/domain/state.py).
KIND_OF = {
    HOUSEHOLD_REGISTRY.name: "registry",
    VISITS.name: "visits",
    INCOME.name: "incomes",
    HARDSHIPS.name: "hardships",
    REVIEWS.name: "decisions",
    MEASURES.name: "measures",
    SUPPORT_MEASURES.name: "measures",
    PROBLEMS.name: "problems",
}
PROJECTED = (HOUSEHOLD_REGISTRY.name, VISITS.name, RISK.name)  # topics counted per household


class RecordingSink(KafkaSink):
    """KafkaSink that remembers the event ids the broker acknowledged."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.acknowledged: dict[str, str] = {}  # event_id -> household_id (or cadre id)
        self.personal: set[str] = set()  # names, citizen ids, phones the events carried

    async def write(self, events: Sequence[Event]) -> None:
        await super().write(events)
        for event in events:
            self.acknowledged[str(event.record["event_id"])] = event.key
            personal = event.record.get("personal") or {}
            self.personal.update(v for v in personal.values() if isinstance(v, str) and len(v) >= 4)
            for member in personal.get("members") or ():  # registry v3: each member's
                self.personal.update(
                    v for v in member.values() if isinstance(v, str) and len(v) >= 4
                )


@dataclass
class Load:
    """A simulated campaign written at `rate` events/s in the background."""

    stack: PrivateStack
    parameters: SimulationParameters
    rate: float
    sink: RecordingSink = field(init=False)
    task: asyncio.Task | None = None

    def __post_init__(self) -> None:
        # Personal data is sealed as every writer seals it, but with keys held in memory: the
        # load stands for field apps, which keep writing while the db-outage scenario stops
        # PostgreSQL (the key store's own outage behaviour is tested with the visits API).
        self.sink = RecordingSink(
            self.stack.bootstrap,
            LAYOUT,
            create_topics=False,
            sealer=PersonalSealer(CachedKeys(InMemoryKeyStore())),
        )

    def start(self) -> None:
        async def write_all():
            async with self.sink:
                return await simulate(self.parameters, self.sink, rate=self.rate, batch_size=50)

        self.task = asyncio.create_task(write_all())

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()

    async def finish(self) -> None:
        assert self.task is not None
        await self.task  # raises the sink's error, if any

    def wind_down(self, workers: Iterable[Worker]) -> None:
        """A scenario's way out, passed or failed: the load stopped if still writing, then
        every worker."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
        for worker in workers:
            worker.stop()

    @property
    def households(self) -> set[str]:
        """Keys of the acknowledged events (cadre ids too; they have no household records)."""
        return set(self.sink.acknowledged.values())


def expected_state(records, households: set[str]) -> dict[str, int]:
    """Distinct valid input events per household, as the fold keeps them (LIMITS per set)."""
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in records:
        kind = KIND_OF.get(r.topic)
        if kind is None:
            continue
        try:
            decoded = CODEC.decode(r.value, expected=_expected_type(r.topic))
        except ContractError:
            continue
        household = decoded.record.get("household_id")
        if household in households and (r.key or b"").decode() == household:
            seen[household][kind].add(str(decoded.record["event_id"]))
    return {
        h: sum(min(len(ids), LIMITS[kind]) for kind, ids in kinds.items())
        for h, kinds in seen.items()
    }


def _expected_type(topic: str) -> str:
    from services.contract.topics import BY_NAME

    return BY_NAME[topic].event_type


def expected_projection(records, households: set[str]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for r in records:
        if r.topic not in PROJECTED:
            continue
        try:
            decoded = CODEC.decode(r.value, expected=_expected_type(r.topic))
        except ContractError:
            continue
        household = decoded.record.get("household_id")
        if household in households:
            counts[household] += 1
    return dict(counts)


async def projected_counts(database_url: str) -> dict[str, int] | None:
    try:
        conn = await asyncpg.connect(database_url, timeout=5)
    except Exception:
        return None
    try:
        rows = await conn.fetch("SELECT household_id, events_projected FROM households")
        return {r["household_id"]: r["events_projected"] for r in rows}
    except Exception:
        return None
    finally:
        await conn.close()


async def rejected(database_url: str) -> int:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        exists = await conn.fetchval("SELECT to_regclass('projection_rejects') IS NOT NULL")
        return await conn.fetchval("SELECT count(*) FROM projection_rejects") if exists else 0
    finally:
        await conn.close()


async def wait_for_state(
    result: Result,
    port: int,
    want: Callable[[], Awaitable[dict[str, int]]],
    seconds: float,
    workers: list,
) -> tuple[dict[str, int], dict[str, int | None]]:
    """Wait until the monitoring worker's view counts, per household, the events `want()`
    finds in the log *now* (asked again on every poll: services that feed each other, like
    monitoring and support, may still be writing). The last (want, have); a timeout is
    recorded as a failure of `result`."""
    last: dict[str, int] = {}
    have: dict[str, int | None] = {}

    async def caught_up() -> bool:
        nonlocal last
        last = await want()
        for h, n in last.items():
            if have.get(h) != n:
                have[h] = household_events(port, h)
        return all(have.get(h) == n for h, n in last.items())

    try:
        await wait_for(caught_up, seconds, "monitoring state", 2.0, workers)
    except AssertionError as exc:
        result.failures.append(str(exc))
    return last, have


async def check_after(
    result: Result,
    stack: PrivateStack,
    load: Load,
    monitoring_port: int,
    workers: list,
    settle_seconds: float,
) -> None:
    """Wait (with deadlines) for the workers to catch up, then compare with the log."""
    households = load.households
    inputs = await read_topics(stack.bootstrap, [*KIND_OF, CADRES.name])
    acknowledged = set(load.sink.acknowledged)
    in_log = set()
    for r in inputs:
        try:
            in_log.add(str(CODEC.decode(r.value).record["event_id"]))
        except (ContractError, KeyError):
            continue
    missing = acknowledged - in_log
    result.counts["events_acknowledged"] = len(acknowledged)
    result.counts["acknowledged_missing_from_log"] = len(missing)
    result.check(not missing, f"{len(missing)} acknowledged events are not in the log")

    async def want() -> dict[str, int]:
        nonlocal inputs
        inputs = await read_topics(stack.bootstrap, [*KIND_OF, CADRES.name])
        return expected_state(inputs, households)

    want_state, have_state = await wait_for_state(
        result, monitoring_port, want, settle_seconds, workers
    )
    state_found = sum(min(have_state.get(h) or 0, n) for h, n in want_state.items())
    state_extra = sum(max(0, (have_state.get(h) or 0) - n) for h, n in want_state.items())
    result.counts["state_events_expected"] = sum(want_state.values())
    result.counts["state_events_found"] = state_found
    result.check(state_extra == 0, f"{state_extra} events counted twice in monitoring state")
    result.check(
        state_found == sum(want_state.values()),
        f"monitoring state lacks {sum(want_state.values()) - state_found} events",
    )

    await check_assessments(result, stack.bootstrap)

    want_projection: dict[str, int] = {}
    have_projection: dict[str, int] = {}

    async def projection_caught_up() -> bool:
        nonlocal want_projection, have_projection
        records = [*inputs, *await read_topics(stack.bootstrap, [RISK.name])]
        want_projection = expected_projection(records, households)
        have_projection = await projected_counts(stack.database_url) or {}
        return all(have_projection.get(h) == n for h, n in want_projection.items())

    try:
        await wait_for(projection_caught_up, settle_seconds, "the read model", 3.0, workers)
    except AssertionError as exc:
        result.failures.append(str(exc))
    found = sum(min(have_projection.get(h, 0), n) for h, n in want_projection.items())
    doubled = sum(max(0, have_projection.get(h, 0) - n) for h, n in want_projection.items())
    result.counts["projected_expected"] = sum(want_projection.values())
    result.counts["projected_found"] = found
    result.counts["projected_doubled"] = doubled
    result.check(doubled == 0, f"{doubled} events applied twice to the read model")
    result.check(found == sum(want_projection.values()), "every event is in the read model")
    refused = await rejected(stack.database_url)
    result.counts["projection_rejects"] = refused
    check_personal_data(result, load.sink.personal, [w.log_path for w in workers], monitoring_port)


async def check_assessments(result: Result, bootstrap: str) -> None:
    """One assessment per `RiskAssessed` id: every copy identical but for recorded_at.

    The monitoring worker is at-least-once with idempotent effects (services/monitoring/
    README.md): after a crash, a restart or a rebalance it may send an assessment again, under
    the same deterministic id with the same content, and consumers keep one per id. So copies
    are counted, and any id carrying two different contents is a failure.
    """
    risk = await read_topics(bootstrap, [RISK.name])
    copies: dict[str, list] = defaultdict(list)
    for r in risk:
        record = CODEC.decode(r.value).record
        copies[str(record["event_id"])].append((r, record))
    risk_ids = [i for i, items in copies.items() for _ in items]
    result.counts["risk_assessed"] = len(risk_ids)
    doubled = {i: items for i, items in copies.items() if len(items) > 1}
    result.counts["risk_assessed_ids"] = len(copies)
    result.counts["risk_resent_copies"] = duplicates(risk_ids)

    def content(record: dict) -> dict:
        return {k: v for k, v in record.items() if k != "recorded_at"}

    differing = [
        i
        for i, items in doubled.items()
        if any(content(rec) != content(items[0][1]) for _, rec in items)
    ]
    if differing:
        examples = []
        for i in differing[:3]:
            where = ", ".join(f"p{r.partition}@{r.offset}" for r, _ in doubled[i])
            examples.append(f"{i} {doubled[i][0][1]['household_id']} [{where}]")
        result.failures.append(
            f"RiskAssessed ids carry different assessments: {len(differing)} ids, e.g. "
            + "; ".join(examples)
        )


def check_personal_data(result: Result, personal: set[str], logs, monitoring_port: int) -> None:
    """Issue #9 (security): names, citizen ids and phone numbers never in logs or metrics."""
    import urllib.request

    texts = {str(path): path.read_text(errors="replace") for path in logs if path.exists()}
    try:
        url = f"http://127.0.0.1:{monitoring_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            texts["monitoring /metrics"] = answer.read().decode(errors="replace")
    except Exception as exc:
        texts["monitoring /metrics"] = ""
        result.counts["metrics_unreachable"] = type(exc).__name__
    found = {where: personal_values_in(text, personal) for where, text in texts.items()}
    leaks = {where: len(values) for where, values in found.items() if values}
    result.counts["personal_values_searched"] = len(personal)
    result.counts["personal_values_leaked"] = sum(leaks.values())
    # where each leak is: the first lines holding one, the value itself masked
    lines = [
        f"{where}: " + line.replace(value, "<personal value>")[:300]
        for where, values in found.items()
        for value in values[:3]
        for line in texts[where].splitlines()
        if personal_values_in(line, (value,))
    ][:6]
    result.check(not leaks, f"personal data in logs or metrics: {leaks}; " + " | ".join(lines))


def personal_values_in(text: str, personal: Iterable[str]) -> list[str]:
    """The personal values that occur in `text` as themselves, in the order given.

    A value edged by a digit counts only where no digit continues it: the simulation's phone
    numbers are digit runs (`000` and an index), and a float such as a metric's
    `2.7600000000000002` holds `00000000000` without leaking anyone's phone. A phone written
    into a log line is still found (`phone=00012345678`, `"00012345678"`); one printed glued to
    other digits (`+8600012345678`) would not be, and nothing here prints a stored value so.
    """
    hits = []
    for value in personal:
        start = text.find(value)
        while start >= 0:
            end = start + len(value)
            joined_before = value[0].isdigit() and start > 0 and text[start - 1].isdigit()
            joined_after = value[-1].isdigit() and end < len(text) and text[end].isdigit()
            if not (joined_before or joined_after):
                hits.append(value)
                break
            start = text.find(value, start + 1)
    return hits
