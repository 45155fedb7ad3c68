"""The PM2.5 model of a synthetic scene, evaluated one tile at a time.

For pixel p and day t::

    other(t, p) = B(p) · S(t) · R(t) · F(t, p) + U(t, p)
    pm25(t, p)  = max(1, other(t, p) + ε·sqrt((σ·other)² + a²)) + IHS(t, p)
    IHS(t, p)   = Σ_i E_i(t) · exp(−d_ip / L_i) · M(t, p)      over the sources whose area holds p

* ``B`` regional background level (south-high gradient, cleaner mountains), ``S`` its seasonal
  cycle (winter high), ``R`` its multi-year decline (~6 %/yr after 2013);
* ``F`` the meteorological factor (1 + m)·exp(transport), m linear in RH, wind speed, temperature
  and rain, interpolated bilinearly from the 0.1° met grid (:mod:`.meteorology`);
* ``U`` other anthropogenic (urban) PM2.5: blobs around city centres and towns with their own
  heating-season, weekly and trend cycles (:mod:`.cities`);
* ε iid N(0, 1) per pixel-day (retrieval noise, σ = 8 %, a = 1.5 µg m-3), drawn in fixed 32 × 32-pixel
  blocks;
* ``IHS`` the truth (:mod:`.sources`): zero outside the radiation areas and outside operating years,
  ``M`` the plume modulation by wind and rain.

The noise acts on the non-IHS part only, so ``pm25 − IHS`` is exactly what the air would hold without
the sources (up to the floor of 1 µg m-3) and ``pm25 ≥ IHS + 1`` (to float rounding).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..grid import Grid, haversine_km
from .cities import UrbanBlob
from .meteorology import Bilinear, Meteorology, winter_phase, year_fraction
from .presets import NOISE_BLOCK, STREAM_MISSING, STREAM_NOISE, rng
from .sources import Areas, smooth_annual

#: Retrieval noise of the non-IHS part: N(0, (σ·v)² + a²), σ relative, a in µg m-3.
NOISE_MULT = 0.08
NOISE_ADD = 1.5
#: Floor of the non-IHS PM2.5 (µg m-3).
PM25_FLOOR = 1.0

#: Regional background level relative to 2013 (a slight rise 2012→2013, then ~6 %/yr down).
BACKGROUND_TREND = {2012: 0.97, **{y: 0.94 ** (y - 2013) for y in range(2013, 2022)}}


def background_time(time) -> np.ndarray:
    """S(t)·R(t): seasonal cycle (winter high) times the multi-year decline, (n_time,) float64."""
    _, f = year_fraction(time)
    season = 1.0 + 0.42 * winter_phase(f) + 0.05 * np.cos(4.0 * np.pi * (f - 0.04))
    return season * smooth_annual(BACKGROUND_TREND, -0.06, time)


def blob_series(blob: UrbanBlob, time) -> np.ndarray:
    """Amplitude of one urban blob per day (µg m-3 at its centre)."""
    t = np.asarray(time, dtype="datetime64[D]")
    year, f = year_fraction(t)
    month = (t.astype("datetime64[M]").astype(np.int64) % 12) + 1
    day = (t - t.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    heating = (month <= 2) | (month == 12) | ((month == 11) & (day >= 15)) | ((month == 3) & (day <= 15))
    dow = (t.astype(np.int64) + 3) % 7  # 0 = Monday
    weekly = np.where(dow < 5, 1.0 + blob.weekly, 1.0 - 2.5 * blob.weekly)
    return blob.amplitude * (1.0 + blob.heating * heating) * weekly * (1.0 + blob.trend) ** (year + f - 2013.5)


@dataclass
class TileModel:
    """Everything a tile needs (global, small, or on the 0.1° grid) to compute its PM2.5 and truth."""

    grid: Grid
    time: np.ndarray
    year_bounds: list            # [(t0, t1)] per year
    seed: int
    bg_map: np.ndarray           # (ny, nx) float32
    bg_time: np.ndarray          # (n_time,) float32
    met: Meteorology
    interp: Bilinear
    blobs: list                  # UrbanBlob
    blob_amp: np.ndarray         # (n_blobs, n_time) float32
    areas: Areas
    emission: np.ndarray         # (n_ihs, n_time) float32, µg m-3 at the source pixel (calibrated)
    lat: np.ndarray              # (ny,) float64
    lon: np.ndarray              # (nx,)
    year_of_t: np.ndarray        # (n_time,) int64, index of each day's year
    options: object = None       # SceneOptions of a variant (observation effects applied per tile)

    @property
    def n_time(self) -> int:
        return len(self.time)


def noise_blocks(seed: int, stream: int, n_time: int, rows: slice, cols: slice, kind: str = "normal", n: int = 1):
    """Per-pixel daily noise for ``[rows, cols]`` from fixed 32 × 32 blocks: (n, n_time, r, c) float32.

    The values at a pixel depend only on ``(seed, stream, pixel)``, never on the tile.
    """
    b = NOISE_BLOCK
    r0, r1, c0, c1 = rows.start, rows.stop, cols.start, cols.stop
    out = np.empty((n, n_time, r1 - r0, c1 - c0), dtype=np.float32)
    for by in range(r0 // b, (r1 - 1) // b + 1):
        for bx in range(c0 // b, (c1 - 1) // b + 1):
            gen = rng(seed, stream, by, bx)
            if kind == "normal":
                block = gen.standard_normal((n, n_time, b, b), dtype=np.float32)
            else:
                block = gen.random((n, n_time, b, b), dtype=np.float32)
            ra, rb = max(r0, by * b), min(r1, (by + 1) * b)
            ca, cb = max(c0, bx * b), min(c1, (bx + 1) * b)
            out[:, :, ra - r0:rb - r0, ca - c0:cb - c0] = block[:, :, ra - by * b:rb - by * b, ca - bx * b:cb - bx * b]
    return out


def missing_mask(seed: int, n_time: int, rows: slice, cols: slice, fraction: float) -> np.ndarray:
    """Pixel-days to write as missing in the CHAP files, (n_time, r, c) bool."""
    if fraction <= 0:
        return np.zeros((n_time, rows.stop - rows.start, cols.stop - cols.start), dtype=bool)
    return noise_blocks(seed, STREAM_MISSING, n_time, rows, cols, kind="uniform")[0] < fraction


def year_sums(arr: np.ndarray, year_of_t: np.ndarray, n_years: int) -> np.ndarray:
    """Sums over each year's days along axis 0 in float64, strictly in time order per element:
    ``(n_years,) + arr.shape[1:]``. The order of additions is the same for every element, so the sums of
    a pixel do not depend on the tile it arrived in."""
    from ._kernels import year_sums as _year_sums

    arr = np.ascontiguousarray(arr)
    return _year_sums(arr, year_of_t, n_years).reshape((n_years,) + arr.shape[1:])


def compute_tile(model: TileModel, rows: slice, cols: slice):
    """PM2.5 and IHS truth of one tile.

    Returns ``(pm25, truth, own)``: two (n_time, r, c) float32 arrays and, per source with members in
    the tile, ``(i, positions in the source's member list, (n_years, k) float64 annual sums of the
    source's own contribution)``.
    """
    from . import _kernels

    n_t = model.n_time
    r0, c0 = rows.start, cols.start
    nr, nc = rows.stop - r0, cols.stop - c0
    interp = model.interp
    iy, wy, ix, wx = interp.iy[rows], interp.wy[rows], interp.ix[cols], interp.wx[cols]
    # urban blobs reaching the tile (a blob's weight is exactly 0 beyond 4 sigma)
    lat = model.lat[rows][:, None]
    lon = model.lon[cols][None, :]
    shapes, amps = [], []
    for b, blob in enumerate(model.blobs):
        reach = 4.0 * blob.sigma_km
        d = haversine_km(blob.lat, blob.lon, lat, lon)
        if d.min() > reach:
            continue
        shapes.append(np.where(d <= reach, np.exp(-0.5 * (d / blob.sigma_km) ** 2), 0.0).astype(np.float32))
        amps.append(model.blob_amp[b])
    blob_g = np.array(shapes, dtype=np.float32).reshape(len(shapes), nr, nc)
    blob_amp = np.array(amps, dtype=np.float32).reshape(len(amps), n_t)
    eps = noise_blocks(model.seed, STREAM_NOISE, n_t, rows, cols)[0]
    pm25 = np.empty((n_t, nr, nc), dtype=np.float32)
    _kernels.other_pm25(model.met.pm_factor, iy, wy, ix, wx, model.bg_time, np.ascontiguousarray(model.bg_map[rows, cols]),
                        blob_g, blob_amp, eps, NOISE_MULT, NOISE_ADD, PM25_FLOOR, pm25)
    del eps
    # the truth: IHS plumes over their radiation areas
    truth = np.zeros((n_t, nr, nc), dtype=np.float32)
    own = []
    areas = model.areas
    n_years = len(model.year_bounds)
    for i in range(len(areas.members)):
        rr, cc = areas.rows[i], areas.cols[i]
        if rr.size == 0 or rr.max() < r0 or rr.min() >= rows.stop or cc.max() < c0 or cc.min() >= cols.stop:
            continue
        sel = np.flatnonzero((rr >= r0) & (rr < rows.stop) & (cc >= c0) & (cc < cols.stop))
        if sel.size == 0:
            continue
        sums = np.zeros((n_years, sel.size), dtype=np.float64)
        _kernels.add_plume(model.emission[i], areas.weight[i][sel], (rr[sel] - r0).astype(np.int64),
                           (cc[sel] - c0).astype(np.int64), model.met.ihs_mod, iy, wy, ix, wx,
                           model.year_of_t, truth, sums)
        own.append((i, sel, sums))
    pm25 += truth
    if model.options is not None and not model.options.is_default:
        from .variants import observe

        observe(pm25, model.options, model.seed, rows, cols)
    return pm25, truth, own
