"""The ``ihs`` command line: thin — parse, build the configuration, call the pipeline, show progress."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__


def _fail(message: str, code: int = 2) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def _open_run(source, cluster=None, workers=None):
    """The :class:`~ihs_hpc.run_directory.Run` of a YAML or run directory; its configuration errors end the command."""
    from .errors import IhsError
    from .run_directory import Run

    try:
        return Run(source, cluster=cluster, workers=workers, echo=click.echo)
    except IhsError as err:
        _fail(str(err), err.exit_code)


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


_rerun_option = click.option(
    "--rerun-changed", is_flag=True, default=False,
    help="Recompute outputs made from other settings or inputs (and everything downstream of them) instead of "
         "stopping; the old outputs are replaced only once the new ones are finished.")


@main.command("run")
@click.argument("config_path", type=click.Path(dir_okay=False))
@click.option("--stages", default=None, help="Comma-separated stages to run (default: all).")
@_rerun_option
@_with_cluster_options
def run_cmd(config_path, stages, rerun_changed, cluster, workers):
    """Run the whole pipeline described by CONFIG_PATH (a YAML file) over its run directory.

    \b
    Exit codes: 0 done; 2 bad input or configuration (nothing written), or outputs made from other
    settings (see --rerun-changed); 3 incomplete (tiles failed twice; rerun to redo only them);
    4 the run directory is locked by another ihs process.
    """
    selected = [s.strip() for s in stages.split(",")] if stages else None
    _run_stages(config_path, selected, cluster, workers, rerun_changed)


def _run_stages(config_path, selected, cluster, workers, rerun_changed=False):
    from .errors import IhsError
    from .pipeline.run import needs_cluster

    if cluster is None and selected and not needs_cluster(selected):
        cluster = "none"  # e.g. `ihs ingest`: reading files runs in this process; no workers to start
    run = _open_run(config_path, cluster, workers)
    click.echo(f"ihs {__version__}: run directory {run.run_dir}")
    try:
        summary = run.run(selected, rerun_changed=rerun_changed)
    except IhsError as err:
        _fail(str(err), err.exit_code)
    except (ValueError, RuntimeError, OSError) as err:
        _fail(f"{type(err).__name__}: {err}", 1)
    _print_summary(summary)


def _stage_command(stage: str, help_text: str):
    @click.argument("config_path", type=click.Path(dir_okay=False))
    @_rerun_option
    @_with_cluster_options
    def command(config_path, rerun_changed, cluster, workers):
        _run_stages(config_path, [stage], cluster, workers, rerun_changed)

    command.__doc__ = help_text
    return click.command(stage if stage != "input" else "ingest", help=help_text)(command)


for _stage, _help in (
    ("input", "Make RUN/cubes.zarr from the configured input (real files, a synthetic scene, or a store)."),
    ("prep", "Outlier removal (prep.outliers) and per-day kriging gap fill of PM2.5 (RUN/prep.zarr)."),
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
    for name in summary.get("ran", summary["stages"]):
        info = summary["stages"][name]
        status = "kept" if info.get("kept") else info.get("status")
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
    damaged = ds.attrs.get("ihs_bad_chunks")
    state = ("complete" if complete else
             f"DAMAGED ({len(json.loads(damaged))} bad chunks; a rerun repairs it)" if damaged else
             "INCOMPLETE (writer did not finish)")
    click.echo(f"{store}: {state}; {len(finished_tiles(store))} tiles recorded"
               + (f"; fingerprint {ds.attrs['ihs_fingerprint']}" if "ihs_fingerprint" in ds.attrs else ""))
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


def _print_reports(reports) -> bool:
    problems = False
    for r in reports:
        match = {True: "matches the configuration", False: "DIFFERS from the configuration", None: ""}[r.matches]
        tiles = "".join(f"; {kind} {done}/{total}" for kind, (done, total) in r.tiles.items())
        click.echo(f"  {r.stage:<8} {r.state:<10} {r.path.name:<22} {match}{tiles}" + (f" ({r.note})" if r.note else ""))
        for chunk in r.bad_chunks[:20]:
            click.echo(f"             bad chunk {chunk}")
        if len(r.bad_chunks) > 20:
            click.echo(f"             … {len(r.bad_chunks) - 20} more")
        problems |= r.state in ("unfinished", "damaged") or r.matches is False
    return problems


@main.command("status")
@click.argument("run", type=click.Path(exists=True))
def status_cmd(run):
    """What each stage of RUN (a run directory or its YAML) has done: state, fingerprint, tiles done."""
    from .pipeline.lock import RunLock

    handle = _open_run(run)
    holder = handle.lock_holder()
    click.echo(f"{handle.run_dir}" + (f": in use by {RunLock.describe(holder)}" if holder else ""))
    _print_reports(handle.status())


@main.command("check")
@click.argument("run", type=click.Path(exists=True))
@click.option("--verify", is_flag=True, default=False,
              help="Decode every chunk of every store; damaged stores are marked so a rerun repairs them.")
def check_cmd(run, verify):
    """Check RUN (a run directory or its YAML): stores finished, fingerprints matching, chunks readable.

    Exit code 0 when everything is finished and matches; 3 when something is unfinished, damaged or
    made from other settings.
    """
    from .errors import EXIT_INCOMPLETE

    handle = _open_run(run)
    click.echo(f"{handle.run_dir}:")
    problems = _print_reports(handle.status(verify=verify))
    if problems:
        click.echo("  (a rerun with the same configuration resumes unfinished and damaged stores; outputs made from "
                   "other settings need --rerun-changed)")
        sys.exit(EXIT_INCOMPLETE)


class _LazyCommand(click.Command):
    """A command whose implementation (and its imports) load only when it is invoked or asked for help."""

    def __init__(self, name: str, target: str, short_help: str):
        super().__init__(name, short_help=short_help, help=short_help, add_help_option=False)
        self._target = target

    def _load(self) -> click.Command:
        module, attr = self._target.split(":")
        from importlib import import_module

        return getattr(import_module(module), attr)

    def main(self, *args, **kwargs):  # pragma: no cover - exercised through the CLI
        return self._load().main(*args, **kwargs)

    def invoke(self, ctx):
        return self._load().invoke(ctx)

    def make_context(self, info_name, args, parent=None, **extra):
        return self._load().make_context(info_name, args, parent=parent, **extra)


def _register_optional_commands() -> None:
    """Commands that live beside their sub-packages (loaded when used: `ihs run` never imports them)."""
    main.add_command(_LazyCommand("synth", "ihs_hpc.synth.cli:synth_command",
                                  "Generate a synthetic scene (an observing-system simulation) with known truth."))
    main.add_command(_LazyCommand("allocate", "ihs_hpc.allocation.cli:allocate_command",
                                  "Allocate a regional PM2.5 reduction over cities by minimising the Gini sum."))
    main.add_command(_LazyCommand("export", "ihs_hpc.export.cli:export_command",
                                  "Export a run's results as GeoTIFF, NetCDF-CF, GeoPackage/GeoJSON and CSV/Excel."))
    main.add_command(_LazyCommand("train", "ihs_hpc.ml.cli:train_command",
                                  "Train the stage-3 U-ConvLSTM on a run's background pixels (single, DDP, Horovod)."))
    main.add_command(_LazyCommand("bench", "ihs_hpc.projection:bench_command",
                                  "Project a run's cost (e.g. all of China) from the measured benchmark figures."))


_register_optional_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
