"""The demo's report, built from read-model facts and run statistics: pure functions, no I/O.

`build_report` returns plain JSON-able data (the report's JSON twin, which the end-to-end test
checks against the read model); `render_text` prints it for the terminal; the HTML page is made
from the same data by `services.tools.demo.html_report`.

Long because each section's numbers and its lines of text sit in one file, so a figure can be
followed from the facts to the terminal without jumping between modules.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.tools.demo.read_model import ReadModelFacts

CST = dt.timezone(dt.timedelta(hours=8), "CST")
# Workflow statuses as the projector stores them (lower case of the assessment's workflow).
FLAGGED = ("flagged", "verifying")  # found at risk, decision pending
MONITORED = ("monitored", "elimination_proposed")
REGISTERED = ("lifted", "not_lifted")  # registered poor households (lifted or not yet)
DELIVERED_STEPS = ("DELIVERED", "COMPLETED")
FLAGGED_SERIES = "flagged (pending decision)"
DEAD_LETTER_TOPIC = "shouwang.deadletter"


@dataclass(frozen=True)
class RunStats:
    """How the run went: what was written, how long each phase took, what the log holds."""

    seed: int
    scale: float
    campaign_start: dt.date
    campaign_end: dt.date
    events_written: int
    ingest_seconds: float  # first POST to the last acknowledged batch
    settle_seconds: float  # last batch to every consumer caught up
    wall_seconds: float  # the whole demo so far, stack start-up included
    records_by_topic: Mapping[str, int]
    input_topics: tuple[str, ...]
    lag: Mapping[str, int] = field(default_factory=dict)  # consumer -> records behind at the end
    warnings: tuple[str, ...] = ()


def build_report(
    facts: ReadModelFacts,
    run: RunStats,
    assessments: Iterable[tuple[str, str | None, str, dt.datetime]] = (),
) -> dict[str, Any]:
    """Every number of the report, as JSON-able data; `assessments` as for category_timeline."""
    return {
        "run": _run(run),
        "households": _households(facts),
        "visits": _visits(facts),
        "measures": _measures(facts),
        "problems": _problems(facts),
        "campaign": _campaign(facts),
        "transition": _transition(facts),
        "procedure": _procedure(facts),
        "exceptions": _exceptions(facts),
        "timeline": category_timeline(assessments, run.campaign_start, run.campaign_end),
        "read_model": {"rejected_records": facts.rejects},
    }


def _transition(facts: ReadModelFacts) -> dict[str, Any]:
    """Households a policy switch carried over (e.g. dianjiang-2020 → national-2021), by the
    category they hold now, and those whose re-review is past due."""
    by_category: Counter[str] = Counter()
    by_workflow: Counter[str] = Counter()
    overdue = 0
    for category, workflow, rereview_overdue, count in facts.transitions:
        by_category[category or "uncategorised"] += count
        by_workflow[workflow] += count
        overdue += count if rereview_overdue else 0
    return {
        "carried_over": sum(by_category.values()),
        "by_category": _sorted(by_category),
        "by_workflow": _sorted(by_workflow),
        "rereview_overdue": overdue,
    }


def _run(run: RunStats) -> dict[str, Any]:
    inputs = sum(run.records_by_topic.get(t, 0) for t in run.input_topics)
    processing = run.ingest_seconds + run.settle_seconds
    return {
        "seed": run.seed,
        "scale": run.scale,
        "campaign": [run.campaign_start.isoformat(), run.campaign_end.isoformat()],
        "events_written": run.events_written,
        "input_events_in_log": inputs,
        "dead_letters": run.records_by_topic.get(DEAD_LETTER_TOPIC, 0),
        "records_by_topic": dict(sorted(run.records_by_topic.items())),
        "ingest_seconds": round(run.ingest_seconds, 2),
        "settle_seconds": round(run.settle_seconds, 2),
        "wall_seconds": round(run.wall_seconds, 2),
        "ingest_events_per_second": _rate(run.events_written, run.ingest_seconds),
        "end_to_end_events_per_second": _rate(run.events_written, processing),
        "lag_at_end": dict(run.lag),
        "warnings": list(run.warnings),
    }


def _households(facts: ReadModelFacts) -> dict[str, Any]:
    by_registration: Counter[str] = Counter()
    by_workflow: Counter[str] = Counter()
    flagged_by_category: Counter[str] = Counter()
    monitored_by_category: Counter[str] = Counter()
    by_township: dict[str, Counter[str]] = defaultdict(Counter)
    for township, registration, workflow, category, count in facts.households:
        by_registration[registration or "unknown"] += count
        by_workflow[workflow] += count
        town = township or "unknown"
        by_township[town]["households"] += count
        if workflow in FLAGGED:
            flagged_by_category[category or "uncategorised"] += count
            by_township[town]["flagged"] += count
        elif workflow in MONITORED:
            monitored_by_category[category or "uncategorised"] += count
            by_township[town][f"monitored:{category or 'uncategorised'}"] += count
            by_township[town]["monitored"] += count
    return {
        "total": sum(by_registration.values()),
        "by_registration": _sorted(by_registration),
        "by_workflow": _sorted(by_workflow),
        "flagged": sum(flagged_by_category.values()),
        "flagged_by_category": _sorted(flagged_by_category),
        "monitored": sum(monitored_by_category.values()),
        "monitored_by_category": _sorted(monitored_by_category),
        "by_township": {t: _sorted(c) for t, c in sorted(by_township.items())},
    }


def _visits(facts: ReadModelFacts) -> dict[str, Any]:
    registered = registered_visited = monitored = monitored_visited = 0
    for registration, workflow, count, visited in facts.visited:
        if registration in REGISTERED:
            registered += count
            registered_visited += visited
        if workflow in MONITORED:
            monitored += count
            monitored_visited += visited
    return {
        "registered_households": registered,
        "registered_visited": registered_visited,
        "registered_coverage": _share(registered_visited, registered),
        "monitored_households": monitored,
        "monitored_visited": monitored_visited,
        "monitored_coverage": _share(monitored_visited, monitored),
        "overdue": _sorted(Counter(dict(facts.overdue))),
    }


def _measures(facts: ReadModelFacts) -> dict[str, Any]:
    recommended: Counter[str] = Counter()
    delivered: Counter[str] = Counter()
    for measure_type, step, waiting, measures, _households in facts.measure_steps:
        if step == "RECOMMENDED" and not waiting:
            recommended[measure_type] += measures
        elif step in DELIVERED_STEPS:
            delivered[measure_type] += measures
    by_status: Counter[str] = Counter()
    waiting_by_type: Counter[str] = Counter()
    for measure_type, status, measures, households in facts.measures:
        by_status[status] += measures
        if status == "waiting":
            waiting_by_type[measure_type] += households
    return {
        "recommended_by_type": _sorted(recommended),
        "recommended": sum(recommended.values()),
        "delivered_by_type": _sorted(delivered),
        "delivered": sum(delivered.values()),
        "by_status": _sorted(by_status),
        "waiting_by_type": _sorted(waiting_by_type),
        "waiting_measures": by_status.get("waiting", 0),
    }


def _problems(facts: ReadModelFacts) -> dict[str, Any]:
    found: Counter[str] = Counter()
    rectified: Counter[str] = Counter()
    for item, status, count in facts.problems:
        found[item] += count
        if status == "rectified":
            rectified[item] += count
    total, done = sum(found.values()), sum(rectified.values())
    towns: dict[str, Counter[str]] = defaultdict(Counter)  # township -> found, rectified
    for township, status, count in facts.problems_by_township:
        towns[township or ""]["found"] += count
        if status == "rectified":
            towns[township or ""]["rectified"] += count
    return {
        "found": total,
        "rectified": done,
        "open": total - done,
        "rectification_rate": _share(done, total),
        "by_item": {i: {"found": found[i], "rectified": rectified[i]} for i in sorted(found)},
        # the lowest rate first: where rectification lags
        "by_township": {
            t: {
                "found": c["found"],
                "rectified": c["rectified"],  # 0 where none was (a Counter omits it)
                "rate": c["rectified"] / c["found"],
            }
            for t, c in sorted(towns.items(), key=_lagging)
        },
    }


def _campaign(facts: ReadModelFacts) -> dict[str, Any]:
    """The epidemic five-visits campaign: the county's totals and each township's."""
    rows = facts.campaign
    county = next((_figures(r) for r in rows if r["total"]), {})
    return {
        "county": county,
        "by_township": {r["township"] or "": _figures(r) for r in rows if not r["total"]},
    }


def _procedure(facts: ReadModelFacts) -> dict[str, Any]:
    """Households in the entry and exit procedure: in public notice, awaiting the township's
    review or the county's approval (and the steps before), overdue, by township."""
    by_step: Counter[str] = Counter()
    overdue: Counter[str] = Counter()
    by_township: dict[str, Counter[str]] = defaultdict(Counter)
    for row in facts.procedures:
        by_step[row["awaiting"]] += row["households"]
        overdue[row["awaiting"]] += row["overdue"]
        by_township[row["township"] or "unknown"][row["awaiting"]] += row["households"]
    return {
        "in_notice": by_step["notice_running"],
        "awaiting_township_review": by_step["township_review"],
        "awaiting_county_approval": by_step["county_approval"],
        "by_step": _sorted(by_step),
        "overdue": sum(overdue.values()),
        "overdue_by_step": _sorted(overdue),
        "by_township": {t: _sorted(c) for t, c in sorted(by_township.items())},
    }


