"""Scene variants: options that build a synthetic scene differently from the presets' defaults.

Every score of the pipeline against known truth is measured on scenes from this generator, whose
default choices (additive noise, winter-peaking sources, smooth backgrounds) the pipeline was built
against. :class:`SceneOptions` changes those choices one at a time, so a score matrix over variants
(``benchmarks/bench_truth_matrix.py``) shows where the method holds and where it does not:

=====================  ================================================================================
option                 effect (unset: the preset's default generator, byte for byte)
=====================  ================================================================================
``ihs_season``         seasonal phase of the IHS emission, independent of the weather: ``winter`` (the
                       default shape, peak mid-January), ``summer`` (peak mid-July), ``none``
``ihs_season_amplitude``  relative amplitude of that cycle (default 0.25)
``emission_jitter``    day-to-day variability of each source's emission (log-normal AR(1) σ, default 0.12)
``noise``              ``additive`` (default: retrieval noise on the non-IHS part) or ``multiplicative``
                       (also a log-normal factor, σ = ``noise_sigma``, on the whole observed PM2.5)
``noise_sigma``        σ of the multiplicative factor (default 0.15)
``spikes``             fraction of pixel-days turned into isolated spikes (× 3–6 of the observed value)
``towns_near_ihs``     extra towns (urban PM2.5 blobs, other human sources) 2–6 km from IHS sources
``terrain_edge``       background lower by this fraction on the mountains, with a sharp step (~1 km)
                       along the terrain edge (the 300 m contour)
``dense_clusters``     sources packed in few tight clusters (σ 1–2.5 km): many overlapping areas
``strength_spread``    σ of the log-normal source strength (default 0.35): strong and weak sources
``start_stop_fraction``  fraction of sources that start or stop within the record (default 0.32)
``ihs_share``          period-mean IHS share of PM2.5 in the IHS areas the emissions are scaled to
=====================  ================================================================================

The observed ``pm25`` is what a retrieval would give; ``pm25_ihs_true`` stays what the sources add to
the air. Extra random draws come from their own streams (:data:`STREAM_VARIANT`), so an unset option
never moves any other draw.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

#: stream key of the variants' extra draws (second key element: which option)
STREAM_VARIANT = 10
_NOISE, _SPIKES, _TOWNS = 1, 2, 3

SEASON_PHASES = ("winter", "summer", "none")
NOISE_KINDS = ("additive", "multiplicative")


@dataclass(frozen=True)
class SceneOptions:
    """Options of a scene variant; ``None`` everywhere is the preset's default scene."""

    ihs_season: str | None = None
    ihs_season_amplitude: float | None = None
    emission_jitter: float | None = None
    noise: str | None = None
    noise_sigma: float | None = None
    spikes: float | None = None
    towns_near_ihs: int | None = None
    terrain_edge: float | None = None
    dense_clusters: bool | None = None
    strength_spread: float | None = None
    start_stop_fraction: float | None = None
    ihs_share: float | None = None

    def __post_init__(self):
        checks = {
            "ihs_season": lambda v: v in SEASON_PHASES,
            "ihs_season_amplitude": lambda v: 0.0 <= v < 1.0,
            "emission_jitter": lambda v: 0.0 <= v <= 2.0,
            "noise": lambda v: v in NOISE_KINDS,
            "noise_sigma": lambda v: 0.0 <= v <= 1.0,
            "spikes": lambda v: 0.0 <= v <= 0.2,
            "towns_near_ihs": lambda v: isinstance(v, (int, np.integer)) and 0 <= v <= 1000,
            "terrain_edge": lambda v: 0.0 <= v < 1.0,
            "dense_clusters": lambda v: isinstance(v, (bool, np.bool_)),
            "strength_spread": lambda v: 0.0 <= v <= 3.0,
            "start_stop_fraction": lambda v: 0.0 <= v <= 1.0,
            "ihs_share": lambda v: 0.0 < v < 0.9,
        }
        ranges = {"ihs_season": f"one of {SEASON_PHASES}", "ihs_season_amplitude": "in [0, 1)",
                  "emission_jitter": "in [0, 2]", "noise": f"one of {NOISE_KINDS}", "noise_sigma": "in [0, 1]",
                  "spikes": "in [0, 0.2]", "towns_near_ihs": "an integer in [0, 1000]", "terrain_edge": "in [0, 1)",
                  "dense_clusters": "true or false", "strength_spread": "in [0, 3]",
                  "start_stop_fraction": "in [0, 1]", "ihs_share": "in (0, 0.9)"}
        for name, ok in checks.items():
            value = getattr(self, name)
            if value is None:
                continue
            try:
                good = bool(ok(value))
            except TypeError:
                good = False
            if not good:
                raise ValueError(f"scene option {name} must be {ranges[name]}, got {value!r}")

    @classmethod
    def from_mapping(cls, mapping) -> "SceneOptions":
        """Options from a mapping (e.g. ``input.synthetic`` of a run); unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(mapping or {}).items() if k in names and v is not None})

    def set(self) -> dict:
        """The options that are set (the scene's record of how it differs from the default)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def is_default(self) -> bool:
        return not self.set()


DEFAULT = SceneOptions()


def as_options(options) -> SceneOptions:
    """``options`` (None, a mapping or :class:`SceneOptions`) as :class:`SceneOptions`."""
    if options is None:
        return DEFAULT
    if isinstance(options, SceneOptions):
        return options
    return SceneOptions.from_mapping(options)


# ---------------------------------------------------------------------------------------------- effects
def emission_season(f: np.ndarray, options: SceneOptions) -> np.ndarray:
    """Relative seasonal factor of the IHS emission at year fraction ``f``."""
    from .meteorology import winter_phase

    amplitude = 0.25 if options.ihs_season_amplitude is None else float(options.ihs_season_amplitude)
    phase = options.ihs_season or "winter"
    if phase == "none":
        return np.ones_like(np.asarray(f, dtype=np.float64))
    sign = 1.0 if phase == "winter" else -1.0
    return 1.0 + sign * amplitude * winter_phase(f)


def terrain_factor(dem: np.ndarray, options: SceneOptions) -> np.ndarray | None:
    """Multiplier of the background level: 1 on the plain, ``1 - terrain_edge`` on the mountains, a
    logistic step ~1 km wide along the 300 m contour (None when unset)."""
    if not options.terrain_edge:
        return None
    z = np.asarray(dem, dtype=np.float64)
    step = 1.0 / (1.0 + np.exp(-(z - 300.0) / 25.0))
    return 1.0 - float(options.terrain_edge) * step


def observe(pm25: np.ndarray, options: SceneOptions, seed: int, rows: slice, cols: slice) -> None:
    """Turn the true PM2.5 of a tile into the observed one in place (multiplicative noise, spikes)."""
    from .pm25 import noise_blocks

    n_t = pm25.shape[0]
    if options.noise == "multiplicative":
        sigma = 0.15 if options.noise_sigma is None else float(options.noise_sigma)
        eps = noise_blocks(seed, STREAM_VARIANT * 100 + _NOISE, n_t, rows, cols)[0]
        pm25 *= np.exp(sigma * eps - 0.5 * sigma * sigma).astype(np.float32)
    if options.spikes:
        u = noise_blocks(seed, STREAM_VARIANT * 100 + _SPIKES, n_t, rows, cols, kind="uniform", n=2)
        spike = u[0] < float(options.spikes)
        pm25[spike] *= (3.0 + 3.0 * u[1][spike]).astype(np.float32)


def towns_near_sources(grid, sources, n: int, seed: int) -> list:
    """``n`` towns (urban blobs) placed 2–6 km from randomly chosen IHS sources and ≥ 2 km from every source.

    A placement closer than 2 km to another source is drawn again (up to 100 times, then kept)."""
    from ..grid import haversine_km
    from .cities import UrbanBlob
    from .presets import rng

    if not n:
        return []
    gen = rng(seed, STREAM_VARIANT, _TOWNS)
    out = []
    for _ in range(int(n)):
        for _attempt in range(100):
            i = int(gen.integers(sources.n))
            dist, angle = gen.uniform(2.0, 6.0), gen.uniform(0.0, 2.0 * np.pi)
            lat = float(sources.lat[i] + dist * np.cos(angle) / 111.2)
            lon = float(sources.lon[i] + dist * np.sin(angle) / (111.2 * np.cos(np.radians(sources.lat[i]))))
            if np.min(haversine_km(lat, lon, sources.lat, sources.lon)) >= 2.0:
                break
        out.append(UrbanBlob(lat, lon, gen.uniform(2.0, 4.0), gen.uniform(8.0, 18.0), gen.uniform(0.2, 0.6),
                             gen.uniform(0.02, 0.08), gen.uniform(-0.06, -0.02)))
    return out
