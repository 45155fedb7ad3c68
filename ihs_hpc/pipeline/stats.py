"""The statistics stage (seed 000 §2.3.5, §3): aggregates, tests and tables of total and IHS-related PM2.5.

Reads ``cubes.zarr`` (total ``pm25``, cities, IHS table, and the synthetic truth when present),
``stage1.zarr`` (IHS areas, background, per-IHS membership) and ``stage3.zarr`` (``pm25_ihs``,
``pm25_bl_oem``). One pass over the tiles (one task per tile, never a whole cube in memory) writes:

* ``stats/maps.zarr`` — period-mean maps (``mean_pm25``, ``mean_pm25_ihs``, ``share_pct``,
  ``mean_pm25_bl_oem``, ``mean_pm25_ihs_true``) and annual-mean maps ``annual_pm25``/``annual_pm25_ihs``
  ``(year, lat, lon)``;
* ``stats/trend_maps.zarr`` — per-pixel Mann–Kendall z, p, Sen slope and significant trend sign of the
  annual means of ``pm25_ihs`` (IHS-area pixels) and ``pm25`` (all pixels);
* ``stats/series.zarr`` — per-group, per-day sums and counts (groups: region, IHS areas, background,
  each city, each city's IHS areas, each single IHS area), from which every mean below is exact.

From these it builds the tables (CSV + ``tables.md``) and ``stats.json``. The definitions (pooled
means, share = Σ IHS / Σ total over paired pixel-days, December → next year's DJF, decline and
year-on-year change) are those of :mod:`ihs_hpc.stats.aggregate`. The Mann–Whitney U test compares
**per-pixel means of total PM2.5** between background and IHS-area pixels: the period mean (the
paper's Fig. 6b) and each year's annual mean.

A rerun reuses the three stores when they are complete and were made from the same input stores
(their tile pass is the expensive part; a rerun of stage 3 invalidates them) and rebuilds the tables,
so a changed ``stats.indicators`` file costs seconds.
"""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..grid import Grid
from ..io.cube import create_store, is_complete, map_spec, mark_complete, open_store, read_tile, write_tile
from ..stats.aggregate import (DECEMBER_RULE, SEASONS, GroupLayout, block_sums, box_stats, calendar, decline_pct,
                               describe, means_from_sums, moran_test, mwu_test, operating_decline, pearson_test,
                               pixel_trends, ratio,
                               reduce_by, season_completeness, tile_membership, trend_test, yoy_pct)
from ..stats.tables import TableWriter, city_year_table, correlation_table, trend_table
from .inputs import input_store

UNITS = "ug m-3"
ALPHA = 0.05
SUM_STORE = "series.zarr"
MAPS_STORE = "maps.zarr"
TRENDS_STORE = "trend_maps.zarr"
MWU_BASIS = ("per-pixel means of total PM2.5 (period mean, and each year's annual mean): "
             "background pixels vs IHS-area pixels, two-sided, continuity-corrected (scipy semantics)")
SHARE_DEFINITION = ("share (contribution) = sum of IHS-related PM2.5 / sum of total PM2.5 over the same "
                    "(paired, both finite) pixel-days inside IHS areas, in percent")
MEAN_DEFINITION = "pooled mean over all valid pixel-days of the group and period (pixels unweighted)"


# --------------------------------------------------------------------------- per-tile work
def stats_tile(tile, members, *, cubes: Path, stage1: Path, stage3: Path, maps: Path, trends: Path,
               day_slices: tuple, n_city: int, n_ihs: int, has_city: bool, has_oem: bool, has_truth: bool,
               alpha: float = ALPHA) -> dict:
    """Aggregate one tile: write its maps and trend maps, return its per-group daily sums."""
    layout = GroupLayout(n_city, n_ihs)
    areas = read_tile(stage1, tile, ["ihs_mask", "background"])
    inside = areas["ihs_mask"].astype(bool)
    city = read_tile(cubes, tile, ["city_id"])["city_id"] if has_city else np.full(tile.shape, -1, np.int16)
    matrix, groups = tile_membership(layout, inside, areas["background"].astype(bool), city, members)
    dense = matrix.toarray()  # (pixels, k): small; the sums are then BLAS products
    n_pix = tile.shape[0] * tile.shape[1]
    total = read_tile(cubes, tile, ["pm25"])["pm25"].reshape(-1, n_pix)
    est = read_tile(stage3, tile, ["pm25_ihs"] + (["pm25_bl_oem"] if has_oem else []))
    ihs = est["pm25_ihs"].reshape(-1, n_pix)
    oem = est["pm25_bl_oem"].reshape(-1, n_pix) if has_oem else None
    truth = read_tile(cubes, tile, ["pm25_ihs_true"])["pm25_ihs_true"].reshape(-1, n_pix) if has_truth else None
    flat_inside = inside.ravel()
    ihs = np.where(flat_inside[None], ihs, np.nan)  # IHS-related PM2.5 exists only inside IHS areas
    if truth is not None:
        truth = np.where(flat_inside[None], truth, np.nan)

    day_parts, pix_years = [], []
    for start, stop in day_slices:
        sl = slice(start, stop)
        groups_part, pixel_part = block_sums(total[sl], ihs[sl], dense, oem=None if oem is None else oem[sl],
                                             truth=None if truth is None else truth[sl])
        day_parts.append(groups_part)
        pix_years.append(pixel_part)
    sums = {k: np.concatenate([p[k] for p in day_parts], axis=1) for k in day_parts[0]}
    pix = {k: np.stack([p[k] for p in pix_years]) for k in pix_years[0]}  # (years, pixels)
    annual = means_from_sums(pix)
    period = means_from_sums({k: v.sum(0) for k, v in pix.items()})

    shape = tile.shape
    n_year = len(day_slices)
    maps_block = {
        "mean_pm25": period["pm25"].reshape(shape),
        "mean_pm25_ihs": period["pm25_ihs"].reshape(shape),
        "share_pct": period["share_pct"].reshape(shape),
        "annual_pm25": annual["pm25"].reshape((n_year,) + shape),
        "annual_pm25_ihs": annual["pm25_ihs"].reshape((n_year,) + shape),
    }
    if has_oem:
        maps_block["mean_pm25_bl_oem"] = period["pm25_bl_oem"].reshape(shape)
    if has_truth:
        maps_block["mean_pm25_ihs_true"] = period["pm25_ihs_true"].reshape(shape)
        maps_block["share_true_pct"] = period["share_true_pct"].reshape(shape)
    write_tile(maps, tile, maps_block)
    trend_block = {}
    for name in ("pm25_ihs", "pm25"):
        t = pixel_trends(annual[name], alpha=alpha)
        trend_block.update({f"{name}_mk_z": t["z"].reshape(shape), f"{name}_mk_p": t["p"].reshape(shape),
                            f"{name}_sen_slope": t["slope"].reshape(shape), f"{name}_trend": t["sign"].reshape(shape)})
    write_tile(trends, tile, trend_block)
    result = {"groups": groups, "sums": sums}
    if has_truth:
        result["truth"] = {k: float(pix[k].sum()) for k in ("s_err", "s_err2", "n_pair")}
    return result


