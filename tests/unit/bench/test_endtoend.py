"""B10's pure parts: its rows from runs, the EXTRAPOLATED year estimates from a run's figures,
and its arguments refused before anything starts. The pipeline itself runs in `make
bench-quick` (it is `shouwang demo`, tested end to end in tests/e2e)."""

from __future__ import annotations

import pytest

from bench import endtoend, estimate
from bench.__main__ import FULL, QUICK, _e2e_runs, main
from bench.report import Figure


def _run(scale: float, workers: int, seconds: float, events: int = 86_000) -> endtoend.Run:
    return endtoend.Run(
        scale, workers, events, seconds, seconds * 0.8, seconds * 0.2, {"household.risk": 5}, ()
    )


def test_rows_are_end_to_end_rates_against_the_raw_path_and_the_county_has_a_target():
    figures = endtoend.figures(
        [_run(1.0, 2, 200.0), _run(1.0, 1, 400.0), _run(0.02, 2, 30.0, 1_700)],
        raw_rate=8_600.0,
        produce_s=6.0,
        read_s=4.0,
    )
    two, one, small = figures
    assert (two.value, one.value) == (430.0, 215.0)
    assert two.ratio == pytest.approx(0.05)
    assert (two.passed, one.passed) == (True, False)  # 200 s and 400 s against 5 minutes
    assert small.target is None and small.passed is None  # only the county has the target
    assert "2 workers each" in two.what and "1 worker each" in one.what
    assert two.detail == {"scale": 1.0, "workers": 2}


def _b10(scale: float, workers: int, rate: float) -> Figure:
    return Figure(
        "B10", "end to end", rate, "events/s", detail={"scale": scale, "workers": workers}
    )


def test_estimates_use_the_one_worker_rate_at_the_largest_scale():
    measured = [_b10(0.02, 1, 50.0), _b10(1.0, 2, 1_500.0), _b10(1.0, 1, 1_000.0)]
    rows = {f.what: f for f in estimate.figures(measured)}
    assert all(what.startswith("EXTRAPOLATED: ") for what in rows)
    province_1 = next(f for w, f in rows.items() if "province" in w and "1 worker" in w)
    assert province_1.value == pytest.approx(10_000_000 / 1_000 / 3600)  # 2.78 hours
    national = next(f for w, f in rows.items() if "national" in w and "12 workers" in w)
    assert national.value == pytest.approx(1_500_000_000 / 12_000 / 86_400)
    assert national.unit == "days"
    day = next(f for w, f in rows.items() if "24 hours" in w)
    assert day.value == 18  # 1.5e9 / (1,000/s × 86,400 s) = 17.4 → 18 workers
    assert "1.50× 1 worker" in province_1.note
    assert "a small county" not in province_1.note
    (small,) = [f for f in estimate.figures([_b10(0.02, 2, 60.0)]) if "province" in f.what][:1]
    assert "a small county: start-up weighs" in small.note


def test_estimates_without_a_one_worker_run_divide_by_the_workers():
    (rate, scale, workers, speedup) = estimate.per_worker([_b10(10.0, 2, 1_500.0)])
    assert (rate, scale, workers, speedup) == (750.0, 10.0, 2, None)


def test_no_estimate_without_an_end_to_end_run():
    assert estimate.figures([Figure("B2", "worker", 300.0, "records/s")]) == []


def test_the_monitoring_stage_row_uses_b2_and_the_note_names_b8():
    measured = [
        _b10(1.0, 1, 1_000.0),
        Figure("B2", "worker", 2_000.0, "records/s"),
        Figure("B8", "w", 2_000.0, "records/s", detail={"partitions": 12, "workers": 1}),
        Figure("B8", "w", 2_400.0, "records/s", detail={"partitions": 12, "workers": 2}),
    ]
    rows = estimate.figures(measured)
    alone = next(f for f in rows if "monitoring alone" in f.what)
    assert alone.value == pytest.approx(1_500_000_000 / 24_000 / 86_400)
    assert "1.20× for monitoring alone (B8" in alone.note


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "B10", "--e2e-scales", "one"], "comma-separated numbers"),
        (["--only", "B10", "--e2e-scales", "0"], "each must be positive"),
        (["--only", "B10", "--e2e-workers", "0"], "each must be positive"),
        (["--only", "B10", "--e2e-workers", "13"], "at most 12"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(argv, message):
    with pytest.raises(SystemExit, match=message):
        main(argv)


@pytest.mark.parametrize(
    ("scales", "workers", "runs"),
    [
        (None, None, ((1.0, (2, 1)), (10.0, (2,)))),  # the county, then the province
        ("10", None, ((10.0, (2,)),)),  # a scale's own worker counts
        ("1", None, ((1.0, (2, 1)),)),
        ("0.5", None, ((0.5, (2, 1)),)),  # a scale the mode does not run: the first's counts
        (None, "1", ((1.0, (1,)), (10.0, (1,)))),  # given counts at every scale
        ("1,10", "3", ((1.0, (3,)), (10.0, (3,)))),
    ],
)
def test_the_full_bench_runs_the_province_and_options_choose_the_runs(scales, workers, runs):
    assert _e2e_runs(FULL, scales, workers) == runs
    assert _e2e_runs(QUICK, None, None) == ((0.02, (2,)),)
