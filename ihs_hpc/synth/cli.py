"""``ihs synth``: write a synthetic scene with known truth (registered by :mod:`ihs_hpc.cli`)."""
from __future__ import annotations

import time

import click


@click.command("synth")
@click.option("--preset", type=click.Choice(["tiny", "demo", "bth"]), default="tiny", show_default=True,
              help="tiny: 48x64 px, 2019-2021 (tests); demo: 128x160 px in southern Hebei, 2012-2021; "
                   "bth: the Beijing-Tianjin-Hebei box 660x630 px, 2012-2021.")
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="Output: a Zarr store (--layout zarr) or a directory of raw files (--layout files).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option("--layout", type=click.Choice(["zarr", "files"]), default="zarr", show_default=True,
              help="zarr: the run's input store (cubes.zarr layout) plus the truth; files: CHAP daily NetCDF, "
                   "ERA5 yearly NetCDF, dem.tif, ihs.csv, cities.geojson and truth.zarr, for the ingest path.")
@click.option("--tile-size", type=int, default=None, help="Tile edge in cells (default: the preset's).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth_command(preset, out, seed, layout, tile_size, overwrite, quiet):
    """Generate a synthetic scene (an observing-system simulation) with known IHS truth."""
    from ..io.cube import StoreError
    from .scene import generate_scene
    from .scene_store import scene_summary

    start = time.perf_counter()
    try:
        path = generate_scene(preset, out, seed=seed, layout=layout, tile_size=tile_size,
                              progress=False if quiet else None, overwrite=overwrite)
    except (StoreError, FileExistsError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    elapsed = time.perf_counter() - start
    s = scene_summary(path)
    n_t, ny, nx = s["shape"]
    lat, lon = s["lat"], s["lon"]
    click.echo(f"synthetic scene '{s['preset']}' (seed {s['seed']}) written in {elapsed:.1f} s")
    click.echo(f"  grid      {ny} x {nx} px at 0.01 deg, lat {lat[0]:.3f}..{lat[1]:.3f}, lon {lon[0]:.3f}..{lon[1]:.3f}; "
               f"met {s['met_shape'][1]} x {s['met_shape'][2]} at 0.1 deg")
    click.echo(f"  days      {n_t} ({s['time_coverage'][0]} .. {s['time_coverage'][1]})")
    click.echo(f"  IHS       {s['n_ihs']} sources, {s['n_area_pixels']} px in radiation areas")
    by_year = s["pm25_annual_mean"]
    first, last = min(by_year), max(by_year)
    click.echo(f"  PM2.5     scene mean {s['pm25_mean']:.1f} ug m-3 ({first}: {by_year[first]:.1f}, {last}: {by_year[last]:.1f})")
    click.echo(f"  truth     IHS share {100 * s['ihs_share_true']:.1f} % of PM2.5 inside the IHS areas")
    click.echo(f"  output    {path}" + ("" if layout == "zarr" else f" (truth: {s['store']})"))