def members_by_tile(offsets: np.ndarray, pixels: np.ndarray, grid: Grid, tiles, tile_size: int) -> list[list]:
    """Split the CSR membership of every IHS into ``(ihs, flat local indices)`` per tile."""
    out = [[] for _ in tiles]
    if pixels.size == 0:
        return out
    n_tx = -(-grid.nx // tile_size)
    ihs_of = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    rows, cols = np.divmod(pixels.astype(np.int64), grid.nx)
    tile_of = (rows // tile_size) * n_tx + cols // tile_size
    order = np.lexsort((ihs_of, tile_of))
    tile_of, ihs_of, rows, cols = tile_of[order], ihs_of[order], rows[order], cols[order]
    bounds = np.flatnonzero(np.diff(tile_of * (offsets.size + 1) + ihs_of)) + 1
    for chunk in np.split(np.arange(tile_of.size), bounds):
        t = tiles[int(tile_of[chunk[0]])]
        local = (rows[chunk] - t.rows.start) * t.shape[1] + (cols[chunk] - t.cols.start)
        out[int(tile_of[chunk[0]])].append((int(ihs_of[chunk[0]]), local))
    return out


def _run_tiles(func, tiles, members, client, echo):
    """Yield each tile's result (in completion order with a client, in order without)."""
    if client is None:
        from ..progress import progress

        with progress(len(tiles), "stats tiles", "tile") as bar:
            for tile, mem in zip(tiles, members):
                yield func(tile, mem)
                bar.update(1)
        return
    from distributed import as_completed

    futures = {client.submit(func, tile, mem, pure=False): tile for tile, mem in zip(tiles, members)}
    for future in as_completed(futures):
        tile = futures[future]
        try:
            yield future.result()
        except Exception as err:
            for other in futures:
                other.cancel()
            raise RuntimeError(f"stats: tile {tile.name} (rows {tile.rows.start}:{tile.rows.stop}, "
                               f"cols {tile.cols.start}:{tile.cols.stop}) failed: {err}") from err
        future.release()


# --------------------------------------------------------------------------- stores
def _create_stores(out_dir: Path, grid: Grid, years, tile_size: int, has_oem: bool, has_truth: bool):
    import dask.array as da
    import xarray as xr

    years = np.asarray(years, dtype=np.int64)
    n_year = years.size
    specs = {
        "mean_pm25": map_spec(UNITS, "period-mean total PM2.5"),
        "mean_pm25_ihs": map_spec(UNITS, "period-mean IHS-related PM2.5 (IHS areas)"),
        "share_pct": map_spec("%", "IHS share of total PM2.5 (sum IHS / sum total, IHS areas)"),
    }
    if has_oem:
        specs["mean_pm25_bl_oem"] = map_spec(UNITS, "period-mean PM2.5 from other sources (pm25_bl_oem)")
    if has_truth:
        specs["mean_pm25_ihs_true"] = map_spec(UNITS, "period-mean true IHS PM2.5 of the synthetic scene")
        specs["share_true_pct"] = map_spec("%", "true IHS share of total PM2.5 of the synthetic scene")
    static = xr.Dataset(coords={"year": ("year", years, {"long_name": "calendar year"})})
    for name, long_name in (("annual_pm25", "annual-mean total PM2.5"),
                            ("annual_pm25_ihs", "annual-mean IHS-related PM2.5 (IHS areas)")):
        data = da.full((n_year, grid.ny, grid.nx), np.nan, dtype="float32", chunks=(n_year, tile_size, tile_size))
        static[name] = xr.DataArray(data, dims=("year", "lat", "lon"),
                                    attrs={"units": UNITS, "long_name": long_name, "grid_mapping": "crs"})
        static[name].encoding = {"chunks": (n_year, tile_size, tile_size), "fill_value": np.nan}
    create_store(out_dir / MAPS_STORE, grid, specs, tile_size=tile_size, static=static, overwrite=True,
                 attrs={"mean": MEAN_DEFINITION, "share": SHARE_DEFINITION})
    tspecs = {}
    for name, what in (("pm25_ihs", "IHS-related PM2.5"), ("pm25", "total PM2.5")):
        tspecs[f"{name}_mk_z"] = map_spec("1", f"Mann-Kendall z of annual-mean {what}")
        tspecs[f"{name}_mk_p"] = map_spec("1", f"Mann-Kendall two-sided p of annual-mean {what}")
        tspecs[f"{name}_sen_slope"] = map_spec("ug m-3 yr-1", f"Sen's slope of annual-mean {what}")
        tspecs[f"{name}_trend"] = map_spec("1", f"significant trend of annual-mean {what} "
                                                f"(1 increasing, -1 decreasing, 0 none; alpha {ALPHA})", dtype="int8")
    create_store(out_dir / TRENDS_STORE, grid, tspecs, tile_size=tile_size, overwrite=True,
                 attrs={"test": "Mann-Kendall (pymannkendall original_test semantics) and Sen's slope",
                        "alpha": ALPHA, "years": [int(y) for y in years]})


def _write_sums(path: Path, sums: dict, time, layout: GroupLayout, group_names, extra_attrs: dict) -> None:
    import xarray as xr

    kinds = layout.kinds()
    ds = xr.Dataset(
        {name: (("group", "time"), arr, {"long_name": _SUM_LONG_NAMES.get(name, name)}) for name, arr in sums.items()},
        coords={"time": ("time", np.asarray(time, dtype="datetime64[ns]")),
                "group_kind": ("group", np.array([k for k, _ in kinds], dtype=object)),
                "group_index": ("group", np.array([i for _, i in kinds], dtype=np.int64)),
                "group_name": ("group", np.array(group_names, dtype=object))},
        attrs={"mean": MEAN_DEFINITION, "share": SHARE_DEFINITION, **extra_attrs},
    )
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    mark_complete(path)


_SUM_LONG_NAMES = {
    "s_tot": "sum of total PM2.5 over finite pixel-days", "n_tot": "number of finite total PM2.5 pixel-days",
    "s_ihs": "sum of IHS-related PM2.5 over paired pixel-days", "s_totp": "sum of total PM2.5 over paired pixel-days",
    "n_pair": "number of paired pixel-days (IHS-related and total finite)",
    "s_oem": "sum of pm25_bl_oem over finite pixel-days", "n_oem": "number of finite pm25_bl_oem pixel-days",
    "s_true": "sum of the true IHS PM2.5 over paired pixel-days",
    "n_neg": "number of paired pixel-days with a negative IHS-related value",
}


def _fingerprint(paths, tile_size: int) -> str:
    """Identity of the input stores (their root metadata is rewritten whenever a stage finishes)."""
    parts = [f"tile_size={tile_size}"]
    for path in paths:
        meta = Path(path) / "zarr.json"
        stat = meta.stat()
        parts.append(f"{Path(path).resolve()}:{stat.st_mtime_ns}:{stat.st_size}")
    return "|".join(parts)


def _stored_fingerprint(path: Path) -> str | None:
    import zarr

    try:
        return zarr.open_group(path, mode="r").attrs.get("ihs_inputs")
    except Exception:  # pragma: no cover - unreadable store counts as stale
        return None


def load_sums(path: Path):
    """Read ``series.zarr`` back: ``(sums dict of (group, time) arrays, dataset)``."""
    ds = open_store(path)
    sums = {name: ds[name].values for name in ds.data_vars if name in _SUM_LONG_NAMES}
    return sums, ds


# --------------------------------------------------------------------------- inputs
def _names(cubes) -> tuple[list[str], list[str], list]:
    if "city_name" not in cubes and "city_name_en" not in cubes:
        n = int(cubes.sizes.get("city", 0))
        return [f"City {i}" for i in range(n)], [f"City {i}" for i in range(n)], [None] * n
    en = [str(v) for v in (cubes["city_name_en"].values if "city_name_en" in cubes else cubes["city_name"].values)]
    local = [str(v) for v in (cubes["city_name"].values if "city_name" in cubes else en)]
    en = [e if e and e != "nan" else loc for e, loc in zip(en, local)]
    adcode = list(cubes["city_adcode"].values) if "city_adcode" in cubes else [None] * len(en)
    return en, local, adcode


def read_indicators(path, known_regions: dict[str, str]) -> pd.DataFrame:
    """Read a yearly indicator CSV into a long table ``year, region, indicator, value``.

    The CSV has years as rows: a ``year`` column, an optional ``region`` (or ``city``) column naming
    the region the row belongs to (a city's English or local name or adcode; empty, ``all`` or
    ``region`` for the whole study area), and one numeric column per indicator. Lines starting with
    ``#`` are comments.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"stats.indicators: file {path} not found")
    df = pd.read_csv(path, comment="#", skipinitialspace=True)
    df.columns = [str(c).strip() for c in df.columns]
    lower = {c.lower(): c for c in df.columns}
    if "year" not in lower:
        raise ValueError(f"{path}: the indicator CSV needs a 'year' column (found {list(df.columns)})")
    year_col = lower["year"]
    region_col = lower.get("region") or lower.get("city")
    years = pd.to_numeric(df[year_col], errors="coerce")
    if years.isna().any():
        raise ValueError(f"{path}: column {year_col!r} holds non-numeric years: "
                         f"{df.loc[years.isna(), year_col].tolist()[:5]}")
    if region_col is None:
        regions = pd.Series(["All"] * len(df))
    else:
        raw = df[region_col].fillna("").astype(str).str.strip()
        regions = []
        for value in raw:
            key = value.lower()
            if key in ("", "all", "region", "total"):
                regions.append("All")
            elif key in known_regions:
                regions.append(known_regions[key])
            else:
                raise ValueError(f"{path}: region {value!r} in column {region_col!r} is not a city of this run; "
                                 f"known: {sorted(set(known_regions.values()))} or 'all'")
        regions = pd.Series(regions)
    indicator_cols = [c for c in df.columns if c not in (year_col, region_col)]
    if not indicator_cols:
        raise ValueError(f"{path}: no indicator columns besides {year_col!r}")
    rows = []
    for col in indicator_cols:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna() & ~df[col].astype(str).str.strip().str.upper().isin(["NAN", "NA", ""])
        if bad.any():
            raise ValueError(f"{path}: column {col!r} holds non-numeric values: {df.loc[bad, col].tolist()[:5]}")
        rows.append(pd.DataFrame({"year": years.astype(int).to_numpy(), "region": regions.to_numpy(),
                                  "indicator": col, "value": values.to_numpy(dtype=float)}))
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------------------- the stage
def run_stats(config: RunConfig, client, echo) -> dict:
    """Compute the statistics of a run and write ``RUN/stats/``; return the headline numbers."""
    from .run import store_path

    from .plan import begin_output_dir, finish_output_dir

    cubes_path = input_store(config)
    stage1_path, stage3_path = store_path(config, "stage1"), store_path(config, "stage3")
    cubes = open_store(cubes_path)
    areas = open_store(stage1_path)
    est = open_store(stage3_path)
    for store, path, names in ((cubes, cubes_path, ("pm25",)), (areas, stage1_path, ("ihs_mask", "background")),
                               (est, stage3_path, ("pm25_ihs",))):
        for name in names:
            if name not in store:
                raise ValueError(f"{path}: the stats stage needs variable {name!r}, not found")
    grid = Grid.from_dataset(cubes)
    if Grid.from_dataset(est) != grid or Grid.from_dataset(areas) != grid:
        raise ValueError(f"{cubes_path}, {stage1_path} and {stage3_path} are not on the same grid")
    time = cubes.time.values
    if len(est.time) != len(time) or not np.array_equal(est.time.values, time):
        raise ValueError(f"{stage3_path} and {cubes_path} do not share the same days")
    if np.any(np.diff(time.astype("datetime64[ns]").astype(np.int64)) <= 0):
        raise ValueError(f"{cubes_path}: the time axis is not strictly increasing")
    cal = calendar(time)
    years = sorted(int(y) for y in cal["year"].unique())
    day_slices = tuple((int(np.flatnonzero(cal["year"].to_numpy() == y)[0]),
                        int(np.flatnonzero(cal["year"].to_numpy() == y)[-1]) + 1) for y in years)
    tile_size = int(config["grid.tile_size"])
    tiles = grid.tiles(tile_size)
    has_city = "city_id" in cubes
    city_en, city_local, city_adcode = _names(cubes) if has_city else ([], [], [])
    n_city = len(city_en)
    n_ihs = int(cubes.sizes.get("ihs", 0))
    has_oem = "pm25_bl_oem" in est
    has_truth = "pm25_ihs_true" in cubes
    layout = GroupLayout(n_city, n_ihs)
    offsets = areas["member_offset"].values.astype(np.int64) if "member_offset" in areas else np.zeros(1, np.int64)
    pixels = areas["member_pixel"].values.astype(np.int64) if "member_pixel" in areas else np.zeros(0, np.int64)
    if offsets.size - 1 != n_ihs:
        raise ValueError(f"{stage1_path}: membership lists {offsets.size - 1} IHS but {cubes_path} has {n_ihs}")
    ihs_ids = [str(v) for v in cubes["ihs_id"].values] if "ihs_id" in cubes else [str(i) for i in range(n_ihs)]
    ihs_names = [str(v) for v in cubes["ihs_name"].values] if "ihs_name" in cubes else ihs_ids
    group_names = (["Region", "IHS areas", "Background"] + city_en + [f"{c} (IHS areas)" for c in city_en]
                   + [f"IHS {i}" for i in ihs_ids])

    out_dir = begin_output_dir(config, "stats")
    _copy_stage_tables(config, out_dir)
    sums_path, maps_path, trends_path = out_dir / SUM_STORE, out_dir / MAPS_STORE, out_dir / TRENDS_STORE
    truth_totals = None
    fingerprint = _fingerprint((cubes_path, stage1_path, stage3_path), tile_size)
    if (all(is_complete(p) for p in (sums_path, maps_path, trends_path))
            and _stored_fingerprint(sums_path) == fingerprint):
        echo(f"  {sums_path.name}, {maps_path.name}, {trends_path.name} are complete — kept; rebuilding the tables")
        sums, sums_ds = load_sums(sums_path)
        if "truth_s_err" in sums_ds.attrs:
            truth_totals = {k: float(sums_ds.attrs[f"truth_{k}"]) for k in ("s_err", "s_err2", "n_pair")}
    else:
        _create_stores(out_dir, grid, years, tile_size, has_oem, has_truth)
        members = members_by_tile(offsets, pixels, grid, tiles, tile_size)
        func = partial(stats_tile, cubes=cubes_path, stage1=stage1_path, stage3=stage3_path, maps=maps_path,
                       trends=trends_path, day_slices=day_slices, n_city=n_city, n_ihs=n_ihs, has_city=has_city,
                       has_oem=has_oem, has_truth=has_truth)
        sums = None
        truth_totals = {"s_err": 0.0, "s_err2": 0.0, "n_pair": 0.0} if has_truth else None
        for part in _run_tiles(func, tiles, members, client, echo):
            if sums is None:
                sums = {k: np.zeros((layout.size, len(time))) for k in part["sums"]}
            for k, v in part["sums"].items():
                sums[k][part["groups"]] += v
            if truth_totals is not None:
                for k in truth_totals:
                    truth_totals[k] += part["truth"][k]
        mark_complete(maps_path)
        mark_complete(trends_path)
        extra = {f"truth_{k}": v for k, v in (truth_totals or {}).items()} | {"ihs_inputs": fingerprint}
        _write_sums(sums_path, sums, time, layout, group_names, extra)

    maps = open_store(maps_path)
    headline = build_tables(
        out_dir=out_dir, sums=sums, cal=cal, years=years, layout=layout, grid=grid, cubes=cubes, areas=areas,
        maps=maps, city_en=city_en, city_local=city_local, city_adcode=city_adcode, ihs_ids=ihs_ids,
        ihs_names=ihs_names, truth_totals=truth_totals, indicators=config.get("stats.indicators"), echo=echo,
        attribution=config.get("stats.attribution"), intervals=config.get("stats.intervals"),
    )
    headline["dir"] = str(out_dir)
    finish_output_dir(config, "stats")
    return headline


def _copy_stage_tables(config: RunConfig, out_dir: Path) -> None:
    """Tables other stages keep with their outputs, beside the statistics: prep's per-day removed and
    filled values, stage 3's held-out-hole validation (U-ConvLSTM against kriging)."""
    import shutil

    from .prep import DAILY_TABLE
    from .run import store_path
    from .stage3_model import VALIDATION_CSV, model_dir

    tables = [model_dir(config) / VALIDATION_CSV] if config["stage3.method"] == "uconvlstm" else []
    if config["prep.enabled"]:
        tables.append(store_path(config, "prep") / DAILY_TABLE)
    for table in tables:
        if table.is_file():
            shutil.copyfile(table, out_dir / table.name)


def _city_of_ihs(cubes, n_city: int) -> np.ndarray:
    if "ihs_row" not in cubes or "city_id" not in cubes or n_city == 0:
        return np.full(int(cubes.sizes.get("ihs", 0)), -1)
    rows = cubes["ihs_row"].values.astype(np.int64)
    cols = cubes["ihs_col"].values.astype(np.int64)
    city = cubes["city_id"].values
    return city[rows, cols].astype(np.int64) if rows.size else np.zeros(0, np.int64)


def _operating(cubes, years) -> np.ndarray | None:
    """``(ihs, years)`` operating flags aligned to the data years (NaN-free bools; None when absent)."""
    if "ihs_operating" not in cubes:
        return None
    op = cubes["ihs_operating"]
    op_years = [int(y) for y in op["year"].values]
    out = np.zeros((op.sizes["ihs"], len(years)), dtype=float)
    values = op.values.astype(bool)
    for j, y in enumerate(years):
        out[:, j] = values[:, op_years.index(y)] if y in op_years else np.nan
    return out


def _city_operating(operating, areas, city_ids: np.ndarray, n_city: int) -> np.ndarray | None:
    """``(city, years)`` bool: some source whose radiation area reaches the city's pixels operated that year."""
    if operating is None or "member_offset" not in areas:
        return None
    offsets = areas["member_offset"].values.astype(np.int64)
    pixels = areas["member_pixel"].values.astype(np.int64)
    city_flat = city_ids.ravel()
    op = np.nan_to_num(operating, nan=1.0) > 0
    out = np.zeros((n_city, op.shape[1]), dtype=bool)
    for i in range(offsets.size - 1):
        cities = np.unique(city_flat[pixels[offsets[i]:offsets[i + 1]]])
        cities = cities[(cities >= 0) & (cities < n_city)]
        out[cities] |= op[i]
    return out


def _count(operating: np.ndarray) -> np.ndarray:
    """Number of operating IHS per year; NaN for years the operating table does not cover."""
    missing = np.isnan(operating).all(axis=0) if operating.shape[0] else np.zeros(operating.shape[1], bool)
    return np.where(missing & (operating.shape[0] > 0), np.nan, np.nansum(operating, axis=0))


def build_tables(*, out_dir: Path, sums: dict, cal: pd.DataFrame, years: list[int], layout: GroupLayout, grid: Grid,
                 cubes, areas, maps, city_en, city_local, city_adcode, ihs_ids, ihs_names, truth_totals,
                 indicators, echo, attribution: dict | None = None, intervals: dict | None = None) -> dict:
    """All tables, ``tables.md`` and ``stats.json`` from the reduced sums and the map stores."""
    n_city, n_ihs = layout.n_city, layout.n_ihs
    writer = TableWriter(out_dir, "Statistics of IHS-related PM2.5")
    has_oem = "s_oem" in sums
    has_truth = "s_true" in sums
    R, A, B = layout.REGION, layout.IHS_AREA, layout.BACKGROUND
    cities = np.arange(n_city)
    writer.text(
        f"Period {cal['date'].iloc[0]:%Y-%m-%d} – {cal['date'].iloc[-1]:%Y-%m-%d}, {len(cal)} days, "
        f"grid {grid.ny} × {grid.nx} cells of {grid.res:g}°. Concentrations in µg m⁻³.\n\n"
        f"* Means: {MEAN_DEFINITION}.\n* Contribution: {SHARE_DEFINITION}.\n* Seasons: {DECEMBER_RULE}.\n"
        f"* Mann–Whitney U: {MWU_BASIS}.\n* Trends: Mann–Kendall (α = {ALPHA}) and Sen's slope (per year) "
        f"of annual means.\n* Decline: (first − last) / first × 100; year-on-year change: "
        f"(v_y − v_(y−1)) / v_(y−1) × 100.")

    # ---- annual, region-wide
    _, by_year = reduce_by(sums, cal["year"].to_numpy(), order=years)
    ym = means_from_sums(by_year)
    n_days = cal.groupby("year").size().reindex(years).to_numpy()
    operating = _operating(cubes, years)
    n_operating = _count(operating) if operating is not None else np.full(len(years), np.nan)
    annual = pd.DataFrame({
        "year": years, "n_days": n_days,
        "pm25_region": ym["pm25"][R], "pm25_background": ym["pm25"][B], "pm25_ihs_area": ym["pm25"][A],
        "pm25_ihs": ym["pm25_ihs"][A],
    })
    if has_oem:
        annual["pm25_bl_oem_ihs_area"] = ym["pm25_bl_oem"][A]
    annual["share_pct"] = ym["share_pct"][A]
    # year-on-year changes and declines only between years in which some source of the areas operated
    any_operating = (np.nan_to_num(n_operating, nan=1.0) > 0) if operating is not None else None
    annual["pm25_ihs_yoy_pct"] = yoy_pct(annual["pm25_ihs"].to_numpy(), any_operating)
    annual["share_yoy_pct"] = yoy_pct(annual["share_pct"].to_numpy(), any_operating)
    if "negative_pct" in ym:
        annual["negative_pct"] = ym["negative_pct"][A]
    annual["n_operating_ihs"] = n_operating.astype(int) if np.isfinite(n_operating).all() else n_operating
    if has_truth:
        annual["pm25_ihs_true"] = ym["pm25_ihs_true"][A]
        annual["share_true_pct"] = ym["share_true_pct"][A]
        if "pm25_ihs_true_annual_mean" in cubes:
            recorded = cubes["pm25_ihs_true_annual_mean"].to_series()
            annual["pm25_ihs_true_scene"] = [float(recorded.get(y, np.nan)) for y in years]
    writer.add("annual", annual.set_index("year"),
               "Annual means: total PM2.5 (region, background, IHS areas), IHS-related PM2.5 and its contribution "
               "inside IHS areas (Fig. 7, Fig. 8a–b)")

    # ---- seasons
    season_index = season_completeness(cal)
    keys = list(zip(season_index["season_year"], season_index["season"]))
    _, by_season = reduce_by(sums, list(zip(cal["season_year"], cal["season"])), order=keys)
    sm = means_from_sums(by_season)
    seasonal = season_index.copy()
    seasonal["pm25_ihs_area"] = sm["pm25"][A]
    seasonal["pm25_ihs"] = sm["pm25_ihs"][A]
    seasonal["share_pct"] = sm["share_pct"][A]
    if has_truth:
        seasonal["pm25_ihs_true"] = sm["pm25_ihs_true"][A]
    writer.add("seasonal", seasonal,
               "Seasonal means inside IHS areas per season-year (Fig. 8c); December counts toward the next "
               "year's DJF", index=False)
    _, by_clim = reduce_by(sums, cal["season"].to_numpy(), order=list(SEASONS))
    cm = means_from_sums(by_clim)
    clim_rows, season_series = [], {}
    op_year = dict(zip(years, any_operating)) if any_operating is not None else {}
    for j, season in enumerate(SEASONS):
        sub = seasonal[(seasonal["season"] == season) & seasonal["complete"]]
        sub_op = sub[[bool(op_year.get(int(y), True)) for y in sub["season_year"]]] if len(sub) else sub
        season_series[f"IHS-related PM2.5, IHS areas, {season}"] = sub["pm25_ihs"].to_numpy()
        trend = trend_test(sub["pm25_ihs"].to_numpy(), alpha=ALPHA)
        row = {"season": season, "n_days": int((cal["season"] == season).sum()), "pm25_ihs": cm["pm25_ihs"][A][j],
               "share_pct": cm["share_pct"][A][j], "pm25_ihs_area": cm["pm25"][A][j],
               "first_complete": sub["season_year"].iloc[0] if len(sub) else np.nan,
               "last_complete": sub["season_year"].iloc[-1] if len(sub) else np.nan,
               "decline_pct": (float(decline_pct(sub_op["pm25_ihs"].iloc[0], sub_op["pm25_ihs"].iloc[-1]))
                               if len(sub_op) else np.nan),
               "sen_slope": trend["slope"], "mk_p": trend["p"], "mk_trend": trend["trend"]}
        clim_rows.append(row)
    writer.add("seasonal_summary", pd.DataFrame(clim_rows).set_index("season"),
               "Season means over the whole period and their change between the first and last complete season "
               "(Fig. 8c–d); trends over complete seasons only")

    # ---- monthly contributions and the paper's comparison windows (Table 4 shape)
    month_labels = list(zip(cal["year"], cal["month"]))
    month_keys, by_month = reduce_by(sums, month_labels)
    mm = means_from_sums(by_month)
    window_labels = [f"{y}.1–{y}.2" if m in (1, 2) else (f"{y}.7" if m == 7 else None)
                     for y, m in month_labels]
    window_keys = [w for w in dict.fromkeys(window_labels) if w is not None]
    _, by_window = reduce_by(sums, window_labels, order=window_keys)
    wm = means_from_sums(by_window)
    region_groups = [("All IHS areas", A)] + [(city_en[c], int(layout.city_ihs(c))) for c in range(n_city)]
    monthly_rows, window_rows = [], []
    for name, g in region_groups:
        for k, (y, m) in enumerate(month_keys):
            monthly_rows.append({"region": name, "year": int(y), "month": int(m), "pm25_ihs": mm["pm25_ihs"][g, k],
                                 "pm25": mm["pm25_paired"][g, k], "share_pct": mm["share_pct"][g, k]})
        for k, w in enumerate(window_keys):
            window_rows.append({"period": w, "region": name, "share_pct": wm["share_pct"][g, k],
                                "pm25_ihs": wm["pm25_ihs"][g, k], "pm25": wm["pm25_paired"][g, k]})
    pd.DataFrame(monthly_rows).to_csv(out_dir / "monthly.csv", index=False)
    writer.files["monthly"] = "monthly.csv"
    writer.text("## Monthly means\n\nFile: `monthly.csv` (IHS-related and total PM2.5 and the contribution, per month, "
                "for all IHS areas and the IHS areas of each city).")
    if window_rows:
        windows = pd.DataFrame(window_rows).set_index(["period", "region"])
        writer.add("contribution_windows", windows,
                   "Table 4 shape — contribution of IHS-related PM2.5 (%) in the comparison windows of the paper "
                   "(January–February and July of every year), IHS areas of each city")

    # ---- trends region-wide
    trend_series = {
        "IHS-related PM2.5, IHS areas, annual": annual["pm25_ihs"].to_numpy(),
        "IHS share (%), IHS areas, annual": annual["share_pct"].to_numpy(),
        "Total PM2.5, region, annual": annual["pm25_region"].to_numpy(),
        "Total PM2.5, IHS areas, annual": annual["pm25_ihs_area"].to_numpy(),
        "Total PM2.5, background, annual": annual["pm25_background"].to_numpy(),
        **season_series,
    }
    trends = trend_table(trend_series, alpha=ALPHA)
    writer.add("trends", trends.set_index("series"),
               "Mann–Kendall tests and Sen's slopes (per year) of annual and seasonal means", digits=4)

    # ---- cities (Table 2, Fig. 9b, 10)
    city_ids = cubes["city_id"].values.astype(np.int64) if "city_id" in cubes else np.full(grid.shape, -1)
    inside = areas["ihs_mask"].values.astype(bool)
    background = areas["background"].values.astype(bool)
    cell_area = grid.cell_area_km2()
    city_of_ihs = _city_of_ihs(cubes, n_city)
    mean_ihs_map = maps["mean_pm25_ihs"].values
    # IHS-area pixels grouped by city once (one pass per map instead of one mask per city)
    area_idx = np.flatnonzero(inside.ravel())
    area_city = city_ids.ravel()[area_idx]
    order = np.argsort(area_city, kind="stable")
    area_idx = area_idx[order]
    bounds = np.searchsorted(area_city[order], np.arange(n_city + 1))

    def by_city(field):
        values = np.asarray(field).ravel()[area_idx]
        return [values[bounds[c]:bounds[c + 1]] for c in range(n_city)]

    period_sums = {k: v.sum(axis=1) for k, v in sums.items()}
    pm = means_from_sums(period_sums)
    headline_city = {}
    if n_city:
        gi, ga = layout.city_ihs(cities), layout.city(cities)
        city_operating = _city_operating(operating, areas, city_ids, n_city)
        t2 = city_year_table(city_en, years, ym["pm25_ihs"][gi], alpha=ALPHA, operating=city_operating)
        writer.add("city_pm25_ihs_annual", t2,
                   "Table 2 — annual mean IHS-related PM2.5 (µg m⁻³) in the IHS areas of each city, decline "
                   "between the first and the last year in which a source of the city's areas operated (%), and "
                   "Mann–Kendall/Sen trend")
        writer.add("city_share_annual", city_year_table(city_en, years, ym["share_pct"][gi], alpha=ALPHA,
                                                        operating=city_operating),
                   "Annual contribution of IHS-related PM2.5 (%) in the IHS areas of each city (Fig. 10)")
        writer.add("city_pm25_annual", city_year_table(city_en, years, ym["pm25"][ga], alpha=ALPHA),
                   "Annual mean total PM2.5 (µg m⁻³) over all pixels of each city")
        n_pix = np.bincount(city_ids[city_ids >= 0].ravel(), minlength=n_city)[:n_city]
        in_city_area = np.bincount(city_ids[inside & (city_ids >= 0)].ravel(), minlength=n_city)[:n_city]
        km2 = np.bincount(city_ids[inside & (city_ids >= 0)].ravel(), weights=cell_area[inside & (city_ids >= 0)],
                          minlength=n_city)[:n_city]
        summary = pd.DataFrame({
            "city": city_en, "city_name": city_local, "adcode": city_adcode, "n_pixels": n_pix,
            "ihs_area_pixels": in_city_area, "ihs_area_km2": km2,
            "n_ihs": np.bincount(city_of_ihs[city_of_ihs >= 0], minlength=n_city)[:n_city] if n_ihs else 0,
            "pm25_city": pm["pm25"][ga], "pm25_ihs_area": pm["pm25"][gi], "pm25_ihs": pm["pm25_ihs"][gi],
            "share_pct": pm["share_pct"][gi],
        }).set_index("city")
        period_boxes = [box_stats(v) for v in by_city(mean_ihs_map)]
        for col, key in (("pixel_median", "median"), ("pixel_q1", "q1"), ("pixel_q3", "q3")):
            summary[col] = [b[key] for b in period_boxes]
        writer.add("city_summary", summary,
                   "Cities: period means of total PM2.5 (all pixels, IHS areas), IHS-related PM2.5 and contribution "
                   "in IHS areas, and the quartiles of the pixel period means (Fig. 9b)")
        pd.DataFrame({"city": city_en, "pm25": pm["pm25"][ga]}).to_csv(out_dir / "city_pm25.csv", index=False)
        order = np.argsort(-np.nan_to_num(pm["pm25_ihs"][gi], nan=-np.inf))
        headline_city = {"highest_pm25_ihs_city": city_en[order[0]],
                         "highest_pm25_ihs": _f(pm["pm25_ihs"][gi][order[0]])}

    # ---- box plots (Fig. 11): pixel annual means / period means of IHS-related PM2.5 in IHS areas
    rows = []
    periods = [(str(y), maps["annual_pm25_ihs"].isel(year=j).values) for j, y in enumerate(years)]
    periods.append(("all", mean_ihs_map))
    for label, field in periods:
        rows.append({"city": "All IHS areas", "period": label} | box_stats(field[inside]))
        for c, values in zip(cities, by_city(field)):
            rows.append({"city": city_en[c], "period": label} | box_stats(values))
    boxes = pd.DataFrame(rows)
    writer.add("city_boxplot", boxes,
               "Box-plot numbers of the pixel means of IHS-related PM2.5 in the IHS areas of each city, per year "
               "and over the period (Fig. 11; whiskers at 1.5 IQR)", index=False)

    # ---- Mann–Whitney U (Fig. 6b)
    mean_tot = maps["mean_pm25"].values
    mwu_rows = []
    for label, field in [("period mean", mean_tot)] + [(str(y), maps["annual_pm25"].isel(year=j).values)
                                                       for j, y in enumerate(years)]:
        bg, ia = describe(field[background]), describe(field[inside])
        row = {"basis": label} | mwu_test(field[background], field[inside])
        row |= {f"background_{k}": v for k, v in bg.items() if k != "n"}
        row |= {f"ihs_area_{k}": v for k, v in ia.items() if k != "n"}
        mwu_rows.append(row)
    mwu = pd.DataFrame(mwu_rows).set_index("basis")
    writer.add("mwu", mwu, "Mann–Whitney U test of per-pixel mean total PM2.5: background vs IHS-area pixels "
               "(Fig. 6b); u_eq11 is eq. 11 with R1 the background rank sum", digits=4)

    # ---- single IHS areas (She County case study, §3.3 / Fig. 12)
    ihs_summary = pd.DataFrame()
    if n_ihs:
        gi = layout.ihs(np.arange(n_ihs))
        daily = means_from_sums({k: v[gi] for k, v in sums.items()})
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                dmin, dmax = np.nanmin(daily["share_pct"], axis=1), np.nanmax(daily["share_pct"], axis=1)
        offsets = areas["member_offset"].values
        ihs_op = (np.nan_to_num(operating, nan=1.0) > 0) if operating is not None else None
        ihs_table = city_year_table(ihs_ids, years, ym["pm25_ihs"][gi], alpha=ALPHA, index_name="ihs_id",
                                    operating=ihs_op)
        with np.errstate(invalid="ignore"):
            over_100 = (daily["share_pct"] > 100.0).sum(axis=1)
            negative_days = (daily["pm25_ihs"] < 0.0).sum(axis=1)
        ihs_summary = pd.DataFrame({
            "ihs_id": ihs_ids, "ihs_name": ihs_names,
            "category": [str(v) for v in cubes["ihs_category"].values] if "ihs_category" in cubes else "",
            "city": [city_en[c] if 0 <= c < n_city else "" for c in city_of_ihs],
            "lat": cubes["ihs_lat"].values if "ihs_lat" in cubes else np.nan,
            "lon": cubes["ihs_lon"].values if "ihs_lon" in cubes else np.nan,
            "area_km2": areas["ihs_area_km2"].values if "ihs_area_km2" in areas else np.nan,
            "n_pixels": np.diff(offsets),
            "years_operating": np.nansum(operating, axis=1).astype(int) if operating is not None else np.nan,
            "pm25_ihs": pm["pm25_ihs"][gi], "pm25": pm["pm25_paired"][gi], "share_pct": pm["share_pct"][gi],
            "daily_share_min_pct": dmin, "daily_share_max_pct": dmax,
            "days_share_over_100": over_100, "days_negative": negative_days,
            "negative_pct": pm["negative_pct"][gi] if "negative_pct" in pm else np.nan,
        }).set_index("ihs_id")
        for col in ihs_table.columns:
            if not isinstance(col, (int, np.integer)) and col != "mean":
                ihs_summary[col] = ihs_table[col].to_numpy()
        writer.add("ihs_summary", ihs_summary,
                   "Single IHS radiation areas (§3.3, Fig. 12): period mean IHS-related PM2.5, contribution, range of "
                   "the daily contribution, days on which the area's daily contribution exceeds 100 % or its "
                   "daily mean is negative, the share of negative pixel-days (kept, not clipped), decline "
                   "between the first and last operating year and trend of the annual means")
        long_rows = []
        for k, i in enumerate(ihs_ids):
            yoy = yoy_pct(ym["pm25_ihs"][gi[k]], None if ihs_op is None else ihs_op[k])
            for j, y in enumerate(years):
                row = {"ihs_id": i, "year": y,
                       "operating": (bool(operating[k, j])
                                     if operating is not None and np.isfinite(operating[k, j]) else None),
                       "pm25_ihs": ym["pm25_ihs"][gi[k], j], "pm25": ym["pm25_paired"][gi[k], j],
                       "share_pct": ym["share_pct"][gi[k], j], "pm25_ihs_yoy_pct": yoy[j]}
                if has_truth:
                    row["pm25_ihs_true"] = ym["pm25_ihs_true"][gi[k], j]
                long_rows.append(row)
        ihs_annual = pd.DataFrame(long_rows)
        if has_truth and "ihs_true_annual_mean" in cubes:
            rec = cubes["ihs_true_annual_mean"]
            rec_years = [int(y) for y in rec["year"].values]
            vals = rec.values
            ihs_annual["ihs_true_annual_mean_scene"] = [
                float(vals[k, rec_years.index(y)]) if y in rec_years else np.nan
                for k in range(n_ihs) for y in years]
        ihs_annual.to_csv(out_dir / "ihs_annual.csv", index=False)
        writer.files["ihs_annual"] = "ihs_annual.csv"
        writer.text("## Single IHS areas, year by year\n\nFile: `ihs_annual.csv` (one row per IHS and year: "
                    "operating flag, annual mean IHS-related and total PM2.5, contribution, year-on-year change).")

    # ---- Pearson (Fig. 7c, Table 3)
    corr_rows = []
    ann_all = annual["pm25_ihs"].to_numpy()
    if operating is not None:
        corr_rows.append({"indicator": "Operational IHSs", "region": "All"} | pearson_test(n_operating, ann_all))
        for c in cities:
            count = _count(operating[city_of_ihs == c])
            corr_rows.append({"indicator": "Operational IHSs", "region": city_en[c]}
                             | pearson_test(count, ym["pm25_ihs"][layout.city_ihs(c)]))
    if indicators:
        known = {}
        for c in cities:
            for key in (city_en[c], city_local[c], city_adcode[c]):
                if key is not None and str(key) != "nan":
                    known[str(key).strip().lower()] = city_en[c]
        ind = read_indicators(indicators, known)
        for (name, region), sub in ind.groupby(["indicator", "region"], sort=False):
            target = ann_all if region == "All" else ym["pm25_ihs"][layout.city_ihs(city_en.index(region))]
            by_year = dict(zip(sub["year"], sub["value"]))
            x = np.array([by_year.get(y, np.nan) for y in years], dtype=float)
            corr_rows.append({"indicator": name, "region": region} | pearson_test(x, target))
        echo(f"  indicators: {ind['indicator'].nunique()} from {indicators}")
    corr = pd.DataFrame(corr_rows, columns=["indicator", "region", "n", "r", "p"])
    writer.add("correlation", corr, "Pearson correlation of annual IHS-related PM2.5 with indicators (long form)",
               index=False, digits=4)
    if not corr.empty:
        writer.add("correlation_table", correlation_table(corr),
                   "Table 3 — Pearson r between annual IHS-related PM2.5 and indicators (regions as columns)")

    # ---- Moran's I of the mean IHS-related map
    moran_rows = []
    if np.isfinite(mean_ihs_map).sum() >= 4:
        moran_rows.append({"variable": "mean IHS-related PM2.5 (IHS-area pixels)"}
                          | moran_test(mean_ihs_map, contiguity="queen", transform="r"))
    moran = pd.DataFrame(moran_rows)
    writer.add("moran", moran, "Global Moran's I of the period-mean IHS-related PM2.5 map (queen contiguity, "
               "row-standardised weights, NaN cells outside IHS areas left out; §3.2.2)", index=False, digits=4)

    # ---- truth scores
    # ---- per-source attribution inside shared areas (beyond the paper; pipeline/attribution.py)
    from .attribution import append_truth_scores, write_attribution

    _, attribution_truth, attribution_text = write_attribution(
        writer, cubes=cubes, areas=areas, maps=maps, years=years, operating=operating, ihs_ids=ihs_ids,
        **(attribution or {}), sums=sums, cal=cal, layout=layout, city_names=city_en, intervals=intervals)

    truth = {}
    if has_truth:
        truth = _truth_scores(sums, layout, maps, inside, truth_totals, ym, years, writer, cal=cal)
        append_truth_scores(out_dir / "truth_scores.csv", attribution_truth, attribution_text)
        truth.update({k: _f(v) for k, v in attribution_truth.items()})

    md = writer.write_markdown()
    period_trend = trends.set_index("series").loc["IHS-related PM2.5, IHS areas, annual"]
    headline = {
        "period": [str(cal["date"].iloc[0].date()), str(cal["date"].iloc[-1].date())],
        "years": years, "n_days": int(len(cal)), "n_cities": n_city, "n_ihs": n_ihs,
        "ihs_area_pixels": int(inside.sum()), "background_pixels": int(background.sum()),
        "pm25_region": _f(pm["pm25"][R]), "pm25_background": _f(pm["pm25"][B]), "pm25_ihs_area": _f(pm["pm25"][A]),
        "pm25_ihs": _f(pm["pm25_ihs"][A]), "share_pct": _f(pm["share_pct"][A]),
        "pm25_ihs_decline_pct": _f(operating_decline(annual["pm25_ihs"].to_numpy(), any_operating)[0]),
        "negative_pct": _f(pm["negative_pct"][A]) if "negative_pct" in pm else None,
        "negative_pixel_days": int(period_sums["n_neg"][A]) if "n_neg" in period_sums else None,
        "ihs_days_share_over_100": int(ihs_summary["days_share_over_100"].sum()) if not ihs_summary.empty else 0,
        "pm25_ihs_trend": {"trend": period_trend["trend"], "z": _f(period_trend["z"]), "p": _f(period_trend["p"]),
                           "sen_slope": _f(period_trend["slope"])},
        "mwu_p": _f(mwu["p"].iloc[0]),
        "pearson_operating_r": _f(corr["r"].iloc[0]) if not corr.empty else None,
        "morans_i": _f(moran["I"].iloc[0]) if not moran.empty else None,
        **headline_city,
    }
    if truth:
        headline["truth"] = truth
    doc = {
        "definitions": {"mean": MEAN_DEFINITION, "share": SHARE_DEFINITION, "seasons": DECEMBER_RULE,
                        "mwu": MWU_BASIS, "alpha": ALPHA, "units": "ug m-3 (shares in %)",
                        "decline": "(first - last) / first * 100 between the first and last year in which the "
                                   "source (or any source of the area) operated",
                        "yoy": "(v_y - v_(y-1)) / v_(y-1) * 100, only when both years are operating years",
                        "negative": "IHS-related values below 0 are kept (estimation noise) and counted"},
        "headline": headline,
        "files": {"markdown": md.name, **writer.files, "maps": MAPS_STORE, "trend_maps": TRENDS_STORE,
                  "series": SUM_STORE, "city_pm25": "city_pm25.csv"},
    }
    (out_dir / "stats.json").write_text(json.dumps(doc, indent=2, default=_json_default))
    echo(f"  IHS-related PM2.5 {_num(headline['pm25_ihs'])} µg/m³ in IHS areas, contribution "
         f"{_num(headline['share_pct'], 1)} %, {len(writer.files)} tables in {out_dir}")
    return {k: headline[k] for k in ("pm25_ihs", "share_pct", "pm25_ihs_area", "pm25_background", "mwu_p",
                                     "morans_i")} | ({"truth": truth} if truth else {})


def _truth_scores(sums, layout, maps, inside, totals, ym, years, writer, cal=None) -> dict:
    A = layout.IHS_AREA
    est_map, true_map = maps["mean_pm25_ihs"].values[inside], maps["mean_pm25_ihs_true"].values[inside]
    daily = means_from_sums({k: v[A] for k, v in sums.items()})
    period = means_from_sums({k: v[A].sum() for k, v in sums.items()})
    n = totals["n_pair"] if totals else np.nan
    scores = {
        "bias": ratio(totals["s_err"], n).item() if totals else np.nan,
        "rmse": float(np.sqrt(ratio(totals["s_err2"], n))) if totals else np.nan,
        "mean_estimate": float(period["pm25_ihs"]), "mean_truth": float(period["pm25_ihs_true"]),
        "spatial_r": pearson_test(est_map, true_map)["r"],
        "temporal_r": pearson_test(daily["pm25_ihs"], daily["pm25_ihs_true"])["r"],
        "share_estimate_pct": float(period["share_pct"]), "share_true_pct": float(period["share_true_pct"]),
    }
    scores["share_error_pct"] = scores["share_estimate_pct"] - scores["share_true_pct"]
    scores["annual_r"] = pearson_test(ym["pm25_ihs"][A], ym["pm25_ihs_true"][A])["r"]
    scores.update(_fidelity_scores({k: v[A] for k, v in sums.items()}, cal))
    descriptions = {
        "bias": "mean of (estimate − truth) over IHS-area pixel-days (µg m⁻³)",
        "rmse": "root mean square of (estimate − truth) over IHS-area pixel-days (µg m⁻³)",
        "mean_estimate": "period mean of the estimated IHS-related PM2.5, IHS areas (µg m⁻³)",
        "mean_truth": "period mean of the true IHS PM2.5, IHS areas (µg m⁻³)",
        "spatial_r": "Pearson r of per-pixel period means, IHS-area pixels",
        "temporal_r": "Pearson r of the IHS-area mean daily series",
        "share_estimate_pct": "estimated contribution, IHS areas (%)",
        "share_true_pct": "true contribution, IHS areas (%)",
        "share_error_pct": "estimated − true contribution (percentage points)",
        "annual_r": "Pearson r of the IHS-area annual means",
        **FIDELITY_DESCRIPTIONS,
    }
    table = pd.DataFrame({"metric": list(scores), "value": [scores[k] for k in scores],
                          "description": [descriptions[k] for k in scores]}).set_index("metric")
    writer.add("truth_scores", table, "Scores of the estimate against the synthetic truth inside IHS areas", digits=4)
    per_year = pd.DataFrame({"year": years, "pm25_ihs": ym["pm25_ihs"][A], "pm25_ihs_true": ym["pm25_ihs_true"][A],
                             "error": ym["pm25_ihs"][A] - ym["pm25_ihs_true"][A], "share_pct": ym["share_pct"][A],
                             "share_true_pct": ym["share_true_pct"][A]}).set_index("year")
    writer.add("truth_annual", per_year, "Annual IHS-area means: estimate against truth")
    return {k: _f(v) for k, v in scores.items()}


FIDELITY_DESCRIPTIONS = {
    "bias_pct": "bias relative to the true mean: 100 × (Σ estimate − Σ truth) / Σ truth, IHS-area pixel-days (%)",
    "month_profile_r": "Pearson r of the month-of-year means (January … December over all years), IHS areas",
    "truth_month_amplitude_pct": "seasonal cycle of the truth: (max − min) / mean of its month-of-year means (%)",
    "negative_fraction": "fraction of IHS-area pixel-days with a negative estimate (kept, not clipped)",
    **{f"bias_pct_{s}": f"bias relative to the true mean in {s} (%)" for s in SEASONS},
}


def _fidelity_scores(area_sums: dict, cal) -> dict:
    """Month-profile r, seasonal biases and the negative fraction from the IHS-area daily sums."""
    s_ihs, s_true = area_sums["s_ihs"].sum(), area_sums["s_true"].sum()
    out = {"bias_pct": float(100.0 * ratio(s_ihs - s_true, s_true))}
    if cal is not None:
        _, by_month = reduce_by(area_sums, cal["month"].to_numpy(), order=list(range(1, 13)))
        mm = means_from_sums(by_month)
        out["month_profile_r"] = pearson_test(mm["pm25_ihs"], mm["pm25_ihs_true"])["r"]
        true_profile = mm["pm25_ihs_true"]
        with np.errstate(invalid="ignore", divide="ignore"):
            out["truth_month_amplitude_pct"] = float(100.0 * (np.nanmax(true_profile) - np.nanmin(true_profile))
                                                     / np.nanmean(true_profile))
    out["negative_fraction"] = float(ratio(area_sums["n_neg"].sum(), area_sums["n_pair"].sum())) \
        if "n_neg" in area_sums else np.nan
    if cal is not None:
        _, by_season = reduce_by(area_sums, cal["season"].to_numpy(), order=list(SEASONS))
        for j, season in enumerate(SEASONS):
            out[f"bias_pct_{season}"] = float(100.0 * ratio(by_season["s_ihs"][j] - by_season["s_true"][j],
                                                            by_season["s_true"][j]))
    return out


def _num(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _f(value):
    value = float(np.asarray(value, dtype=float))
    return value if np.isfinite(value) else None


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return str(obj)
