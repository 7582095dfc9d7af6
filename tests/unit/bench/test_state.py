"""B7's and B8's pure parts: synthetic households, the extrapolation, the curve and argument
checks. No timings are asserted (benchmarks are not tests)."""

from __future__ import annotations

import pytest

from bench import scaleout, state
from bench.__main__ import main
from bench.data import load
from services.contract.codec import Codec
from services.monitoring.adapters.table_codec import load_row, load_summary


@pytest.fixture(scope="module")
def templates():
    return state.templates(load(0.005, Codec.default()), Codec.default())


def test_templates_are_the_county_households_folded(templates):
    assert len(templates) > 10
    for t in templates:
        row = load_row(t.row)
        assert row.state.household_id.encode() == t.household_id
        assert row.state.seen  # every household has at least one event folded in
        load_summary(t.summary)
        assert t.input_bytes > 0


def test_synthetic_households_are_distinct_valid_rows_of_the_template_size(templates):
    keys = set()
    for i in range(3 * len(templates)):
        key, raw_row, raw_summary = state.synthetic(templates, i)
        template = templates[i % len(templates)]
        assert len(key) == len(template.household_id) and key.startswith(b"DJ9")
        assert len(raw_row) == len(template.row)
        row = load_row(raw_row)
        assert row.state.household_id.encode() == key
        assert template.household_id not in raw_row
        load_summary(raw_summary)
        keys.add(key)
    assert len(keys) == 3 * len(templates)
    assert not keys & {t.household_id for t in templates}


def test_synthetic_id_refuses_a_number_that_does_not_fit():
    assert state.synthetic_id(999_999_999, 12) == b"DJ9999999999"
    with pytest.raises(ValueError, match="does not fit"):
        state.synthetic_id(1_000_000_000, 12)


def test_extrapolation_is_labelled_and_linear_through_the_two_largest_runs():
    empty = state.WorkerRun(0, "memory", 5.0, None, 60_000)
    runs = [
        state.WorkerRun(10_000, "memory", 10.0, 4.0, 80_000),
        state.WorkerRun(100_000, "memory", 55.0, 49.0, 300_000),
    ]
    figure = state.extrapolated(empty, runs)
    assert "EXTRAPOLATED" in figure.what and figure.passed is None
    assert figure.value == pytest.approx(55.0 + 0.0005 * 900_000)
    assert "over the target" in figure.note


def test_worker_figures_check_the_target_only_at_a_million(templates):
    empty = state.WorkerRun(0, "memory", 5.0, None, 60_000)
    small = state.WorkerRun(10_000, "memory", 10.0, 4.0, 80_000)
    big = state.WorkerRun(1_000_000, "memory", 50.0, 44.0, 4_000_000)
    by_what = {f.what: f for f in state.worker_figures(empty, [(small, 1.0, 20_000)])}
    recovery = by_what["recovery from changelog, 10,000 households, memory store"]
    assert recovery.target is None and recovery.passed is None
    assert any("EXTRAPOLATED" in w for w in by_what)
    by_what = {f.what: f for f in state.worker_figures(empty, [(big, 10.0, 2_000_000)])}
    assert by_what["recovery from changelog, 1,000,000 households, memory store"].passed is True
    assert not any("EXTRAPOLATED" in w for w in by_what)


def test_scaleout_ratios_are_against_one_worker_on_twelve_partitions():
    results = [(12, 1, 1000, 10.0, 5000.0), (12, 2, 1000, 5.0, 5000.0), (1, 1, 1000, 20.0, 1.0)]
    figures = scaleout.figures(results)
    assert [f.ratio for f in figures] == [1.0, 2.0, 0.5]
    assert figures[1].what.endswith("2 workers, 12 partitions")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "B99"], "unknown bench ids B99"),
        (["--only", "B9", "--console-requests", "0"], "--console-requests: at least 1"),
        (["--only", "B7", "--households", "ten"], "whole numbers"),
        (["--only", "B7", "--households", "0"], "from 1"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(argv, message):
    with pytest.raises(SystemExit, match=message):
        main(argv)