def _exceptions(facts: ReadModelFacts) -> dict[str, Any]:
    """Decisions that took effect by exception (policy_exception, procedure_exception)."""
    by_code: Counter[str] = Counter()
    for row in facts.exception_counts:
        by_code[row["code"]] += row["exceptions"]
    return {
        "total": sum(by_code.values()),
        "by_code": _sorted(by_code),
        "first": [
            {
                "household_id": e["household_id"],
                "township": e["township"],
                "code": e["code"],
                "decision_event_id": e["decision_event_id"],
                "message": e["message"],
                "recorded_at": e["recorded_at"].isoformat(),
            }
            for e in facts.exceptions
        ],
    }


def _figures(row: Mapping[str, Any]) -> dict[str, int]:
    return {k: v for k, v in row.items() if k not in ("township", "total")}


def _lagging(item: tuple[str, Counter[str]]) -> tuple[float, str]:
    township, counts = item  # a township is listed only once a problem was found there
    return counts["rectified"] / counts["found"], township


def category_timeline(
    assessments: Iterable[tuple[str, str | None, str, dt.datetime]],
    first: dt.date,
    last: dt.date,
    tail_days: int = 30,
) -> dict[str, Any]:
    """Households monitored per category, and flagged (decision pending), at the end of each
    day (China time), by each household's latest assessment up to that day.

    `assessments` are (household_id, category, workflow, as_of), ordered by household, then
    as_of. The days run from `first` to `last`, extended by up to `tail_days` when assessments
    speak for later days (late syncs, decisions after the campaign); an assessment before the
    first day counts from it, one after the last day counts on it, so the last day shows every
    household's final state.
    """
    assessments = list(assessments)
    latest = max((a[3].astimezone(CST).date() for a in assessments), default=last)
    last = min(max(last, latest), last + dt.timedelta(days=tail_days))
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    changes: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
    for household, category, workflow, as_of in assessments:
        position = min(max((as_of.astimezone(CST).date() - first).days, 0), len(days) - 1)
        if workflow.lower() in MONITORED:
            label: str | None = category or "uncategorised"
        elif workflow.lower() in FLAGGED:
            label = FLAGGED_SERIES
        else:
            label = None
        changes[household].append((position, label))
    for history in changes.values():
        # The label a household holds from each change until the next one.
        following = [start for start, _ in history[1:]] + [len(days)]
        for (start, label), end in zip(history, following, strict=True):
            if label is not None:
                for n in range(start, end):
                    series[label][n] += 1
    beyond = sorted({h for h, _, _, as_of in assessments if as_of.astimezone(CST).date() > last})
    return {
        "days": [d.isoformat() for d in days],
        "by_category": dict(sorted(series.items())),
        # Households with an assessment dated after the last day (counted on it), and the date.
        "households_assessed_later": len(beyond),
        "latest_assessment": latest.isoformat(),
    }


