"""Figures, the printed table and the JSON file: one row per measured figure."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Figure:
    """One measured figure: an absolute rate and its ratio against a same-run baseline.

    `target` is the issue's target as text; `passed` is None when there is no target to check
    (or the figure is a reference, like the baseline itself).
    """

    bench: str  # B1..B10
    what: str
    value: float
    unit: str
    baseline_what: str | None = None
    baseline_value: float | None = None
    target: str | None = None
    passed: bool | None = None
    count: int | None = None  # records/events/rows measured
    seconds: float | None = None
    note: str = ""
    # what the row was measured on (e.g. scale, workers), for figures derived from it
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


@dataclass
class NotMeasured:
    bench: str
    what: str
    reason: str


@dataclass
class Report:
    mode: str
    machine: dict[str, Any]
    parameters: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    not_measured: list[NotMeasured] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "started_at": self.started_at,
            "machine": self.machine,
            "parameters": self.parameters,
            "figures": [f.as_json() for f in self.figures],
            "not_measured": [asdict(n) for n in self.not_measured],
            "errors": self.errors,
        }

    def write(self, directory: Path = RESULTS_DIR) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        stamp = self.started_at.replace(":", "").replace("-", "").split(".")[0]
        path = directory / f"bench-{self.mode}-{stamp}.json"
        path.write_text(json.dumps(self.as_json(), indent=2, default=str) + "\n")
        return path


COLUMNS = ("id", "what", "value", "baseline (same run)", "ratio", "target", "result")


def _rate(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.2f} {unit}"


def rows(report: Report) -> list[tuple[str, ...]]:
    out = []
    for f in report.figures:
        baseline = (
            f"{f.baseline_what}: {_rate(f.baseline_value, f.unit)}" if f.baseline_what else "-"
        )
        ratio = f"{f.ratio:.1%}" if f.ratio is not None else "-"
        result = {True: "pass", False: "MISS", None: "-"}[f.passed]
        out.append(
            (f.bench, f.what, _rate(f.value, f.unit), baseline, ratio, f.target or "-", result)
        )
    for n in report.not_measured:
        out.append((n.bench, n.what, "not measured", "-", "-", "-", n.reason))
    return out


def render(report: Report) -> str:
    """The table as Markdown (readable in a terminal, pastable in the README)."""
    table = [COLUMNS, *rows(report)]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(COLUMNS), "| " + " | ".join("-" * w for w in widths) + " |"]
    out += [line(r) for r in table[1:]]
    m = report.machine
    out.append("")
    out.append(
        f"machine: {m.get('cpu_model')}, {m.get('cores')} cores, {m.get('ram_gib')} GiB RAM, "
        f"Python {m.get('python')}, Kafka {m.get('kafka_version') or '-'}, "
        f"load at start {m.get('load_average_at_start')}"
    )
    for e in report.errors:
        out.append(f"error in {e['bench']}: {e['error']}")
    return "\n".join(out)
