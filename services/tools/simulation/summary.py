"""What a run produced, measured from the stream itself, beside what the generator claims."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from services.tools.simulation import records as rec
from services.tools.simulation.parameters import SimulationParameters
from services.tools.simulation.stream import Event


@dataclass
class Summary:
    """Counts and rates observed over a stream of simulated events."""

    parameters: SimulationParameters
    by_type: Counter[str] = field(default_factory=Counter)
    registration: dict[str, str] = field(default_factory=dict)  # household -> baseline status
    status_changes: Counter[str] = field(default_factory=Counter)  # new status -> households
    visits: int = 0
    visits_with_problem: int = 0
    visits_by_problem_kind: Counter[str] = field(default_factory=Counter)
    environment: Counter[str] = field(default_factory=Counter)
    policy_card: Counter[str] = field(default_factory=Counter)
    findings: int = 0
    findings_fixed_on_spot: int = 0
    synced_late: int = 0  # recorded on a later day than it occurred
    five_visits: int = 0
    unsold_produce: int = 0
    hardship_households: set[str] = field(default_factory=set)
    hardships_by_cause: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    included_by_category: Counter[str] = field(default_factory=Counter)
    measures_delivered: Counter[str] = field(default_factory=Counter)
    problem_steps: Counter[str] = field(default_factory=Counter)
    first_recorded: Any = None
    last_recorded: Any = None

    def observe(self, event: Event) -> None:
        event_type, r = event
        self.by_type[event_type.rsplit(".", 1)[-1]] += 1
        self.first_recorded = self.first_recorded or r["recorded_at"]
        self.last_recorded = r["recorded_at"]
        if event_type == rec.REGISTRY:
            if r["change"] == "BASELINE":
                self.registration[r["household_id"]] = r["registration"]
            elif r["change"] == "STATUS_CHANGE":
                self.status_changes[r["registration"]] += 1
        elif event_type == rec.VISIT:
            self.visits += 1
            kinds = {p["kind"] for p in r["problems"]}
            self.visits_with_problem += bool(kinds)
            self.visits_by_problem_kind.update(kinds)
            self.environment[r["living_environment"]] += 1
            self.policy_card[r["policy_card"]] += 1
            self.findings += len(r["problems"])
            self.findings_fixed_on_spot += sum(p["fixed_on_spot"] for p in r["problems"])
            self.synced_late += r["recorded_at"].date() > r["occurred_at"].date()
            if r["five_visits"] is not None:
                self.five_visits += 1
                self.unsold_produce += r["five_visits"]["unsold_produce"] is not None
        elif event_type == rec.HARDSHIP:
            if not r["resolved"]:
                self.hardship_households.add(r["household_id"])
                self.hardships_by_cause[r["cause"]] += 1
        elif event_type == rec.REVIEW:
            self.decisions[r["decision"]] += 1
            if r["decision"] == "INCLUDE":
                self.included_by_category[r["category"]] += 1
        elif event_type == rec.MEASURE:
            if r["step"] == "DELIVERED":
                self.measures_delivered[r["measure_type"]] += 1
        elif event_type == rec.PROBLEM:
            self.problem_steps[r["step"]] += 1

    @property
    def events(self) -> int:
        return sum(self.by_type.values())

    @property
    def households(self) -> Counter[str]:
        return Counter(self.registration.values())

    def claims(self) -> dict[str, tuple[float, float | None]]:
        """Rate name -> (claimed, measured); measured is None when nothing to measure yet."""
        rates = self.parameters.rates
        checked_cards = self.visits - self.policy_card["NOT_CHECKED"]
        return {
            "visits: dirty home": (
                rates.dirty_home,
                _share(self.environment["DIRTY"], self.visits),
            ),
            "visits: policy card missing": (
                rates.policy_card_missing,
                _share(self.policy_card["MISSING"], checked_cards),
            ),
            "visits: recorded a day or more late (offline phones)": (
                1 - rates.synced_same_day,
                _share(self.synced_late, self.visits),
            ),
        }

    def render(self) -> str:
        p = self.parameters
        lines = [
            f"simulated county: seed {p.seed}, scale {p.scale:g}"
            + (f", first {p.days} day(s)" if p.days is not None else ", whole campaign"),
            f"events: {self.events}"
            + (
                f" (recorded {self.first_recorded:%Y-%m-%d} .. {self.last_recorded:%Y-%m-%d})"
                if self.first_recorded
                else ""
            ),
        ]
        lines += [f"  {name:28} {count:8}" for name, count in sorted(self.by_type.items())]
        lines.append("households by registration at baseline:")
        lines += [f"  {name:28} {count:8}" for name, count in sorted(self.households.items())]
        lines += [
            f"  changed to {name:17} {count:8}"
            for name, count in sorted(self.status_changes.items())
        ]
        lines.append(
            f"visits: {self.visits}, with a problem {_pct(self.visits_with_problem, self.visits)}, "
            f"findings fixed on the spot {_pct(self.findings_fixed_on_spot, self.findings)}, "
            f"five-visits blocks {self.five_visits} (unsold produce {self.unsold_produce})"
        )
        lines += [
            f"  with {kind.lower():24} {_pct(count, self.visits)}"
            for kind, count in sorted(self.visits_by_problem_kind.items())
        ]
        total = len(self.registration)
        lines.append(
            f"households with a hardship report: {len(self.hardship_households)} "
            f"({_pct(len(self.hardship_households), total)}); by cause: "
            + ", ".join(f"{c.lower()} {n}" for c, n in sorted(self.hardships_by_cause.items()))
        )
        lines.append(
            "review decisions: "
            + ", ".join(f"{d.lower()} {n}" for d, n in sorted(self.decisions.items()))
            + "; included by category: "
            + ", ".join(f"{c.lower()} {n}" for c, n in sorted(self.included_by_category.items()))
        )
        lines.append(
            "measures delivered: "
            + ", ".join(f"{t.lower()} {n}" for t, n in sorted(self.measures_delivered.items()))
        )
        lines.append(
            "problem list steps: "
            + ", ".join(f"{s.lower()} {n}" for s, n in sorted(self.problem_steps.items()))
        )
        lines.append("rates (claimed / measured):")
        for name, (claimed, measured) in self.claims().items():
            shown = "n/a" if measured is None else f"{measured:.1%}"
            lines.append(f"  {name:52} {claimed:6.1%} / {shown}")
        return "\n".join(lines)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"