def render_text(report: Mapping[str, Any]) -> str:
    """The report for the terminal."""
    run, hh, visits = report["run"], report["households"], report["visits"]
    measures, problems = report["measures"], report["problems"]
    lines = [
        f"Shouwang demo — synthetic county, seed {run['seed']}, scale {run['scale']:g}, "
        f"campaign {run['campaign'][0]} .. {run['campaign'][1]}",
        "",
        f"households in the read model: {hh['total']:,} " + _inline(hh["by_registration"]),
        f"flagged (decision pending): {hh['flagged']:,} " + _inline(hh["flagged_by_category"]),
        f"monitored: {hh['monitored']:,} " + _inline(hh["monitored_by_category"]),
        "by township (households / flagged / monitored):",
    ]
    for township, counts in hh["by_township"].items():
        if counts.get("flagged") or counts.get("monitored"):
            lines.append(
                f"  {township:14} {counts.get('households', 0):6,} "
                f"{counts.get('flagged', 0):5,} {counts.get('monitored', 0):5,}"
            )
    quiet = sum(
        1 for c in hh["by_township"].values() if not (c.get("flagged") or c.get("monitored"))
    )
    if quiet:
        lines.append(f"  ({quiet} township(s) with nobody flagged or monitored)")
    lines += [
        "",
        f"measures recommended: {measures['recommended']:,} "
        + _inline(measures["recommended_by_type"]),
        f"measures delivered: {measures['delivered']:,} " + _inline(measures["delivered_by_type"]),
        f"waiting (no capacity yet): {measures['waiting_measures']:,} measures; households "
        + (_inline(measures["waiting_by_type"]) or "none"),
        "",
        f"visit coverage: registered households {visits['registered_visited']:,} of "
        f"{visits['registered_households']:,} ({_pct(visits['registered_coverage'])}); "
        f"monitored {visits['monitored_visited']:,} of {visits['monitored_households']:,} "
        f"({_pct(visits['monitored_coverage'])})",
        "overdue: " + (_inline(visits["overdue"]) or "none"),
        f"problems found: {problems['found']:,}, rectified {problems['rectified']:,} "
        f"({_pct(problems['rectification_rate'])}), open {problems['open']:,}",
        *_campaign_lines(report["campaign"]["county"]),
        *_transition_lines(report["transition"]),
        *_procedure_lines(report["procedure"], report["exceptions"]),
        *_door_lines(report.get("door")),
        "rectification by township, lowest first (rectified / found): "
        + (
            ", ".join(
                f"{t or '(unknown)'} {v['rectified']:,}/{v['found']:,} ({_pct(v['rate'])})"
                for t, v in problems["by_township"].items()
            )
            or "no problems found"
        ),
        "",
        f"events written through the visits API: {run['events_written']:,} in "
        f"{run['ingest_seconds']:.1f} s ({run['ingest_events_per_second']:,.0f}/s); all "
        f"processed {run['settle_seconds']:.1f} s later "
        f"({run['end_to_end_events_per_second']:,.0f} events/s end to end)",
        "records in the log: " + _inline(run["records_by_topic"]),
        f"wall time so far: {run['wall_seconds']:.0f} s",
    ]
    if run["dead_letters"]:
        lines.append(
            f"dead letters: {run['dead_letters']:,} record(s) a service could not apply "
            "(see the services' logs)"
        )
    if report["read_model"]["rejected_records"]:
        lines.append(f"read model refused {report['read_model']['rejected_records']} record(s)")
    lines += [f"warning: {w}" for w in run["warnings"]]
    return "\n".join(lines)


