# %% [markdown]
# # ihs_hpc from a notebook: a run as an object, its stores as xarray, the statistics as functions
#
# The three-stage IHS model of seed 000 (DOI 10.3390/atmos15010131) on the `tiny` synthetic scene
# (48 x 64 pixels, 2019-2021, eight industrial heat sources with known truth). Cells are marked
# `# %%` (VS Code, Jupytext, Spyder); `python examples/notebook_tiny.py` runs them all.
#
# Settings, through the environment: `IHS_EXAMPLE_CONFIG` a run YAML to use (default: a `tiny` run
# written to `IHS_EXAMPLE_DIR/tiny.yaml`, default folder `notebook-tiny/`), `IHS_EXAMPLE_OUT` the export
# folder (default `IHS_EXAMPLE_DIR/export`). A whole tiny run takes about two minutes on two cores; a run
# directory that is already complete for the same settings is kept, not recomputed.

# %%
import json
import os
from pathlib import Path

import numpy as np

import ihs_hpc

WORKDIR = Path(os.environ.get("IHS_EXAMPLE_DIR", "notebook-tiny"))
CONFIG = Path(os.environ.get("IHS_EXAMPLE_CONFIG", WORKDIR / "tiny.yaml"))
OUT = Path(os.environ.get("IHS_EXAMPLE_OUT", WORKDIR / "export"))
if not CONFIG.exists():
    CONFIG.parent.mkdir(parents=True, exist_ok=True)
    CONFIG.write_text("input: {kind: synthetic, synthetic: {preset: tiny, seed: 0}}\n"
                      "grid: {tile_size: 32}\n"
                      "cluster: {kind: none}   # stages run in this process; 'local' starts a LocalCluster\n")

# %% [markdown]
# ## The run: `ihs run tiny.yaml`, as an object

# %%
run = ihs_hpc.Run(CONFIG)
print(run)
summary = run.run()  # every stage; finished outputs made from the same settings are kept
for report in run.status():
    tiles = ", ".join(f"{kind} {done}/{total}" for kind, (done, total) in report.tiles.items())
    print(f"{report.stage:<8} {report.state:<10} matches={report.matches} {tiles}")

# %% [markdown]
# ## Stage 2 reproduced with the xarray API
#
# `run.open("prep")` is the gap-filled PM2.5 cube as a lazy Dataset. `ihs_hpc.stl_baseline` on a
# DataArray chunked over pixels (the time axis whole) builds a lazy baseline (eq. 2) with the
# settings stage 2 recorded; computed, it equals the stage's own `pm25_bl`.

# %%
prep, stage2 = run.open("prep"), run.open("stage2")
settings = dict(stage2.attrs["stl_settings"])  # period 365, seasonal 7, ... as the run used them
corner = prep.pm25.isel(lat=slice(0, 16), lon=slice(0, 16)).chunk({"time": -1, "lat": 8, "lon": 8})
baseline = ihs_hpc.stl_baseline(corner, **settings)  # lazy: nothing computed yet
print(baseline)
baseline_gap = float(abs(baseline - stage2.pm25_bl.isel(lat=slice(0, 16), lon=slice(0, 16))).max())
print(f"max |xarray STL baseline - stage2 pm25_bl| = {baseline_gap:.2e} ug m-3")

# %% [markdown]
# One pixel decomposed (eq. 1): trend, seasonal component and remainder, as one Dataset.

# %%
pixel = prep.pm25.isel(lat=20, lon=30)
parts = ihs_hpc.stl(pixel, **settings).compute()
print(parts)
closure = float(abs(parts.trend + parts.seasonal + parts.resid - pixel).max())
print(f"trend + seasonal + resid reproduces the series to {closure:.1e} ug m-3")

# %% [markdown]
# ## Trends and spatial structure of the IHS-related PM2.5 (section 2.3.5)
#
# Annual means of `pm25_ihs` (stage 3) per pixel; Mann-Kendall and Sen's slope along `year`;
# global Moran's I of the period mean.

# %%
stage3, stage1 = run.open("stage3"), run.open("stage1")
annual = stage3.pm25_ihs.groupby("time.year").mean().chunk({"year": -1})
trend = ihs_hpc.mann_kendall(annual, dim="year")
slope = ihs_hpc.sens_slope(annual, dim="year")
inside = stage1.ihs_mask.values.astype(bool)
print("pixels with a significant trend:", int(trend.h.values[inside].sum()), "of", int(inside.sum()))
print("median Sen's slope in IHS areas:", float(np.nanmedian(slope.slope.values[inside])), "ug m-3 per year")
mean_map = prep.pm25.mean("time").chunk({"lat": -1, "lon": -1})  # a map is one block: lat, lon are core dims
moran = ihs_hpc.morans_i(mean_map)
print(f"Moran's I of mean PM2.5: {float(moran.I):.3f} (z = {float(moran.z_rand):.1f})")

# %% [markdown]
# ## Export: GeoTIFF, NetCDF-CF, GeoPackage and tables (`ihs export`)

# %%
manifest = run.export(OUT)
print(len(manifest["files"]), "files in", OUT)
result = {"stages": {name: info.get("status") for name, info in summary["stages"].items()},
          "baseline_gap": baseline_gap, "closure": closure, "moran_i": float(moran.I),
          "trend_dims": list(trend.h.dims), "export_files": sorted(manifest["files"])}
(WORKDIR / "notebook_result.json").write_text(json.dumps(result, indent=2))
