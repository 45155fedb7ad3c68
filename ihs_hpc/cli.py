"""The ``ihs`` command line: thin — parse, build the configuration, call the pipeline, show progress."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(2)


def _load(config_path, **overrides):
    from .config import ConfigError, load_config

    try:
        return load_config(config_path, overrides={k: v for k, v in overrides.items() if v} or None)
    except ConfigError as err:
        _fail(str(err))


def _cluster_overrides(cluster, workers):
    cl = {}
    if cluster:
        cl["kind"] = cluster
    if workers:
        cl["n_workers"] = workers
    return cl


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ihs")
def main():
    """ihs_hpc: PM2.5 from industrial heat sources, pixel by pixel and day by day."""


_cluster_options = [
    click.option("--cluster", type=click.Choice(["local", "slurm", "mpi", "none"]), default=None,
                 help="Override cluster.kind."),
    click.option("--workers", type=int, default=None, help="Override cluster.n_workers."),
]


def _with_cluster_options(func):
    for option in reversed(_cluster_options):
        func = option(func)
    return func


@main.command("run")
@click.argument("config_path", type=click.Path(dir_okay=False))
@click.option("--stages", default=None, help="Comma-separated stages to run (default: all).")
@_with_cluster_options
def run_cmd(config_path, stages, cluster, workers):
    """Run the whole pipeline described by CONFIG_PATH (a YAML file) over its run directory."""
    selected = [s.strip() for s in stages.split(",")] if stages else None
    _run_stages(config_path, selected, cluster, workers)


def _run_stages(config_path, selected, cluster, workers):
    from .cluster import get_client
    from .pipeline.run import needs_cluster, run_pipeline

    if cluster is None and selected and not needs_cluster(selected):
        cluster = "none"  # e.g. `ihs ingest`: reading files runs in this process; no workers to start
    config = _load(config_path, cluster=_cluster_overrides(cluster, workers))
    click.echo(f"ihs {__version__}: run directory {config.run_dir}")
    try:
        with get_client(config["cluster.kind"], n_workers=config["cluster.n_workers"],
                        threads_per_worker=config["cluster.threads_per_worker"],
                        memory_limit=config["cluster.memory_limit"],
                        dashboard_address=config["cluster.dashboard_address"],
                        slurm=config["cluster.slurm"], echo=click.echo) as client:
            summary = run_pipeline(config, client, stages=selected, echo=click.echo)
    except (ValueError, RuntimeError, OSError) as err:
        _fail(str(err))
    _print_summary(summary)


def _stage_command(stage: str, help_text: str):
    @click.argument("config_path", type=click.Path(dir_okay=False))
    @_with_cluster_options
    def command(config_path, cluster, workers):
        _run_stages(config_path, [stage], cluster, workers)

    command.__doc__ = help_text
    return click.command(stage if stage != "input" else "ingest", help=help_text)(command)


for _stage, _help in (
    ("input", "Make RUN/cubes.zarr from the configured input (real files, a synthetic scene, or a store)."),
    ("prep", "IQR outlier removal and per-day kriging gap fill of PM2.5 (RUN/prep.zarr)."),
    ("stage1", "IHS radiation areas by region growing over the DEM (RUN/stage1.zarr)."),
    ("stage2", "STL baselines and per-pixel regression on meteorological baselines (RUN/stage2.zarr)."),
    ("stage3", "Background PM2.5 inside IHS areas and IHS-related PM2.5, eq. 10 (RUN/stage3.zarr)."),
    ("stats", "Statistics tables of a finished run (RUN/stats/)."),
    ("report", "Figures and the HTML report of a finished run (RUN/report/)."),
):
    main.add_command(_stage_command(_stage, _help))


def _print_summary(summary: dict) -> None:
    click.echo("")
    click.secho("Summary", bold=True)
    click.echo(f"  run directory: {summary['run_dir']}")
    for name, info in summary["stages"].items():
        status = info.get("status")
        extra = ", ".join(f"{k}={v}" for k, v in info.items() if k not in ("status", "store") and not isinstance(v, (dict, list)))
        click.echo(f"  {name:<7} {status}{' (' + extra + ')' if extra and status == 'done' else ''}")
    click.echo(f"  details: {Path(summary['run_dir']) / 'run.json'}")


@main.command("info")
@click.argument("store", type=click.Path(exists=True, file_okay=False))
def info_cmd(store):
    """Describe a Zarr store written by ihs_hpc: variables, units, grid, completeness, finished tiles."""
    from .io.cube import finished_tiles, is_complete, open_store

    try:
        ds = open_store(store, require_complete=False)
    except Exception as err:  # noqa: BLE001 - shown to the user
        _fail(f"{store}: {err}")
    complete = is_complete(store)
    click.echo(f"{store}: {'complete' if complete else 'INCOMPLETE (writer did not finish)'}; "
               f"{len(finished_tiles(store))} tiles recorded")
    sizes = ", ".join(f"{k}={v}" for k, v in ds.sizes.items())
    click.echo(f"  dims: {sizes}")
    if "time" in ds.coords and ds.sizes.get("time"):
        click.echo(f"  time: {str(ds.time.values[0])[:10]} .. {str(ds.time.values[-1])[:10]}")
    if "lat" in ds.coords:
        click.echo(f"  lat: {float(ds.lat.min()):.3f} .. {float(ds.lat.max()):.3f}  "
                   f"lon: {float(ds.lon.min()):.3f} .. {float(ds.lon.max()):.3f}")
    for name, var in ds.data_vars.items():
        units = var.attrs.get("units", "")
        long_name = var.attrs.get("long_name", "")
        click.echo(f"  {name:<26} {str(var.dims):<32} {str(var.dtype):<8} {units:<10} {long_name}")


def _register_optional_commands() -> None:
    """Commands that live beside their sub-packages."""
    from .allocation.cli import allocate_command
    from .ml.cli import train_command
    from .synth.cli import synth_command

    main.add_command(synth_command, "synth")
    main.add_command(allocate_command, "allocate")
    main.add_command(train_command, "train")


_register_optional_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