def _campaign_lines(c: Mapping[str, int]) -> list[str]:
    if not c.get("households_visited"):
        return ["epidemic five visits: no visit carried the block"]
    return [
        f"epidemic five visits: {c['households_visited']:,} households "
        f"(family impact recorded for {c['family_impact_recorded']:,}); unsold produce "
        f"{c['unsold_produce_yuan']:,} yuan, sold with aid {c['produce_sold_with_aid_yuan']:,} "
        f"yuan; members seeking work {c['members_seeking_work']:,}, organised into work "
        f"{c['workers_organised']:,} (public-welfare jobs {c['public_welfare_jobs']:,}); spring "
        f"farming needing help {c['spring_farming_needs_help']:,}, helped "
        f"{c['spring_farming_helped']:,}; students learning at home "
        f"{c['students_learning_at_home']:,} ({c['students_without_access']:,} without access, "
        f"{c['students_helped']:,} helped)"
    ]


def _transition_lines(t: Mapping[str, Any]) -> list[str]:
    if not t["carried_over"]:
        return []  # the run did not cross a policy switch (or nobody was in the workflow)
    return [
        f"carried over by the policy switch: {t['carried_over']:,} households "
        + _inline(t["by_category"])
        + f"; re-review past due: {t['rereview_overdue']:,}"
    ]


def _procedure_lines(p: Mapping[str, Any], e: Mapping[str, Any]) -> list[str]:
    lines = [
        f"entry and exit procedure: in public notice {p['in_notice']:,}, awaiting township "
        f"review {p['awaiting_township_review']:,}, awaiting county approval "
        f"{p['awaiting_county_approval']:,} " + _inline(p["by_step"]) + f"; steps overdue "
        f"{p['overdue']:,}",
        f"exceptions (decisions taken by exception): {e['total']:,} " + _inline(e["by_code"]),
    ]
    lines += [
        f"  {x['household_id']} ({x['township'] or 'unknown'}) {x['code']}: {x['message']}"
        for x in e["first"]
    ]
    if e["total"] > len(e["first"]):
        lines.append(f"  ... and {e['total'] - len(e['first']):,} more (/v1/exceptions)")
    return lines


def _door_lines(door: Mapping[str, Any] | None) -> list[str]:
    """What the visits API's procedure check did with the campaign's review decisions."""
    if not door:
        return []
    return [
        f"review decisions judged at the door against the monitoring view: "
        f"{door['taken'] + door['refused']:,} (taken {door['taken']:,}, refused "
        f"{door['refused']:,}); accepted unchecked {sum(door['unchecked'].values()):,} "
        + _inline(door["unchecked"])
    ]


def _inline(counts: Mapping[str, int]) -> str:
    if not counts:
        return ""
    return "(" + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + ")"


def _sorted(counts: Counter[str]) -> dict[str, int]:
    return {k: counts[k] for k in sorted(counts) if counts[k]}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.1%}"


def _rate(events: int, seconds: float) -> float:
    return round(events / seconds, 1) if seconds > 0 else 0.0
