"""Assemble a synthetic scene; :mod:`~ihs_hpc.synth.scene_store` writes it, tile by tile, as the run's input
store plus the truth.

:func:`build_scene` computes everything global and small (DEM, cities, 0.1° meteorology, sources,
radiation areas, emissions and their calibration); :func:`generate_scene` then writes the store:
meteorology by met tiles, PM2.5 and the IHS truth by analysis tiles (one ``(time, tile, tile)`` chunk
each, never a whole cube in memory), the truth tables last, and marks the store complete.

Determinism: every random draw comes from a stream keyed by the seed and the component (and, for
per-pixel noise, the fixed 32 × 32 block), every per-pixel quantity is computed elementwise, and
annual sums are accumulated per pixel in time order and reduced over pixels only at the end — so the
same seed gives byte-identical stores, and any tile size gives identical arrays.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..grid import Grid
from ..io.cube import StoreError, is_complete
from .cities import Cities, make_cities, urban_blobs
from .meteorology import Bilinear, Meteorology, make_meteorology, year_fraction
from .pm25 import TileModel, background_time, blob_series
from .presets import STREAM_BACKGROUND, Preset, get_preset, rng
from .sources import Areas, Sources, emission_series, place_sources, radiation_areas
from .scene_store import DayScratch, write_scene
from .terrain import land_fraction, make_dem

@dataclass
class Scene:
    """Everything global about a synthetic scene (small arrays and the 0.1° meteorology)."""

    preset: Preset
    seed: int
    grid: Grid
    met_grid: Grid
    time: np.ndarray
    years: np.ndarray
    year_bounds: list
    dem: np.ndarray
    land: np.ndarray
    cities: Cities
    met: Meteorology
    sources: Sources
    areas: Areas
    emission: np.ndarray          # (n_ihs, n_time) float32, µg m-3
    emission_scale: float
    model: TileModel
    options: object = None       # SceneOptions of a variant (None or default: the preset's scene)

    @property
    def n_time(self) -> int:
        return len(self.time)


def _year_bounds(time) -> tuple[np.ndarray, list]:
    year, _ = year_fraction(time)
    years = np.unique(year)
    starts = np.searchsorted(year, years, side="left")
    ends = np.searchsorted(year, years, side="right")
    return years, [(int(a), int(b)) for a, b in zip(starts, ends)]


def _background_map(grid: Grid, dem: np.ndarray, land: np.ndarray, seed: int, options=None) -> np.ndarray:
    """Regional background level (µg m-3 in 2013 at average season and weather): south-high, cleaner
    mountains and sea, a smooth seeded texture (``options.terrain_edge``: a sharp step down onto the
    mountains)."""
    from .terrain import octave_noise

    lat2d = np.repeat(grid.lat[:, None], grid.nx, axis=1)
    gen = rng(seed, STREAM_BACKGROUND)
    texture = 0.6 * octave_noise(gen, grid.shape, 60.0) + 0.4 * octave_noise(gen, grid.shape, 25.0)
    level = (88.0 * np.exp(-0.12 * (lat2d - 37.5)) * np.exp(-np.clip(dem, 0, None) / 1800.0)
             * (1.0 + 0.10 * texture) * (0.8 + 0.2 * land))
    from .variants import as_options, terrain_factor

    step = terrain_factor(dem, as_options(options))
    if step is not None:
        level = level * step
    return np.clip(level, 5.0, None).astype(np.float32)


def build_scene(preset="tiny", seed: int = 0, options=None) -> Scene:
    """Compute the global parts of a scene (deterministic in ``(preset, seed, options)``).

    ``options``: a :class:`~ihs_hpc.synth.variants.SceneOptions` (or a mapping of its fields) building
    a variant of the preset's scene; unset, the preset's default scene.
    """
    from .variants import as_options, towns_near_sources

    options = as_options(options)
    p = get_preset(preset)
    seed = int(seed)
    grid = p.grid
    met_grid = grid.enclosing(0.1, margin_cells=1)
    time = p.time
    years, bounds = _year_bounds(time)
    dem = make_dem(grid, seed)
    land = land_fraction(grid)
    cities = make_cities(grid, dem, p.cities, p.n_cities, seed)
    blobs = urban_blobs(grid, dem, cities, p.n_towns, seed)
    met = make_meteorology(met_grid, time, seed)
    interp = Bilinear(met_grid, grid)
    sources = place_sources(grid, dem, land, p.n_ihs, years, seed, options)
    blobs = blobs + towns_near_sources(grid, sources, options.towns_near_ihs or 0, seed)
    areas = radiation_areas(grid, dem, sources)
    raw = emission_series(sources, time, met.stagnation, seed, options)
    bg_map = _background_map(grid, dem, land, seed, options)
    bg_time = background_time(time).astype(np.float32)
    blob_amp = np.array([blob_series(b, time) for b in blobs], dtype=np.float32).reshape(len(blobs), len(time))

    # calibration: the period-mean IHS share over the union of the areas ≈ preset.target_ihs_share
    m_src = interp.points(met.ihs_mod, sources.row, sources.col).T.astype(np.float64)  # (n_ihs, time)
    union = areas.count > 0
    mass = sum(float(np.mean(raw[i] * m_src[i])) * float(areas.weight[i].sum(dtype=np.float64))
               for i in range(sources.n))
    truth_mean = mass / max(int(union.sum()), 1)
    a_src = interp.points(met.pm_factor, sources.row, sources.col).mean(axis=1, dtype=np.float64)
    other_mean = float(bg_map[union].mean(dtype=np.float64)) * float(np.mean(bg_time * a_src))
    if blobs:
        from ..grid import haversine_km

        ur, uc = np.nonzero(union)
        for b, blob in enumerate(blobs):
            d = haversine_km(blob.lat, blob.lon, grid.lat[ur], grid.lon[uc])
            g = np.where(d <= 4 * blob.sigma_km, np.exp(-0.5 * (d / blob.sigma_km) ** 2), 0.0)
            other_mean += float(g.mean()) * float(blob_amp[b].mean(dtype=np.float64))
    share = p.target_ihs_share if options.ihs_share is None else float(options.ihs_share)
    scale = share / (1.0 - share) * other_mean / truth_mean if truth_mean > 0 else 1.0
    emission = (raw * scale).astype(np.float32)

    year_of_t = np.concatenate([np.full(b - a, k, dtype=np.int64) for k, (a, b) in enumerate(bounds)])
    model = TileModel(grid=grid, time=time, year_bounds=bounds, seed=seed, bg_map=bg_map, bg_time=bg_time,
                      met=met, interp=interp, blobs=blobs, blob_amp=blob_amp, areas=areas, emission=emission,
                      lat=grid.lat, lon=grid.lon, year_of_t=year_of_t, options=options)
    return Scene(preset=p, seed=seed, grid=grid, met_grid=met_grid, time=time, years=years, year_bounds=bounds,
                 dem=dem, land=land, cities=cities, met=met, sources=sources, areas=areas, emission=emission,
                 emission_scale=float(scale), model=model, options=options)


# ---------------------------------------------------------------------------------------------- entry point
def generate_scene(preset="tiny", out="scene.zarr", seed: int = 0, layout: str = "zarr", tile_size: int | None = None,
                   progress=None, overwrite: bool = False, *, chap_dtype: str = "float32", attrs=None,
                   options=None) -> Path:
    """Generate a synthetic scene with known IHS truth (an observing-system simulation).

    Parameters
    ----------
    preset : {"tiny", "demo", "bth"} or Preset
        ``tiny`` 48 × 64 px, 2019–2021 (unit tests); ``demo`` 128 × 160 px in southern Hebei,
        2012–2021; ``bth`` the Beijing–Tianjin–Hebei box (660 × 630 px), 2012–2021.
    out : path
        ``layout="zarr"``: the store to write (the run's ``cubes.zarr`` layout plus the truth);
        ``layout="files"``: a directory receiving raw files for the ingest path (``chap/``, ``era5/``,
        ``dem.tif``, ``ihs.csv``, ``cities.geojson``) and ``truth.zarr`` (the same store).
    seed : int
        Seed of every random draw; the same seed gives byte-identical stores.
    layout : {"zarr", "files"}
    tile_size : int, optional
        Tile edge (cells); default the preset's. Arrays do not depend on it.
    progress : None, False or callable
        ``None``: a tqdm bar on a terminal, lines in a log (rate, ETA); ``False``: silent; a callable
        ``progress(done, total)`` is
        called with the number of analysis tiles written.
    overwrite : bool
        Replace an existing output. Without it, an unfinished Zarr store of the same scene is resumed
        (finished tiles are kept) and a complete one is an error.
    attrs : mapping, optional
        Extra root attributes of the Zarr store (``layout="zarr"``; a run's fingerprint).
    options : SceneOptions or mapping, optional
        A scene variant (:mod:`ihs_hpc.synth.variants`); unset, the preset's scene byte for byte.
    chap_dtype : {"float32", "uint16"}
        Storage of ``PM2.5`` in the CHAP files (``uint16``: rounded to 1 µg m-3); missing is 65535
        either way, not declared as ``_FillValue`` (it survives CF decoding, as in real files).

    Returns
    -------
    Path of ``out``.
    """
    if layout not in ("zarr", "files"):
        raise ValueError(f"layout must be 'zarr' or 'files', got {layout!r}")
    if chap_dtype not in ("float32", "uint16"):
        raise ValueError(f"chap_dtype must be 'float32' or 'uint16', got {chap_dtype!r}")
    out = Path(out)
    p = get_preset(preset)
    if layout == "zarr":
        if out.exists() and not overwrite and is_complete(out):
            raise StoreError(f"{out} already holds a complete store; pass overwrite=True to replace it")
        scene = build_scene(p, seed, options)
        return write_scene(scene, out, tile_size=tile_size, progress=progress, overwrite=overwrite, attrs=attrs)

    from .writers import write_files

    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; pass overwrite=True to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    scene = build_scene(p, seed, options)
    scratch_dir = out / ".synth_scratch"
    scratch_dir.mkdir(exist_ok=True)
    scratch = DayScratch(scratch_dir / "pm25.f32", (scene.n_time,) + scene.grid.shape)
    try:
        write_scene(scene, out / "truth.zarr", tile_size=tile_size, progress=progress, overwrite=True,
                    chap_scratch=scratch)
        write_files(scene, out, scratch, chap_dtype=chap_dtype, progress=progress)
    finally:
        scratch.close()
        shutil.rmtree(scratch_dir, ignore_errors=True)
    return out
