"""Synthetic daily ERA5-like meteorology on the native 0.1° grid.

Every variable is a climatology (seasonal harmonics, latitude, elevation) plus weather: spatially
smooth Gaussian random fields (Gaussian-weighted sums of iid lattice values at ~0.3–2° scales) that
are AR(1) in time with a memory of a few days.  The whole (time, met_lat, met_lon) cube is small
(0.1° is 100× coarser than the analysis grid) and is computed at once.

Variables and units follow the run's input store: ``t2m``, ``d2m`` (K, d2m ≤ t2m), ``rh`` (%, Magnus
formula from t2m and d2m), ``tp`` (m, daily total, ≥ 0, intermittent), ``sp`` (Pa, from elevation),
``u10``, ``v10`` (m s-1; north-westerly winter monsoon, southerly summer flow).

Two derived fields feed the PM2.5 model (both smooth functions of the met fields, interpolated to
1 km per tile): ``pm_factor`` = (1 + m)·exp(transport noise), the multiplier of the regional
background, with ``m`` linear in RH, wind speed, temperature and rain (stagnant humid days are
polluted); and ``ihs_mod``, the dilution of IHS plumes (lower with strong wind and rain).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..grid import Grid
from ..ops.interp import axis_weights
from .presets import STREAM_MET, STREAM_TRANSPORT, rng
from .terrain import base_elevation

#: Variables written to the store, in order, with (units, long_name, standard_name).
MET_VARIABLES = {
    "t2m": ("K", "2 metre temperature (daily mean)", "air_temperature"),
    "d2m": ("K", "2 metre dew point temperature (daily mean)", "dew_point_temperature"),
    "rh": ("%", "relative humidity from t2m and d2m (Magnus formula)", "relative_humidity"),
    "tp": ("m", "total precipitation (daily total)", "lwe_thickness_of_precipitation_amount"),
    "sp": ("Pa", "surface pressure (daily mean)", "surface_air_pressure"),
    "u10": ("m s-1", "10 metre U wind component (daily mean)", "eastward_wind"),
    "v10": ("m s-1", "10 metre V wind component (daily mean)", "northward_wind"),
}

# coefficients of the dew-point depression climatology (K): ~9 in January, 13-14 in April,
# 3.5 in July, 7 in October (North China Plain)
_D_COEF = (8.125, 1.9175, 3.5896, -2.1397)


def year_fraction(time) -> tuple[np.ndarray, np.ndarray]:
    """``(year, f)`` of each day: f in [0, 1) is the fraction of its year at the day's middle."""
    t = np.asarray(time, dtype="datetime64[D]")
    years = t.astype("datetime64[Y]")
    start = years.astype("datetime64[D]")
    length = ((years + 1).astype("datetime64[D]") - start).astype(np.float64)
    f = ((t - start).astype(np.float64) + 0.5) / length
    return years.astype(np.int64) + 1970, f


def winter_phase(f) -> np.ndarray:
    """cos of the annual cycle peaking in mid-January (+1) and mid-July (-1)."""
    return np.cos(2.0 * np.pi * (np.asarray(f) - 0.04))


def _axis_kernel(centres: np.ndarray, scale: float):
    """Gaussian weights (n_centres, n_nodes) from lattice nodes ``scale`` apart, unit sum of squares."""
    lo, hi = centres.min() - 2.5 * scale, centres.max() + 2.5 * scale
    nodes = np.arange(lo, hi + scale, scale)
    w = np.exp(-0.5 * ((centres[:, None] - nodes[None, :]) / (0.6 * scale)) ** 2)
    w /= np.sqrt((w**2).sum(axis=1, keepdims=True))
    return w


def ar1_filter(e: np.ndarray, phi: float) -> np.ndarray:
    """Stationary unit-variance AR(1) along axis 0 from iid N(0, 1) innovations ``e`` (in place):
    x0 = e0, x_t = phi·x_{t-1} + sqrt(1 - phi²)·e_t."""
    if phi <= 0 or len(e) == 0:
        return e
    b = np.sqrt(1.0 - phi**2)
    for t in range(1, len(e)):
        e[t] *= b
        e[t] += phi * e[t - 1]
    return e


