"""The statistics stage's tile pass and its stores (seed 000 §2.3.5).

One task per tile (never a whole cube in memory) aggregates total and IHS-related PM2.5 into

* ``stats/maps.zarr`` — period-mean and annual-mean maps;
* ``stats/trend_maps.zarr`` — per-pixel Mann–Kendall / Sen's slope of the annual means;
* ``stats/series.zarr`` — per-group, per-day sums and counts from which every mean of the tables is exact.

:func:`inputs_fingerprint` identifies the input stores, so a rerun keeps these stores when nothing upstream
changed (:mod:`ihs_hpc.pipeline.stats`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..grid import Grid, Tile
from ..io.cube import create_store, map_spec, mark_complete, open_store, read_tile, write_tile
from ..io.local_store import PiecewiseLocalStore
from ..stats.aggregate import GroupLayout, block_sums, means_from_sums, tile_membership
from ..stats.group_tests import pixel_trends

UNITS = "ug m-3"
ALPHA = 0.05
SUM_STORE = "series.zarr"
MAPS_STORE = "maps.zarr"
TRENDS_STORE = "trend_maps.zarr"
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


@dataclass(frozen=True)
class TileMembers:
    """One task of the stats pass: a tile and the IHS memberships of its pixels (:func:`members_by_tile`);
    it has a tile's ``name``, ``rows``, ``cols`` and ``shape`` for :func:`~ihs_hpc.pipeline.executor.map_tiles`."""

    tile: Tile
    members: list

    name = property(lambda self: self.tile.name)
    rows = property(lambda self: self.tile.rows)
    cols = property(lambda self: self.tile.cols)
    shape = property(lambda self: self.tile.shape)


def stats_task(task: TileMembers, **kwargs) -> dict:
    """:func:`stats_tile` of one :class:`TileMembers` (the picklable tile function of the stats pass)."""
    return stats_tile(task.tile, task.members, **kwargs)


# --------------------------------------------------------------------------- stores
def create_stat_stores(out_dir: Path, grid: Grid, years, tile_size: int, has_oem: bool, has_truth: bool):
    """Create ``maps.zarr`` and ``trend_maps.zarr`` in ``out_dir`` for the tile pass to fill."""
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


def write_sums(path: Path, sums: dict, time, layout: GroupLayout, group_names, extra_attrs: dict) -> None:
    """Write the per-group daily sums and counts as ``series.zarr`` and mark it complete."""
    import xarray as xr

    kinds = layout.kinds()
    ds = xr.Dataset(
        {name: (("group", "time"), arr, {"long_name": SUM_LONG_NAMES.get(name, name)}) for name, arr in sums.items()},
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
        ds.to_zarr(PiecewiseLocalStore(path), mode="w", zarr_format=3, consolidated=False)
    mark_complete(path)


SUM_LONG_NAMES = {
    "s_tot": "sum of total PM2.5 over finite pixel-days", "n_tot": "number of finite total PM2.5 pixel-days",
    "s_ihs": "sum of IHS-related PM2.5 over paired pixel-days", "s_totp": "sum of total PM2.5 over paired pixel-days",
    "n_pair": "number of paired pixel-days (IHS-related and total finite)",
    "s_oem": "sum of pm25_bl_oem over finite pixel-days", "n_oem": "number of finite pm25_bl_oem pixel-days",
    "s_true": "sum of the true IHS PM2.5 over paired pixel-days",
    "n_neg": "number of paired pixel-days with a negative IHS-related value",
}


def inputs_fingerprint(paths, tile_size: int) -> str:
    """Identity of the input stores (their root metadata is rewritten whenever a stage finishes)."""
    parts = [f"tile_size={tile_size}"]
    for path in paths:
        meta = Path(path) / "zarr.json"
        stat = meta.stat()
        parts.append(f"{Path(path).resolve()}:{stat.st_mtime_ns}:{stat.st_size}")
    return "|".join(parts)


def stored_inputs_fingerprint(path: Path) -> str | None:
    """The input fingerprint recorded in ``series.zarr`` at ``path`` (``None`` when unreadable)."""
    import zarr

    try:
        return zarr.open_group(path, mode="r").attrs.get("ihs_inputs")
    except Exception:  # pragma: no cover - unreadable store counts as stale
        return None


def load_sums(path: Path):
    """Read ``series.zarr`` back: ``(sums dict of (group, time) arrays, dataset)``."""
    ds = open_store(path)
    sums = {name: ds[name].values for name in ds.data_vars if name in SUM_LONG_NAMES}
    return sums, ds
