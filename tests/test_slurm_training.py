"""The U-ConvLSTM training jobs users submit (jobs/train-ddp.sbatch, jobs/train-horovod.sbatch), run on the
real local Slurm on CPU (gloo) for a few steps: two ranks each, the log and the checkpoint say so."""
from __future__ import annotations

import re
import shutil

import pytest
from conftest import TINY_RUN_YAML
from slurm_local import REPO_ROOT

pytestmark = pytest.mark.slow

TRAIN_YAML = ("stage3: {method: uconvlstm, uconvlstm: {steps: 3, batch: 4, patch: 32, seq_len: 2, val_every: 100, "
              "checkpoint_every: 3, widths: [4, 8, 8, 8]}}\n")


@pytest.fixture(scope="module")
def run_copy(tiny_local_run, tmp_path_factory):
    """A copy of the tiny run's input, prep, stage 1 and stage 2 stores with a training configuration."""
    reference, _ = tiny_local_run
    tmp = tmp_path_factory.mktemp("train")
    return reference, tmp


def _prepare(reference, root, name):
    run = root / name
    run.mkdir()
    for store in ("cubes.zarr", "prep.zarr", "stage1.zarr", "stage2.zarr"):
        shutil.copytree(reference / store, run / store)
    config = root / f"{name}.yaml"
    config.write_text(f"run_dir: {run}\n" + TINY_RUN_YAML + "cluster: {kind: none}\n" + TRAIN_YAML)
    return run, config


@pytest.mark.parametrize("backend,script,env", [
    ("ddp", "train-ddp.sbatch", {}),
    ("horovod", "train-horovod.sbatch", {"HVD_LAUNCH": "horovodrun"}),
])
def test_training_job_runs_two_ranks_on_the_local_slurm(local_slurm, run_copy, backend, script, env):
    reference, root = run_copy
    run, config = _prepare(reference, root, backend)
    log = root / f"{backend}.out"
    job = local_slurm.sbatch("--ntasks-per-node=2", "--cpus-per-task=1", f"--output={log}", f"--chdir={root}",
                             REPO_ROOT / "jobs" / script, config, "--no-validate", env=env)
    record = local_slurm.wait(job, timeout=600)
    text = local_slurm.log(log)
    assert (record.state, record.exit_code) == ("COMPLETED", "0:0"), text[-5000:]
    assert re.search(rf"trained 3 steps in [\d.]+ s on 2 rank\(s\) \({backend}\)", text), text[-3000:]
    assert (run / "uconvlstm" / "model.pt").is_file()
    assert record.cpus == 2
