"""The quick bench's code path on a tiny county: it runs to completion and its table and JSON
have the expected structure. No timings are asserted (benchmarks are not tests)."""

from __future__ import annotations

import json

from bench.__main__ import main
from bench.report import COLUMNS


def test_quick_run_prints_table_and_writes_json(tmp_path, capsys):
    code = main(["--quick", "--only", "B3", "--scale", "0.005", "--results", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("| " + COLUMNS[0])
    assert "B3" in out and "machine:" in out
    (written,) = tmp_path.glob("bench-quick-*.json")
    report = json.loads(written.read_text())
    assert set(report) >= {"mode", "machine", "parameters", "figures", "not_measured", "errors"}
    assert set(report["machine"]) >= {"cpu_model", "cores", "ram_gib", "python", "kafka_version"}
    assert report["errors"] == []
    figures = report["figures"]
    assert [f["bench"] for f in figures] == ["B3", "B3"]
    for figure in figures:
        assert figure["value"] > 0 and figure["baseline_value"] > 0
        assert figure["ratio"] == figure["value"] / figure["baseline_value"]
        assert figure["target"] and isinstance(figure["passed"], bool)
        assert figure["count"] > 0
    # Unmeasured benches are listed as such, never left out or given a number.
    listed = {n["bench"] for n in report["not_measured"]}
    assert {"B1", "B2", "B4", "B5", "B6", "B7", "B8"} <= listed
    rows = [line for line in out.splitlines() if line.startswith("| B")]
    assert len(rows) == len(figures) + len(report["not_measured"])
    assert all(line.count("|") == len(COLUMNS) + 1 for line in rows)
