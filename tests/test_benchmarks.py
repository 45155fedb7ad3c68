"""CI runs ``make bench-quick``: every benchmark's quick variant, failing when a same-run ratio is under its floor."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))


@pytest.mark.slow
def test_bench_quick_meets_every_floor(tmp_path):
    import run as bench_run

    out = tmp_path / "bench-quick.json"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    doc = json.loads(out.read_text())
    expected = [n for n in bench_run.BENCHMARKS if n not in bench_run.FULL_ONLY]
    assert sorted(doc["benchmarks"]) == sorted(expected), proc.stdout[-3000:]
    assert doc["failures"] == [] and proc.returncode == 0, (doc["failures"], proc.stdout[-5000:], proc.stderr[-5000:])
    floored = [(name, r) for name, b in doc["benchmarks"].items() for r in b["rows"] if r["floor"] is not None]
    assert {name for name, _ in floored} >= {"stl", "stats", "mlr", "kriging", "region_grow", "ingest", "uconvlstm",
                                             "pipeline"}
    assert all(r["ratio"] >= r["floor"] for _, r in floored)
    assert doc["machine"]["cpu_count"] and "load_average" in doc["machine"]
    for line in ("benchmark", "ratio", "floor"):
        assert line in proc.stdout  # the one table is printed


def test_a_ratio_under_its_floor_fails_the_run(tmp_path):
    """The harness's verdict: a row under its floor, or a benchmark that raised, makes the exit status 1."""
    import harness

    ok = {"a": {"rows": [harness.row("x", "fast", ours=1.0, reference=10.0, floor=5.0)]}}
    slow = {"a": {"rows": [harness.row("x", "slow", ours=1.0, reference=3.0, floor=5.0)]}}
    broken = {"a": {"error": "RuntimeError: boom"}}
    assert harness.write_results(ok, quick=True, out=tmp_path / "ok.json", started="t") == 0
    assert harness.write_results(slow, quick=True, out=tmp_path / "slow.json", started="t") == 1
    assert harness.write_results(broken, quick=True, out=None, started="t") == 1
    assert json.loads((tmp_path / "slow.json").read_text())["failures"] == ["a/x: ratio 3 < floor 5"]
    rate = harness.row("r", "rate", ours=30.0, reference=10.0, unit="1/s", higher_is_better=True, floor=2.0)
    assert rate["ratio"] == 3.0 and rate["ok"] is True
