"""Synthetic industrial heat sources: where they are, when they run, how much they emit, where it goes.

* Sources cluster on the plain (low elevation, the south weighted up), as steel, coke and cement works
  do around Tangshan, Handan and Xingtai; each has an id (``IHS0001``), a name, a category and
  operating years — most run throughout, some close mid-period, a few open late.
* The daily emission strength (µg m-3 at the source pixel under reference meteorology) has a winter
  high, a multi-year decline with the policy steps of 2014–15 and 2017–18, random shutdown spells of
  days to weeks, heavy-pollution-day curtailments from 2017, a source-specific day-to-day jitter,
  and is exactly zero outside the operating years.
* The plume of a source covers its radiation area — the pixels reached by growing downhill from the
  source (:func:`ihs_hpc.ops.region_grow.region_grow`, at most 10 km) — with weight exp(−d/L).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..grid import Grid, haversine_km
from .meteorology import ar1_filter, winter_phase, year_fraction
from .presets import STREAM_EMISSION, STREAM_SOURCES, rng

#: Categories, their share of sources and the median emission strength relative to the mean.
CATEGORIES = {
    "steel": (0.30, 1.6),
    "coke": (0.15, 1.3),
    "cement": (0.25, 0.9),
    "power": (0.20, 0.8),
    "refinery": (0.10, 0.7),
}
_NAME_WORDS = {
    "steel": "Iron and Steel Works",
    "coke": "Coking Plant",
    "cement": "Cement Plant",
    "power": "Thermal Power Plant",
    "refinery": "Petrochemical Refinery",
}

#: Annual emission level of the IHS fleet relative to 2013 (policy steps in 2014–15 and 2017–18,
#: after the seed paper's fig. 8); outside 2012–2021 the level changes by -8 %/yr.
EMISSION_TREND = {2012: 0.93, 2013: 1.00, 2014: 0.97, 2015: 0.81, 2016: 0.78, 2017: 0.72,
                  2018: 0.58, 2019: 0.55, 2020: 0.50, 2021: 0.44}

#: Maximum impact distance of a radiation area (km), seed 000 §2.3.2.
MAX_KM = 10.0


def annual_anchor(table: dict, rate: float, years: np.ndarray) -> np.ndarray:
    """Values of an annual anchor table for any years (extrapolated geometrically by ``rate``)."""
    lo, hi = min(table), max(table)
    out = []
    for y in np.asarray(years, dtype=int):
        if y < lo:
            out.append(table[lo] * (1 + rate) ** (y - lo))
        elif y > hi:
            out.append(table[hi] * (1 + rate) ** (y - hi))
        else:
            out.append(table[y])
    return np.asarray(out, dtype=np.float64)


def smooth_annual(table: dict, rate: float, time) -> np.ndarray:
    """Daily values interpolated linearly between mid-year anchors."""
    year, f = year_fraction(time)
    tt = year + f
    years = np.arange(year.min() - 1, year.max() + 2)
    return np.interp(tt, years + 0.5, annual_anchor(table, rate, years))


@dataclass
class Sources:
    """The IHS table of a scene (arrays on the ``ihs`` dim) and their daily emissions."""

    ids: np.ndarray          # str
    names: np.ndarray        # str
    category: np.ndarray     # str
    lat: np.ndarray          # float64, the point (inside its pixel)
    lon: np.ndarray
    row: np.ndarray          # int32
    col: np.ndarray
    start_year: np.ndarray   # int32
    end_year: np.ndarray
    decay_km: np.ndarray     # float64, e-folding distance of the plume weight
    strength: np.ndarray     # float64, relative strength (before calibration)

    @property
    def n(self) -> int:
        return len(self.ids)

    def operating(self, years) -> np.ndarray:
        """(n_ihs, n_years) bool."""
        y = np.asarray(years)[None, :]
        return (y >= self.start_year[:, None]) & (y <= self.end_year[:, None])


def place_sources(grid: Grid, dem: np.ndarray, land: np.ndarray, n: int, years, seed: int, options=None) -> Sources:
    """Seeded source placement: clusters on the plain, the south favoured, one source per pixel.

    ``options`` (:class:`~ihs_hpc.synth.variants.SceneOptions`): ``dense_clusters``, ``strength_spread``
    and ``start_stop_fraction`` change the placement, strengths and operating years.
    """
    from .variants import as_options

    options = as_options(options)
    gen = rng(seed, STREAM_SOURCES)
    ny, nx = grid.shape
    lat2d, lon2d = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    margin = 3
    ok = np.zeros(grid.shape, dtype=bool)
    ok[margin:ny - margin, margin:nx - margin] = True
    z = dem.astype(np.float64)
    plain = ok & (land > 0.9) & (z < 250.0)
    if plain.sum() < n:  # a scene without enough plain: take the lowest pixels
        cut = np.partition(z[ok].ravel(), min(n * 20, ok.sum() - 1))[min(n * 20, ok.sum() - 1)]
        plain = ok & (z <= cut)
    weight = np.where(plain, np.exp(-np.clip(z, 0, None) / 120.0) * np.exp(-0.35 * (lat2d - grid.south)), 0.0)
    weight = weight.ravel() / weight.sum()
    if options.dense_clusters:
        n_clusters = max(1, int(round(n / 20)))
        centres = gen.choice(weight.size, size=n_clusters, replace=False, p=weight)
        cluster_sigma_km = gen.uniform(1.0, 2.5, size=n_clusters)
    else:
        n_clusters = max(2, int(round(n / 7)))
        centres = gen.choice(weight.size, size=n_clusters, replace=False, p=weight)
        cluster_sigma_km = gen.uniform(3.0, 9.0, size=n_clusters)
    taken = np.zeros(grid.size, dtype=bool)
    chosen = []
    attempts = 0
    while len(chosen) < n and attempts < 200 * n:
        attempts += 1
        k = gen.integers(n_clusters)
        r0, c0 = divmod(int(centres[k]), nx)
        dr, dc = gen.normal(0.0, cluster_sigma_km[k], size=2) / (grid.res * 111.2)
        r = int(round(r0 + dr))
        c = int(round(c0 + dc / np.cos(np.radians(grid.lat[min(max(r0, 0), ny - 1)]))))
        if not (0 <= r < ny and 0 <= c < nx) or not plain[r, c]:
            continue
        # at least 1.5 km from other sources
        r_lo, r_hi, c_lo, c_hi = max(r - 1, 0), min(r + 2, ny), max(c - 1, 0), min(c + 2, nx)
        if taken.reshape(ny, nx)[r_lo:r_hi, c_lo:c_hi].any():
            continue
        taken[r * nx + c] = True
        chosen.append((r, c))
    if len(chosen) < n:
        # fill from the weight map directly (always possible on a grid with enough plain pixels)
        free = np.flatnonzero(~taken & (weight > 0))
        extra = gen.choice(free, size=n - len(chosen), replace=False, p=weight[free] / weight[free].sum())
        chosen += [divmod(int(e), nx) for e in extra]
    rows = np.array([rc[0] for rc in chosen], dtype=np.int32)
    cols = np.array([rc[1] for rc in chosen], dtype=np.int32)
    # the point lies inside its pixel, not on the centre
    jitter = gen.uniform(-0.4, 0.4, size=(n, 2)) * grid.res
    lat = np.round(grid.lat[rows] + jitter[:, 0], 5)
    lon = np.round(grid.lon[cols] + jitter[:, 1], 5)

    cats = list(CATEGORIES)
    p_cat = np.array([CATEGORIES[c][0] for c in cats])
    category = np.array(gen.choice(cats, size=n, p=p_cat / p_cat.sum()), dtype=object)
    spread = 0.35 if options.strength_spread is None else float(options.strength_spread)
    strength = np.array([CATEGORIES[c][1] for c in category]) * gen.lognormal(0.0, spread, size=n)
    decay_km = 3.5 * gen.lognormal(0.0, 0.2, size=n)

    years = np.asarray(years, dtype=int)
    y0, y1 = int(years[0]), int(years[-1])
    start = np.full(n, y0, dtype=np.int32)
    end = np.full(n, y1, dtype=np.int32)
    u = gen.uniform(size=n)
    n_years = y1 - y0 + 1
    if n_years >= 2:
        if options.start_stop_fraction is None:
            p_close, p_change = 0.22, 0.32
        else:
            p_change = float(options.start_stop_fraction)
            p_close = p_change * 0.22 / 0.32
        closing = u < p_close
        opening = (u >= p_close) & (u < p_change)
        # small scenes: at least one closing and one late-opening source (never the same one)
        if n >= 3 and not closing.any():
            closing[np.flatnonzero(~opening)[0]] = True
        if n >= 3 and not opening.any():
            opening[np.flatnonzero(~closing)[0]] = True
        lo_end, hi_end = (y0 + 1, y1 - 1) if n_years >= 4 else (y0, y1 - 1)
        end[closing] = gen.integers(lo_end, hi_end + 1, size=closing.sum())
        lo_start, hi_start = (y0 + 2, y1 - 1) if n_years >= 5 else (y0 + 1, y1)
        start[opening] = gen.integers(lo_start, hi_start + 1, size=opening.sum())
    counters: dict = {}
    names = []
    for c in category:
        counters[c] = counters.get(c, 0) + 1
        names.append(f"Synthetic {_NAME_WORDS[c]} No. {counters[c]}")
    ids = np.array([f"IHS{i + 1:04d}" for i in range(n)], dtype=object)
    return Sources(ids=ids, names=np.array(names, dtype=object), category=category.astype(object),
                   lat=lat, lon=lon, row=rows, col=cols, start_year=start, end_year=end,
                   decay_km=decay_km, strength=strength)


def emission_series(sources: Sources, time, stagnation: np.ndarray, seed: int, options=None) -> np.ndarray:
    """Daily relative emission of every source, (n_ihs, n_time) float64, zero outside operating years.

    Mean about 1 for a source of unit strength over a full 2013 (scaled later by the calibration).
    ``options``: ``ihs_season``/``ihs_season_amplitude`` set the seasonal cycle, ``emission_jitter``
    the day-to-day variability.
    """
    from .variants import as_options, emission_season

    options = as_options(options)
    time = np.asarray(time, dtype="datetime64[D]")
    n_t = len(time)
    year, f = year_fraction(time)
    trend = smooth_annual(EMISSION_TREND, -0.08, time)
    if options.ihs_season is None and options.ihs_season_amplitude is None:
        season = 1.0 + 0.25 * winter_phase(f)
    else:
        season = emission_season(f, options)
    out = np.empty((sources.n, n_t), dtype=np.float64)
    # heavy-pollution alerts: stagnant days of the heating season, from 2017
    month = (time.astype("datetime64[M]").astype(np.int64) % 12) + 1
    heating = (month >= 11) | (month <= 3)
    thr = np.quantile(stagnation, 0.85) if n_t else 0.0
    alert = heating & (year >= 2017) & (stagnation > thr)
    covid = (time >= np.datetime64("2020-01-24")) & (time <= np.datetime64("2020-03-10"))
    years_u = np.unique(year)
    jitter = np.empty((n_t, sources.n))
    for i in range(sources.n):
        gen = rng(seed, STREAM_EMISSION, i)
        # source-specific annual wobble around the fleet trend
        wobble = gen.lognormal(0.0, 0.08, size=len(years_u))[np.searchsorted(years_u, year)]
        jitter[:, i] = gen.standard_normal(n_t)
        # shutdown spells: maintenance (off) or curtailment, days to weeks
        n_spells = gen.poisson(2.5 * n_t / 365.25)
        starts = gen.integers(0, max(n_t, 1), size=n_spells)
        lengths = np.clip(np.round(gen.exponential(8.0, size=n_spells)) + 2, 2, 45).astype(int)
        levels = np.where(gen.uniform(size=n_spells) < 0.35, 0.0, gen.uniform(0.2, 0.6, size=n_spells))
        spell = np.ones(n_t)
        for s0, ln, lv in zip(starts, lengths, levels):
            spell[s0:s0 + ln] = np.minimum(spell[s0:s0 + ln], lv)
        complies = gen.uniform() < 0.8
        curtail = np.where(alert & complies, gen.uniform(0.5, 0.8), 1.0)
        lockdown = np.where(covid, gen.uniform(0.4, 1.0), 1.0)
        operating = (year >= sources.start_year[i]) & (year <= sources.end_year[i])
        out[i] = sources.strength[i] * trend * season * wobble * spell * curtail * lockdown * operating
    # day-to-day jitter: AR(1) with a 5-day memory, log-normal
    ar1_filter(jitter, float(np.exp(-1 / 5.0)))
    sigma = 0.12 if options.emission_jitter is None else float(options.emission_jitter)
    out *= np.exp(sigma * jitter.T - 0.5 * sigma**2)
    return out


@dataclass
class Areas:
    """Radiation areas of all sources and the plume weights on them."""

    members: list            # sorted flat indices per source
    count: np.ndarray        # (ny, nx) int16, number of areas covering each pixel
    weight: list             # float32 exp(-d/L) per member, per source
    rows: list               # member rows per source (int32)
    cols: list               # member cols per source (int32)

    def bbox(self, i):
        return self.rows[i].min(), self.rows[i].max(), self.cols[i].min(), self.cols[i].max()


def radiation_areas(grid: Grid, dem: np.ndarray, sources: Sources, max_km: float = MAX_KM) -> Areas:
    """Each source's downhill area (``ihs_hpc.ops.region_grow``) and exp(-d/L) weights on it."""
    from ..ops.region_grow import region_grow

    seeds = np.column_stack([sources.row, sources.col]).astype(np.int64)
    result = region_grow(dem, grid.lat, grid.lon, seeds, max_km=max_km)
    nx = grid.nx
    weights, rows, cols = [], [], []
    for i, m in enumerate(result.members):
        r, c = np.divmod(np.asarray(m, dtype=np.int64), nx)
        d = haversine_km(grid.lat[sources.row[i]], grid.lon[sources.col[i]], grid.lat[r], grid.lon[c])
        weights.append(np.exp(-d / sources.decay_km[i]).astype(np.float32))
        rows.append(r.astype(np.int32))
        cols.append(c.astype(np.int32))
    members = [np.asarray(m, dtype=np.int64) for m in result.members]
    return Areas(members=members, count=result.count.astype(np.int16), weight=weights, rows=rows, cols=cols)
