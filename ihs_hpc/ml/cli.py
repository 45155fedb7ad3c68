"""``ihs train``: train the stage-3 U-ConvLSTM of a run (one process, torch DDP or Horovod)."""
from __future__ import annotations

import sys

import click


@click.command("train")
@click.argument("config_path", type=click.Path(dir_okay=False))
@click.option("--backend", type=click.Choice(["single", "ddp", "horovod"]), default=None,
              help="Override stage3.uconvlstm.backend. ddp: start with torchrun or srun; horovod: horovodrun or srun.")
@click.option("--steps", type=int, default=None, help="Override stage3.uconvlstm.steps.")
@click.option("--restart", is_flag=True, help="Discard the checkpoints and train from the start.")
@click.option("--no-validate", is_flag=True, help="Skip the comparison with kriging on the held-out holes.")
def train_command(config_path, backend, steps, restart, no_validate):
    """Train the U-ConvLSTM on RUN/stage2.zarr (background pixels, held-out holes) into RUN/uconvlstm/.

    Resumes from the newest checkpoint unless --restart; then (rank 0) scores it and kriging on the same
    held-out holes into RUN/stats/stage3_validation.csv.
    """
    from ..config import ConfigError, load_config
    from ..pipeline.stage3_model import train_run

    try:
        config = load_config(config_path)
        result = train_run(config, backend=backend, steps=steps, validate=not no_validate, restart=restart,
                           echo=click.echo)
    except (ConfigError, ValueError, RuntimeError, OSError) as err:
        click.secho(f"error: {err}", fg="red", err=True)
        sys.exit(2)
    t = result["training"]
    click.echo(f"  trained {t['steps']} steps in {t['seconds']:.1f} s on {t['world']} rank(s) ({t['backend']})"
               f"{' — stopped early' if t['stopped_early'] else ''}")
