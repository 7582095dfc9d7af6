"""The report as one self-contained HTML page: inline SVG charts, no scripts, no external files."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from services.tools.demo.report import FLAGGED_SERIES

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
FONT = "font-family:system-ui,sans-serif;font-size:12px"
FLAGGED_COLOUR = "#bbbbbb"


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page; every number comes from `report` (the JSON twin is embedded too)."""
    run, hh, visits = report["run"], report["households"], report["visits"]
    measures, problems, timeline = report["measures"], report["problems"], report["timeline"]
    categories = sorted(
        (set(timeline["by_category"]) | set(hh["monitored_by_category"])) - {FLAGGED_SERIES}
    )
    colours = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(categories)}
    colours[FLAGGED_SERIES] = FLAGGED_COLOUR
    towns = {t: c for t, c in hh["by_township"].items() if c.get("flagged") or c.get("monitored")}
    measure_types = sorted(
        set(measures["recommended_by_type"]) | set(measures["delivered_by_type"])
    )
    e = html.escape
    cards = [
        ("households", f"{hh['total']:,}"),
        ("flagged, pending decision", f"{hh['flagged']:,}"),
        ("monitored", f"{hh['monitored']:,}"),
        ("measures recommended", f"{measures['recommended']:,}"),
        ("measures delivered", f"{measures['delivered']:,}"),
        ("waiting measures", f"{measures['waiting_measures']:,}"),
        ("visit coverage (registered)", _pct(visits["registered_coverage"])),
        ("problems rectified", f"{problems['rectified']:,} / {problems['found']:,}"),
        ("events/s end to end", f"{run['end_to_end_events_per_second']:,.0f}"),
    ]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Shouwang demo report</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}",
        ".cards{display:flex;flex-wrap:wrap;gap:.6em}.card{border:1px solid #ccc;"
        "border-radius:6px;padding:.5em .8em;min-width:9em}.card b{display:block;font-size:1.4em}",
        "table{border-collapse:collapse;margin:.5em 0}td,th{border-bottom:1px solid #ddd;"
        "padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}",
        ".warn{color:#a00}</style></head><body>",
        "<h1>Shouwang demo: a synthetic county</h1>",
        f"<p>Seed {run['seed']}, scale {run['scale']:g}; campaign {e(run['campaign'][0])} to "
        f"{e(run['campaign'][1])}. {run['events_written']:,} events written through the visits "
        f"API in {run['ingest_seconds']:.1f} s; every service had processed them "
        f"{run['settle_seconds']:.1f} s later.</p>",
        "<div class='cards'>",
        *(f"<div class='card'>{e(label)}<b>{e(value)}</b></div>" for label, value in cards),
        "</div>",
        *(f"<p class='warn'>warning: {e(w)}</p>" for w in run["warnings"]),
        "<h2>Households with a risk category, by campaign day</h2>",
        "<p>Each household counted under its latest assessment that day: monitored, by "
        "category, or flagged and waiting for a decision. Days after the campaign show "
        "what was recorded later (late syncs and decisions).</p>",
        line_chart(timeline["days"], timeline["by_category"], colours),
        f"<p class='warn'>The last day also counts {timeline['households_assessed_later']:,} "
        f"household(s) whose latest assessment is dated later, up to "
        f"{e(timeline['latest_assessment'])}.</p>"
        if timeline.get("households_assessed_later")
        else "",
        "<h2>Flagged and monitored households by township</h2>",
        stacked_bars(
            {t: {**_monitored(c), "flagged": c.get("flagged", 0)} for t, c in towns.items()},
            [*categories, "flagged"],
            {**colours, "flagged": FLAGGED_COLOUR},
        )
        if towns
        else "<p>No township has a flagged or monitored household.</p>",
        "<h2>Measures by type</h2>",
        grouped_bars(
            {
                t: {
                    "recommended": measures["recommended_by_type"].get(t, 0),
                    "delivered": measures["delivered_by_type"].get(t, 0),
                }
                for t in measure_types
            },
            ["recommended", "delivered"],
            {"recommended": PALETTE[0], "delivered": PALETTE[2]},
        )
        if measure_types
        else "<p>No measure was recommended or delivered.</p>",
        "<h2>Numbers</h2>",
        table("households by workflow", hh["by_workflow"]),
        table("monitored by category", hh["monitored_by_category"]),
        table("measures by status", measures["by_status"]),
        table("waiting households by measure type", measures["waiting_by_type"]),
        table("overdue signals", visits["overdue"]),
        table(
            "problems by item (found / rectified)",
            {k: f"{v['found']:,} / {v['rectified']:,}" for k, v in problems["by_item"].items()},
        ),
        table("epidemic five visits, five helps (county)", report["campaign"]["county"]),
        table(
            "entry and exit procedure: households by the step they await",
            report["procedure"]["by_step"],
        ),
        table("procedure steps overdue", report["procedure"]["overdue_by_step"]),
        table("decisions taken by exception", report["exceptions"]["by_code"]),
        table(
            "rectification by township, lowest first (rectified / found)",
            {
                t or "(unknown)": f"{v['rectified']:,} / {v['found']:,} ({_pct(v['rate'])})"
                for t, v in problems["by_township"].items()
            },
        ),
        table(
            "carried over by the policy switch, by category now "
            f"(re-review past due: {report['transition']['rereview_overdue']:,})",
            report["transition"]["by_category"],
        ),
        table("records in the log, by topic", run["records_by_topic"]),
        f"<p>Visit coverage: {visits['registered_visited']:,} of "
        f"{visits['registered_households']:,} registered households visited "
        f"({_pct(visits['registered_coverage'])}); {visits['monitored_visited']:,} of "
        f"{visits['monitored_households']:,} monitored ({_pct(visits['monitored_coverage'])}).</p>",
        "<script type='application/json' id='report'>",
        json.dumps(report, ensure_ascii=False).replace("</", "<\\/"),
        "</script></body></html>",
    ]
    return "\n".join(parts)


