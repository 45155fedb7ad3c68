"""``ihs allocate``: the minimised-Gini reduction plan from two CSV files (seed 003, eqs. 1–6).

:data:`allocate_command` is a :mod:`click` command; the main CLI registers it with
``main.add_command(allocate_command)``.
"""
from __future__ import annotations

from pathlib import Path

import click

from ihs_hpc.allocation.io import read_index_csv, read_pm25_csv, write_allocation_outputs
from ihs_hpc.allocation.plan import METHODS, allocate

__all__ = ["allocate_command"]


@click.command("allocate")
@click.option("--pm25", "pm25_csv", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with columns city, pm25 (initial PM2.5 per city, µg/m³).")
@click.option("--index", "index_csv", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with column city plus one numeric column per index.")
@click.option("--q", type=float, default=0.4, show_default=True,
              help="Total reduction rate as a fraction (eq. 4).")
@click.option("--p-min", type=float, default=0.3, show_default=True,
              help="Lowest reduction rate of any city (eq. 6).")
@click.option("--p-max", type=float, default=0.5, show_default=True,
              help="Highest reduction rate of any city (eq. 6).")
@click.option("--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if missing).")
@click.option("--method", type=click.Choice(METHODS), default="lp", show_default=True,
              help="lp: exact linear programme; multistart: SLSQP from random plans.")
@click.option("--starts", type=click.IntRange(min=1), default=64, show_default=True,
              help="Random starting plans (method multistart).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the starting plans (method multistart).")
def allocate_command(pm25_csv, index_csv, q, p_min, p_max, out_dir, method, starts, seed):
    """Allocate a regional PM2.5 reduction over cities by minimising the sum of Gini
    coefficients against each index (seed 003, eqs. 3-6); write plan.csv, gini.csv,
    contribution_initial.csv, allocation.md and lorenz_curves.png to OUT."""
    try:
        pm25 = read_pm25_csv(pm25_csv)
        indices = read_index_csv(index_csv)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        result = allocate(pm25, indices, q, p_min, p_max, method=method, starts=starts, seed=seed)
    except ValueError as exc:
        raise click.ClickException(f"allocating {pm25_csv} over {index_csv}: {exc}") from exc
    paths = write_allocation_outputs(result, out_dir)
    click.echo(
        f"{len(result.plan)} cities, {len(result.gini)} indices, method {result.method}"
        f"{'' if result.converged else ' (NOT converged)'}: sum of Gini "
        f"{result.objective_initial:.6f} -> {result.objective:.6f}"
    )
    for path in paths.values():
        click.echo(f"wrote {path}")
