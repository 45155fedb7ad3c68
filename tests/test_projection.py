"""``ihs bench --project``: the cost model against figures injected into a results directory."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ihs_hpc.cli import main
from ihs_hpc.projection import project

BTH_PX, BTH_DAYS = 660 * 630, 3653
CPU = {"ingest": (80, 20), "prep": (300, 60), "stage1": (5, 1), "stage2": (500, 40), "stage3": (400, 50),
       "stats": (60, 10), "report": (20, 5)}


@pytest.fixture()
def results(tmp_path):
    stages = {name: {"cpu_user_s": u, "cpu_sys_s": s, "wall_s": (u + s) / 2 + 10, "stage_s": (u + s) / 2}
              for name, (u, s) in CPU.items()}
    (tmp_path / "bth_full.json").write_text(json.dumps({
        "label": "test", "machine": {"cpu_model": "x"}, "workers": 2, "stage3_method": "kriging",
        "grid": {"pixels": BTH_PX, "days": BTH_DAYS}, "stages": stages,
        "outputs_gb": {"input": 6.0, "prep": 9.0, "stage2": 15.0}}))
    (tmp_path / "bench.json").write_text(json.dumps({"benchmarks": {
        "pipeline": {"rows": [], "details": {"stage2_1_worker": {"seconds": 20.0}, "stage2_2_workers": {"seconds": 12.5}}},
        "uconvlstm": {"rows": [], "details": {"runs": [{"device": "cpu", "torch_threads": 2, "train_samples_per_s": 8.0,
                                                        "infer_grid_pixel_days_per_s": 2.0e5}]}}}}))
    return tmp_path


def test_the_measured_domain_reproduces_the_measured_cpu(results):
    p = project("bth", nodes=1, cores=2, results=str(results))
    assert sum(s["core_s"] for s in p.stages.values()) == pytest.approx(sum(u + s for u, s in CPU.values()))
    # E = measured speed-up / 2 = (20 / 12.5) / 2 = 0.8; fixed start-up = wall - stage seconds = 10 s
    assert p.stages["stage2"]["wall_s"] == pytest.approx(540 / (2 * 0.8) + 10)
    assert p.stages["stage1"]["wall_s"] == pytest.approx(6 + 10)  # one task: no parallel loss
    assert p.storage_gb == pytest.approx({"input": 6.0, "prep": 9.0, "stage2": 15.0})


def test_china_scales_pixels_days_and_workers(results):
    china = project("china", nodes=16, cores=32, results=str(results))
    px_days = 1e7 * 3652 / (BTH_PX * BTH_DAYS)
    assert china.stages["prep"]["core_s"] == pytest.approx(360 * px_days)
    assert china.stages["stage2"]["core_s"] == pytest.approx(540 * 1e7 / BTH_PX * (3652 / BTH_DAYS) ** 2)
    assert china.storage_gb["stage2"] == pytest.approx(15.0 * px_days)
    double = project("china", nodes=32, cores=32, results=str(results))
    # stage 2 has ceil(1e7 / 4096) = 2442 tiles: 512 and 1024 workers both fit, so the parallel part halves
    assert china.stages["stage2"]["tasks"] == 2442
    assert china.stages["stage2"]["wall_s"] == pytest.approx(china.stages["stage2"]["core_s"] / (512 * 0.8) + 10)
    assert double.stages["stage2"]["wall_s"] - 10 == pytest.approx((china.stages["stage2"]["wall_s"] - 10) / 2)


def test_cli_prints_inputs_assumptions_dominant_stage_and_gpu_warning(results):
    out = CliRunner().invoke(main, ["bench", "--project", "china", "-N", "8", "-C", "64", "-G", "4",
                                    "--results", str(results)])
    assert out.exit_code == 0, out.output
    for text in ("1e+07 pixels × 3652 days", "N = 8 Slurm nodes × C = 64 cores", "Measured inputs:",
                 "stage 2, 1 → 2 workers (demo): 20.0 s → 12.5 s = 1.60×", "Assumptions:",
                 "parallel efficiency E = 0.80", "Core-hours".lower(), "node-hours", "Dominant stage:",
                 "Storage per store (GB)", "no GPU figure was measured"):
        assert text in out.output, text
    u = CliRunner().invoke(main, ["bench", "--stage3", "uconvlstm", "--results", str(results)])
    assert u.exit_code == 0 and "U-ConvLSTM on CPU" in u.output, u.output


def test_stage3_with_the_uconvlstm_costs_inference_per_grid_pixel_day_plus_training(results):
    from ihs_hpc.config import defaults

    cfg = defaults()["stage3"]["uconvlstm"]
    p = project("china", stage3="uconvlstm", results=str(results))
    infer = 1e7 * 3652 / 2.0e5 * 2  # pixel-days / (pixel-days/s) × torch threads
    train = cfg["steps"] * cfg["batch"] / 8.0 * 2
    assert p.stages["stage3"]["core_s"] == pytest.approx(infer + train)


def test_without_the_bth_run_the_error_says_what_to_run(tmp_path):
    out = CliRunner().invoke(main, ["bench", "--results", str(tmp_path)])
    assert out.exit_code != 0 and "bench_bth_full.py" in out.output