def smooth_ar1_noise(gen: np.random.Generator, n_time: int, grid: Grid, scales, tau_days: float) -> np.ndarray:
    """Unit-variance random field (n_time, ny, nx), spatially smooth, AR(1) in time.

    ``scales``: sequence of ``(scale_deg, weight)``; the components are independent Gaussian random
    fields with correlation length ~``scale_deg``, summed with the given weights and renormalised.
    ``tau_days``: e-folding memory of the AR(1) process (phi = exp(-1/tau)).
    """
    phi = float(np.exp(-1.0 / tau_days)) if tau_days > 0 else 0.0
    total_w = float(np.sqrt(sum(w**2 for _, w in scales)))
    out = np.zeros((grid.ny, n_time, grid.nx), dtype=np.float32)  # (y, t, x): GEMM-friendly
    for scale, weight in scales:
        wy = _axis_kernel(grid.lat, scale)
        wx = _axis_kernel(grid.lon, scale)
        e = gen.standard_normal((n_time, wy.shape[1], wx.shape[1]))
        e = ar1_filter(e, phi)
        e = np.ascontiguousarray(e.transpose(1, 0, 2), dtype=np.float32)  # (k, t, l)
        a = (e.reshape(-1, e.shape[2]) @ (wx.T * (weight / total_w)).astype(np.float32))
        a = a.reshape(wy.shape[1], n_time * grid.nx)
        out += (wy.astype(np.float32) @ a).reshape(grid.ny, n_time, grid.nx)
    return np.ascontiguousarray(out.transpose(1, 0, 2))


def magnus_rh(t2m, d2m):
    """Relative humidity (%) from temperature and dew point in K (Magnus, Alduchov & Eskridge 1996)."""
    try:
        from ..ops.humidity import relative_humidity
    except ImportError:  # pragma: no cover - the op is part of the package
        t = np.asarray(t2m, dtype=np.float64) - 273.15
        td = np.asarray(d2m, dtype=np.float64) - 273.15
        rh = 100.0 * np.exp(17.625 * td / (243.04 + td) - 17.625 * t / (243.04 + t))
        return np.clip(rh, 0.0, 100.0).astype(np.result_type(np.asarray(t2m).dtype, np.float32))
    return relative_humidity(t2m, d2m, units="K")


@dataclass
class Meteorology:
    """Daily meteorology of a scene on its native grid."""

    grid: Grid
    time: np.ndarray
    fields: dict            # name -> (time, ny, nx) float32, the store's variables
    pm_factor: np.ndarray   # (time, ny, nx) float32, multiplier of the regional background PM2.5
    ihs_mod: np.ndarray     # (time, ny, nx) float32, modulation of the IHS plumes
    stagnation: np.ndarray  # (time,) float64, scene-mean met index m (heavy-pollution alerts)


