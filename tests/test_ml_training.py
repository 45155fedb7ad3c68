"""``ihs train`` in real processes: DDP and Horovod equal one process, kill-and-resume equals no kill, stage 3.

Every run trains on the ``tiny`` synthetic scene's own stage-2 store (the pipeline up to stage 2 runs
once for the module). Data-parallel runs start real processes talking over loopback: ``torchrun``
(gloo) and ``horovodrun --gloo`` (Horovod built by ``scripts/build-horovod.sh``).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from conftest import requires_torch

pytestmark = requires_torch

TINY_MODEL = {"widths": [4, 8, 8, 8], "seq_len": 3, "patch": 32, "batch": 4, "val_block": 16, "val_windows": 4,
              "log_every_s": 0.5, "window": 64, "overlap": 16}
STORES = ("cubes.zarr", "prep.zarr", "stage1.zarr", "stage2.zarr")


def _cli(*args, env=None, check=True, timeout=600):
    result = subprocess.run([sys.executable, "-m", "ihs_hpc.cli", *map(str, args)], capture_output=True, text=True,
                            env=env, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def tiny_stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("ml_tiny")
    (root / "base.yaml").write_text("input: {kind: synthetic, synthetic: {preset: tiny, seed: 0}}\n"
                                    "grid: {tile_size: 32}\n")
    _cli("run", root / "base.yaml", "--stages", "input,prep,stage1,stage2", "--cluster", "none")
    return root / "base"


def _run(stores: Path, name: str, method: str = "uconvlstm", **model) -> Path:
    """A run directory sharing the tiny stores, with its own model settings; returns its YAML."""
    root = stores.parent
    run_dir = root / name
    run_dir.mkdir()
    for store in STORES:
        (run_dir / store).symlink_to(stores / store)
    settings = {**TINY_MODEL, **model}
    config = root / f"{name}.yaml"
    config.write_text(json.dumps({"input": {"kind": "synthetic", "synthetic": {"preset": "tiny", "seed": 0}},
                                  "grid": {"tile_size": 32}, "cluster": {"kind": "none"},
                                  "stage3": {"method": method, "uconvlstm": settings}}))
    return config


def _state(config: Path) -> dict:
    import torch

    return torch.load(config.with_suffix("") / "uconvlstm" / "model.pt", map_location="cpu", weights_only=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_same_parameters(a: dict, b: dict, rtol=2e-4, atol=2e-6):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=rtol, atol=atol, err_msg=key)


K_STEPS = {"steps": 4, "val_every": 4, "checkpoint_every": 4, "lr": 0.01}


@pytest.fixture(scope="module")
def one_rank(tiny_stores):
    """1 rank with the global batch of 4 samples, k = 4 steps."""
    config = _run(tiny_stores, "one_rank", **K_STEPS)
    _cli("train", config, "--backend", "single", "--no-validate")
    return _state(config)


def test_ddp_two_ranks_equal_one_rank_with_the_global_batch(tiny_stores, one_rank):
    config = _run(tiny_stores, "ddp", **K_STEPS)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                             "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
                             "-m", "ihs_hpc.cli", "train", str(config), "--backend", "ddp", "--no-validate"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    state = _state(config)
    assert state["summary"]["world"] == 2 and state["summary"]["backend"] == "ddp"
    assert state["summary"]["steps"] == 4
    _assert_same_parameters(state["state_dict"], one_rank["state_dict"])
    # training moved the weights well beyond the tolerance (the comparison can fail)
    from ihs_hpc.ml.model import ModelSpec, build_model

    init = build_model(ModelSpec(**state["spec"]), seed=0).state_dict()
    moved = max(float((state["state_dict"][k] - init[k]).abs().max()) for k in init)
    assert moved > 1e-3


def test_horovod_two_ranks_equal_one_rank_with_the_global_batch(tiny_stores, one_rank):
    horovodrun = Path(sys.executable).parent / "horovodrun"
    assert horovodrun.exists(), "horovod is not installed: make test runs scripts/build-horovod.sh first"
    config = _run(tiny_stores, "horovod", **K_STEPS)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([str(horovodrun), "-np", "2", "--gloo", "-H", "localhost:2", sys.executable, "-m",
                             "ihs_hpc.cli", "train", str(config), "--backend", "horovod", "--no-validate"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    state = _state(config)
    assert state["summary"]["world"] == 2 and state["summary"]["backend"] == "horovod"
    _assert_same_parameters(state["state_dict"], one_rank["state_dict"])
    # the peepholes were synchronised like every weight: they moved, identically on the ranks
    assert float(state["state_dict"]["bottleneck.cell.w_co"].abs().max()) > 0


def test_killed_and_resumed_run_equals_an_uninterrupted_one(tiny_stores):
    long = {"steps": 12, "checkpoint_every": 2, "val_every": 4, "patience": 100}
    whole = _run(tiny_stores, "whole", **long)
    _cli("train", whole, "--no-validate")
    killed = _run(tiny_stores, "killed", **long)
    ckpt = killed.with_suffix("") / "uconvlstm" / "checkpoints"
    proc = subprocess.Popen([sys.executable, "-m", "ihs_hpc.cli", "train", str(killed), "--no-validate"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list(ckpt.glob("step_*.pt")) and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed.with_suffix("") / "uconvlstm" / "model.pt").exists(), "the run finished before the kill"
    steps_at_kill = max(int(p.stem.split("_")[1]) for p in ckpt.glob("step_*.pt"))
    assert steps_at_kill < 12
    out = _cli("train", killed, "--no-validate").stdout
    assert f"resuming from step_{steps_at_kill:06d}.pt" in out
    a, b = _state(whole), _state(killed)
    for key in a["state_dict"]:
        np.testing.assert_array_equal(a["state_dict"][key].numpy(), b["state_dict"][key].numpy(), err_msg=key)
    import pandas as pd

    ma = pd.read_csv(whole.with_suffix("") / "uconvlstm" / "metrics.csv")
    mb = pd.read_csv(killed.with_suffix("") / "uconvlstm" / "metrics.csv")
    assert list(ma["step"]) == list(mb["step"]) == list(range(1, 13))
    np.testing.assert_array_equal(ma["loss"].to_numpy(), mb["loss"].to_numpy())


def test_stage3_with_the_model_writes_eq_10_and_the_validation(tiny_stores):
    import pandas as pd

    config = _run(tiny_stores, "stage3", steps=8, val_every=4, checkpoint_every=4, patience=10)
    run_dir = config.with_suffix("")
    out = _cli("run", config, "--stages", "stage3", "--cluster", "none").stdout
    assert "trained 8 steps" in out
    s2 = xr.open_zarr(run_dir / "stage2.zarr")
    s1 = xr.open_zarr(run_dir / "stage1.zarr")
    s3 = xr.open_zarr(run_dir / "stage3.zarr")
    assert s3.attrs["method"] == "uconvlstm" and s3.attrs["ihs_complete"] is True
    bl_tem, bl_oem, ihs = s2.pm25_bl_tem.values, s3.pm25_bl_oem.values, s3.pm25_ihs.values
    union = s1.ihs_mask.values.astype(bool)
    years = s3.time.dt.year.values
    holes = np.stack([s1.ihs_count_year.sel(year=y).values > 0 for y in years])
    assert np.isfinite(bl_oem).all()
    np.testing.assert_array_equal(bl_oem[~holes], bl_tem[~holes])  # the background is kept as it is
    assert (bl_oem[holes] != bl_tem[holes]).mean() > 0.99  # every hole pixel-day was filled
    np.testing.assert_allclose(ihs[:, union], (bl_tem - bl_oem)[:, union], rtol=0, atol=1e-5)  # eq. 10
    assert np.isnan(ihs[:, ~union]).all()
    table = pd.read_csv(run_dir / "uconvlstm" / "stage3_validation.csv")  # the stats stage copies it to stats/
    assert list(table.columns) == ["method", "rmse", "bias", "r"]
    assert list(table["method"]) == ["kriging", "uconvlstm"]
    assert (table["rmse"] > 0).all() and table["r"].between(-1, 1).all()
    assert (run_dir / "uconvlstm" / "validation.png").is_file()
    doc = json.loads((run_dir / "uconvlstm" / "validation.json").read_text())
    assert doc["scores"]["uconvlstm"]["rmse"] == pytest.approx(table["rmse"][1])
    assert doc["untrained_push_pull_base"]["n"] == doc["scores"]["kriging"]["n"] == doc["pixel_days"] > 0
    # a rerun after losing stage3.zarr reuses the model and the saved fills: same values, no training
    import shutil

    shutil.rmtree(run_dir / "stage3.zarr")
    out = _cli("run", config, "--stages", "stage3", "--cluster", "none").stdout
    assert "trained" not in out
    np.testing.assert_array_equal(xr.open_zarr(run_dir / "stage3.zarr").pm25_bl_oem.values, bl_oem)


def test_slurm_and_torchrun_rendezvous():
    from ihs_hpc.ml.distributed import first_host, rendezvous_from_env

    assert first_host("gpu[03-05,09],cpu1") == "gpu03"
    assert first_host("node7") == "node7"
    assert first_host("a-b[10,12]") == "a-b10"
    assert rendezvous_from_env({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}) == (3, 8, 1, {})
    rank, world, local, extra = rendezvous_from_env({"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
                                                     "SLURM_JOB_NODELIST": "gpu[03-04]", "SLURM_JOB_ID": "12345"})
    assert (rank, world, local) == (5, 8, 1) and extra == {"MASTER_ADDR": "gpu03", "MASTER_PORT": "29845"}
    with pytest.raises(RuntimeError, match="torchrun"):
        rendezvous_from_env({})


def test_config_accepts_the_model_and_rejects_bad_values(tmp_path):
    from ihs_hpc.config import ConfigError, load_config

    good = tmp_path / "good.yaml"
    good.write_text("stage3: {method: uconvlstm, uconvlstm: {holes: union, widths: [8, 8, 8, 8]}}\n")
    assert load_config(good)["stage3.uconvlstm.widths"] == [8, 8, 8, 8]
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage3: {method: uconvlstm, uconvlstm: {backend: mpi}}\n")
    with pytest.raises(ConfigError, match="stage3.uconvlstm.backend"):
        load_config(bad)


def test_auto_fills_with_the_method_of_lower_held_out_rmse(tiny_stores):
    """``stage3.method: auto`` trains, scores both fills on the held-out holes and fills with the model only when
    its RMSE is ``auto_margin_pct`` below kriging's; a kriging setting changed afterwards is scored again with the
    same model (no retraining)."""
    import pandas as pd

    config = _run(tiny_stores, "auto", method="auto", steps=8, val_every=4, checkpoint_every=4, patience=10)
    run_dir = config.with_suffix("")
    out = _cli("run", config, "--stages", "stage3", "--cluster", "none").stdout
    assert "trained 8 steps" in out
    table = pd.read_csv(run_dir / "uconvlstm" / "stage3_validation.csv").set_index("method")
    margin = 10.0  # stage3.auto_margin_pct's default
    better = "uconvlstm" if table.loc["uconvlstm", "rmse"] <= table.loc["kriging", "rmse"] * (1 - margin / 100) \
        else "kriging"
    s3 = xr.open_zarr(run_dir / "stage3.zarr")
    assert s3.attrs["method"] == better
    assert f"stage3.method auto: {better}" in out
    record = json.loads((run_dir / "run.json").read_text())["stages"]["stage3"]
    assert record["method"] == better and record["chosen_by_rmse"] == pytest.approx(table["rmse"].to_dict())
    doc = json.loads((run_dir / "uconvlstm" / "validation.json").read_text())
    assert doc["kriging"]["drift"] == "covariates"
    settings = json.loads(config.read_text())
    settings["stage3"]["drift"] = "none"
    config.write_text(json.dumps(settings))
    out = _cli("run", config, "--stages", "stage3", "--cluster", "none", "--rerun-changed").stdout
    assert "trained" not in out
    doc = json.loads((run_dir / "uconvlstm" / "validation.json").read_text())
    assert doc["kriging"]["drift"] == "none"
    assert doc["scores"]["kriging"]["rmse"] != pytest.approx(table.loc["kriging", "rmse"])
