"""``ihs export``: a finished run as GeoTIFF, NetCDF-CF, GeoPackage/GeoJSON and CSV/Excel (registered by
:mod:`ihs_hpc.cli`)."""
from __future__ import annotations

import click


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder to write into (created; files of the same names are replaced).")
@click.option("--netcdf", "variables", multiple=True, metavar="[STORE:]VARIABLE",
              help="Also write this cube or map as CF NetCDF (repeatable), e.g. pm25_ihs or stage3:pm25_bl_oem. "
                   "Stores: cubes, prep, stage1, stage2, stage3, maps, trend_maps.")
@click.option("--excel/--no-excel", default=None,
              help="Write tables/ihs_tables.xlsx (default: when openpyxl is installed).")
def export_command(run_dir, out_dir, variables, excel):
    """Export the maps, radiation areas and tables of the finished run RUN_DIR into --out."""
    import sys

    from ..errors import IhsError
    from .run import export_run

    click.echo(f"ihs export: {run_dir} -> {out_dir}")
    try:
        manifest = export_run(run_dir, out_dir, netcdf=variables, excel=excel, echo=click.echo)
    except IhsError as err:
        click.secho(f"error: {err}", fg="red", err=True)
        sys.exit(err.exit_code)
    except FileNotFoundError as err:
        click.secho(f"error: {err}", fg="red", err=True)
        sys.exit(2)
    click.echo(f"done: {len(manifest['files'])} files, listed in {out_dir}/export.json")