def make_meteorology(met_grid: Grid, time, seed: int, dem_path=None) -> Meteorology:
    """All met fields of a scene (deterministic in ``(met_grid, time, seed)``)."""
    from scipy.special import ndtri

    n = len(time)
    year, f = year_fraction(time)
    # float32 throughout: the cubes are (time, met_ny, met_nx) and memory-bound
    tau = (year + f - 2017.0)[:, None, None].astype(np.float32)
    f3 = f[:, None, None].astype(np.float32)
    c1 = winter_phase(f3).astype(np.float32)
    s1 = np.sin(2.0 * np.pi * f3).astype(np.float32)
    lat2d, lon2d = np.meshgrid(met_grid.lat, met_grid.lon, indexing="ij")
    z, _ = base_elevation(lat2d, lon2d, dem_path)
    z = z.astype(np.float32)
    zc = np.clip(z, 0.0, None)[None]
    dlat = (lat2d - 38.0)[None].astype(np.float32)

    # one stream per variable, so adding or changing one never moves the others
    def noise(key, scales, tau_days):
        return smooth_ar1_noise(rng(seed, STREAM_MET, key), n, met_grid, scales, tau_days)

    a_t = noise(1, ((1.5, 1.0), (0.4, 0.45)), 4.0)
    a_d = noise(2, ((1.2, 1.0), (0.3, 0.5)), 2.5)
    a_p = noise(3, ((0.8, 1.0), (0.25, 0.7)), 1.2)
    a_s = noise(4, ((2.0, 1.0), (0.8, 0.4)), 3.0)
    a_u = noise(5, ((1.5, 1.0), (0.4, 0.5)), 2.5)
    a_v = noise(6, ((1.5, 1.0), (0.4, 0.5)), 2.5)

    # temperature: ~-3 °C in January, ~27 °C in July on the plain at 38 °N; lapse rate 6.2 K/km
    t2m = (273.15 + 13.0 - 0.75 * dlat - 0.0062 * zc - (15.0 + 0.8 * dlat) * c1 + 0.02 * tau
           + (3.0 + 0.8 * c1) * a_t)

    # precipitation: a latent field thresholded at the seasonal occurrence probability
    p_occ = 0.05 + 0.33 * np.exp(-(((f3 - 0.56) / 0.11) ** 2)) + 0.04 * np.exp(-(((f3 - 0.35) / 0.10) ** 2))
    q = ndtri(1.0 - p_occ)
    mean_mm = 2.5 + 11.0 * np.exp(-(((f3 - 0.56) / 0.10) ** 2))
    excess = np.clip(a_p - q, 0.0, None)
    tp_mm = mean_mm * (excess / 0.45) ** 1.3 * (1.0 + 0.25 * np.clip(zc / 1000.0, 0.0, 1.0))
    wet = tp_mm > 0.0
    tp = tp_mm / 1000.0

    # dew point: a positive depression, smaller on wet days
    d_clim = (_D_COEF[0] + _D_COEF[1] * np.cos(2 * np.pi * f3) + _D_COEF[2] * s1
              + _D_COEF[3] * np.cos(4 * np.pi * f3))
    depression = d_clim * np.exp(0.3 * np.clip(a_d, -2.5, 2.5) - 0.045) * np.where(wet, 0.4, 1.0) + 0.2
    d2m = t2m - depression

    # surface pressure: barometric with elevation, Siberian high in winter, synoptic anomalies
    sp = 101325.0 * np.exp(-z[None] / 8434.0) * (1.0 + 0.0085 * c1) + 650.0 * a_s

    # wind: north-westerly winter monsoon, southerly summer flow, windier on the mountains
    kz = 1.0 + 0.4 * np.clip(zc / 1000.0, 0.0, 1.5)
    u10 = (0.9 + 1.3 * c1 + 1.8 * a_u) * kz
    v10 = (0.2 - 1.6 * c1 + 1.8 * a_v) * kz
    del a_t, a_d, a_p, a_u, a_v, a_s, excess

    f32 = lambda a: np.ascontiguousarray(np.broadcast_to(a, (n, met_grid.ny, met_grid.nx)), dtype=np.float32)  # noqa: E731
    fields = {"t2m": f32(t2m), "d2m": f32(d2m)}
    fields["rh"] = np.asarray(magnus_rh(fields["t2m"], fields["d2m"]), dtype=np.float32)
    fields.update(tp=f32(tp), sp=f32(sp), u10=f32(u10), v10=f32(v10))
    del t2m, d2m, sp, u10, v10, tp

    ws = np.hypot(fields["u10"], fields["v10"])
    rh = fields["rh"]
    rain = np.minimum(tp_mm, 25.0)
    # the meteorological part of PM2.5: linear in the met fields, clipped to a physical range
    m = 0.011 * (rh - 55.0) - 0.13 * (ws - 2.5) - 0.007 * (fields["t2m"] - 285.0) - 0.012 * rain
    m = np.clip(m, -0.65, 1.6)
    stagnation = m.mean(axis=(1, 2), dtype=np.float64)
    transport = smooth_ar1_noise(rng(seed, STREAM_TRANSPORT), n, met_grid, ((0.7, 1.0),), 2.0)
    pm_factor = (1.0 + m) * np.exp(0.16 * transport - 0.5 * 0.16**2)
    ihs_mod = np.clip(np.exp(-0.22 * (ws - 2.5) - 0.08 * rain) * (1.0 + 0.004 * (rh - 55.0)), 0.15, 3.0)
    return Meteorology(
        grid=met_grid, time=np.asarray(time), fields=fields,
        pm_factor=pm_factor.astype(np.float32), ihs_mod=ihs_mod.astype(np.float32),
        stagnation=stagnation,
    )


class Bilinear:
    """Bilinear interpolation from the met grid to the analysis grid: for every analysis row (col) the
    index of the met row (col) above (left) and the weight of the one below (right), from
    :func:`ihs_hpc.ops.interp.axis_weights` (stored as float32, the precision of the tile kernels).

    The tile kernels (:mod:`._kernels`) interpolate each pixel from its own four met neighbours, so a
    pixel's value is bit-identical whatever the tile that holds it; :meth:`points` is the same float32
    arithmetic in numpy, for single pixels.
    """

    def __init__(self, met_grid: Grid, grid: Grid):
        self.iy, self.wy = self._axis(met_grid.lat, grid.lat, "latitude")
        self.ix, self.wx = self._axis(met_grid.lon, grid.lon, "longitude")

    @staticmethod
    def _axis(src, dst, name):
        left, weight = axis_weights(src, dst, name=name)
        return left, weight.astype(np.float32)

    def points(self, field: np.ndarray, rows, cols) -> np.ndarray:
        """``field`` at single pixels: (time, n_points) float32."""
        rows = np.asarray(rows)
        cols = np.asarray(cols)
        iy, wy = self.iy[rows], self.wy[rows]
        ix, wx = self.ix[cols], self.wx[cols]
        one = np.float32(1.0)
        left = field[:, iy, ix] * (one - wy) + field[:, iy + 1, ix] * wy
        right = field[:, iy, ix + 1] * (one - wy) + field[:, iy + 1, ix + 1] * wy
        return left * (one - wx) + right * wx