def _monitored(counts: Mapping[str, int]) -> dict[str, int]:
    prefix = "monitored:"
    return {k[len(prefix) :]: v for k, v in counts.items() if k.startswith(prefix)}


def table(title: str, rows: Mapping[str, Any]) -> str:
    e = html.escape
    if not rows:
        return f"<p>{e(title)}: none</p>"
    body = "".join(
        f"<tr><td>{e(str(k))}</td><td>{e(f'{v:,}' if isinstance(v, int) else str(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table><tr><th colspan='2'>{e(title)}</th></tr>{body}</table>"


def line_chart(
    days: Sequence[str],
    series: Mapping[str, Sequence[int]],
    colours: Mapping[str, str],
    width: int = 900,
    height: int = 280,
) -> str:
    """One polyline per series over the days, with a y axis and a legend."""
    if not days or not series:
        return "<p>No household has had a risk category yet.</p>"
    left, right, top, bottom = 50, 220, 10, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(1, max(max(v) for v in series.values()))
    step = plot_w / max(1, len(days) - 1)

    def y(value: int) -> float:
        return top + plot_h - value / peak * plot_h

    out = [_svg_open(width, height, "households by category over the campaign")]
    for tick in _ticks(peak):
        out.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{y(tick):.1f}' y2='{y(tick):.1f}' "
            f"stroke='#eee'/><text x='{left - 5}' y='{y(tick) + 4:.1f}' "
            f"text-anchor='end'>{tick:,}</text>"
        )
    for n in range(0, len(days), max(1, len(days) // 7)):
        out.append(
            f"<text x='{left + n * step:.1f}' y='{height - 10}' text-anchor='middle'>"
            f"{html.escape(days[n][5:])}</text>"
        )
    for i, (name, values) in enumerate(series.items()):
        points = " ".join(f"{left + n * step:.1f},{y(v):.1f}" for n, v in enumerate(values))
        colour = colours.get(name, PALETTE[i % len(PALETTE)])
        out.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{points}'/>")
        out.append(_legend(left + plot_w + 10, top + 16 * i, colour, f"{name} ({values[-1]:,})"))
    out.append("</svg>")
    return "".join(out)


def stacked_bars(
    rows: Mapping[str, Mapping[str, int]],
    keys: Sequence[str],
    colours: Mapping[str, str],
    width: int = 900,
) -> str:
    """One horizontal bar per row, stacked by `keys`."""
    bar, gap, left, right, top = 16, 4, 120, 200, 10
    height = top + len(rows) * (bar + gap) + 10
    height = max(height, top + 16 * len(keys) + 10)
    peak = max(1, max(sum(r.get(k, 0) for k in keys) for r in rows.values()))
    plot_w = width - left - right
    out = [_svg_open(width, height, "households by township")]
    for n, (name, counts) in enumerate(rows.items()):
        y0, x = top + n * (bar + gap), float(left)
        out.append(
            f"<text x='{left - 5}' y='{y0 + bar - 4}' text-anchor='end'>{html.escape(name)}</text>"
        )
        for key in keys:
            w = counts.get(key, 0) / peak * plot_w
            if w:
                out.append(
                    f"<rect x='{x:.1f}' y='{y0}' width='{w:.1f}' height='{bar}' "
                    f"fill='{colours.get(key, '#888')}'><title>{html.escape(key)}: "
                    f"{counts.get(key, 0):,}</title></rect>"
                )
                x += w
        total = sum(counts.get(k, 0) for k in keys)
        out.append(f"<text x='{x + 4:.1f}' y='{y0 + bar - 4}'>{total:,}</text>")
    for i, key in enumerate(keys):
        out.append(_legend(left + plot_w + 30, top + 16 * i, colours.get(key, "#888"), key))
    out.append("</svg>")
    return "".join(out)


def grouped_bars(
    rows: Mapping[str, Mapping[str, int]],
    keys: Sequence[str],
    colours: Mapping[str, str],
    width: int = 900,
) -> str:
    """For each row, one horizontal bar per key."""
    bar, gap, left, right, top = 10, 8, 160, 160, 10
    height = top + len(rows) * (len(keys) * bar + gap) + 10
    peak = max(1, max(max(r.get(k, 0) for k in keys) for r in rows.values()))
    plot_w = width - left - right
    out = [_svg_open(width, height, "measures by type")]
    for n, (name, counts) in enumerate(rows.items()):
        y0 = top + n * (len(keys) * bar + gap)
        out.append(
            f"<text x='{left - 5}' y='{y0 + len(keys) * bar / 2 + 4:.1f}' text-anchor='end'>"
            f"{html.escape(name)}</text>"
        )
        for i, key in enumerate(keys):
            value = counts.get(key, 0)
            w = value / peak * plot_w
            out.append(
                f"<rect x='{left}' y='{y0 + i * bar}' width='{w:.1f}' height='{bar - 1}' "
                f"fill='{colours[key]}'><title>{html.escape(key)}: {value:,}</title></rect>"
                f"<text x='{left + w + 4:.1f}' y='{y0 + i * bar + bar - 1}' "
                f"font-size='10'>{value:,}</text>"
            )
    for i, key in enumerate(keys):
        out.append(_legend(left + plot_w + 40, top + 16 * i, colours[key], key))
    out.append("</svg>")
    return "".join(out)


def _svg_open(width: int, height: int, label: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' role='img' aria-label='{html.escape(label)}' "
        f"style='{FONT}'>"
    )


def _legend(x: float, y: float, colour: str, text: str) -> str:
    return (
        f"<rect x='{x:.1f}' y='{y:.1f}' width='10' height='10' fill='{colour}'/>"
        f"<text x='{x + 14:.1f}' y='{y + 9:.1f}'>{html.escape(text)}</text>"
    )


def _ticks(peak: int) -> list[int]:
    raw = peak / 4
    magnitude = 10 ** max(0, len(str(int(raw))) - 1)
    step = max(1, round(raw / magnitude) * magnitude)
    return list(range(0, peak + 1, step))


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.1%}"
