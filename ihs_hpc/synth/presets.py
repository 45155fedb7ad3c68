"""Scene presets and the seeded random streams every part of the generator draws from.

A preset fixes the grid, the period and the sizes of a scene; the seed fixes every random draw.
Each component draws from its own stream, ``Generator(PCG64(SeedSequence(seed, spawn_key=key)))``,
so adding a component (or drawing more from one) never changes the others, and per-pixel noise is
drawn in fixed 32 × 32 blocks keyed by the block's position — the values at a pixel are the same
whatever the tile size or the order in which tiles are generated.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..grid import BTH_GRID, Grid

#: Version of the generator; bump whenever the same (preset, seed) would give different data.
GENERATOR_VERSION = "1.1"  # 1.1: the scene carries its `urban` settlement-density map

#: Edge (cells) of the fixed blocks in which per-pixel daily noise is drawn.
NOISE_BLOCK = 32

# stream keys (first element of the SeedSequence spawn key); never renumber
STREAM_DEM = 1
STREAM_MET = 2
STREAM_SOURCES = 3
STREAM_EMISSION = 4
STREAM_CITIES = 5
STREAM_NOISE = 6
STREAM_MISSING = 7
STREAM_TRANSPORT = 8
STREAM_BACKGROUND = 9


def rng(seed: int, *key: int) -> np.random.Generator:
    """The generator of one stream: ``Generator(PCG64(SeedSequence(seed, spawn_key=key)))``."""
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))))


@dataclass(frozen=True)
class Preset:
    """What a synthetic scene covers and how big it is.

    Parameters
    ----------
    name : str
        Preset name (recorded in the store's attributes).
    grid : Grid
        The 0.01° analysis grid.
    start, end : str
        First and last day (inclusive, ISO dates, Beijing time).
    n_ihs : int
        Number of industrial heat sources.
    cities : {"voronoi", "bth"}
        ``"voronoi"``: ``n_cities`` synthetic cities tessellating the scene ("City A" …);
        ``"bth"``: the 13 real cities of Beijing–Tianjin–Hebei rasterised from the shared GeoJSON.
    n_cities : int
        Number of synthetic cities (``cities="voronoi"``).
    n_towns : int
        Extra small urban blobs (county seats) on the plain.
    tile_size : int
        Default tile edge (cells).
    target_ihs_share : float
        Period-mean share of IHS PM2.5 in total PM2.5 over the union of IHS areas that the emission
        scale is calibrated to (the seed paper reports ~33 %).
    missing_fraction : float
        Fraction of pixel-days written as missing (65535) in the CHAP files of ``layout="files"``
        (the Zarr layout is always complete).
    description : str
        One line for the store's attributes.
    """

    name: str
    grid: Grid
    start: str
    end: str
    n_ihs: int
    cities: str = "voronoi"
    n_cities: int = 4
    n_towns: int = 4
    tile_size: int = 64
    target_ihs_share: float = 0.30
    missing_fraction: float = 0.0
    description: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.cities not in ("voronoi", "bth"):
            raise ValueError(f"Preset.cities must be 'voronoi' or 'bth', got {self.cities!r}")
        if self.n_ihs < 1:
            raise ValueError(f"Preset.n_ihs must be >= 1, got {self.n_ihs}")
        if not (0.0 < self.target_ihs_share < 0.9):
            raise ValueError(f"Preset.target_ihs_share must be in (0, 0.9), got {self.target_ihs_share}")
        if not (0.0 <= self.missing_fraction < 0.5):
            raise ValueError(f"Preset.missing_fraction must be in [0, 0.5), got {self.missing_fraction}")
        if np.datetime64(self.end) < np.datetime64(self.start):
            raise ValueError(f"Preset end {self.end} is before start {self.start}")
        if abs(self.grid.res - 0.01) > 1e-9:
            raise ValueError(f"synthetic scenes are generated at 0.01°, got res={self.grid.res}")

    @property
    def time(self) -> np.ndarray:
        """Daily time axis (datetime64[ns], Beijing-time days)."""
        return np.arange(np.datetime64(self.start, "D"), np.datetime64(self.end, "D") + 1).astype("datetime64[ns]")

    @property
    def years(self) -> np.ndarray:
        return np.arange(int(self.start[:4]), int(self.end[:4]) + 1)

    def with_(self, **changes) -> "Preset":
        """A copy with some fields changed (e.g. a shorter period for a quick test)."""
        return replace(self, **changes)


PRESETS: dict[str, Preset] = {
    # Taihang front west of Xingtai: mountains in the west, the plain in the east (slope + rough terrain)
    "tiny": Preset(
        name="tiny", grid=Grid(south=36.90, north=37.38, west=114.00, east=114.64),
        start="2019-01-01", end="2021-12-31", n_ihs=8, cities="voronoi", n_cities=3, n_towns=2,
        tile_size=32, missing_fraction=0.002,
        description="tiny synthetic scene (48 x 64 px, 2019-2021) on the Taihang front near Xingtai, for unit tests",
    ),
    # southern Hebei: She County / Wu'an in the Taihang, Handan and Xingtai on the plain, dense industry
    "demo": Preset(
        name="demo", grid=Grid(south=36.10, north=37.38, west=113.60, east=115.20),
        start="2012-01-01", end="2021-12-31", n_ihs=60, cities="bth", n_towns=6,
        tile_size=64, missing_fraction=0.001,
        description="demo synthetic scene (128 x 160 px, 2012-2021) in southern Hebei (Handan, Xingtai)",
    ),
    "bth": Preset(
        name="bth", grid=BTH_GRID, start="2012-01-01", end="2021-12-31", n_ihs=474, cities="bth",
        n_towns=30, tile_size=64, missing_fraction=0.0,
        description="Beijing-Tianjin-Hebei synthetic scene (660 x 630 px, 2012-2021, 474 IHS as in the seed paper)",
    ),
}


def get_preset(preset) -> Preset:
    """A :class:`Preset` from its name (``tiny``, ``demo``, ``bth``) or a Preset itself."""
    if isinstance(preset, Preset):
        return preset
    try:
        return PRESETS[str(preset)]
    except KeyError:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)} or pass a Preset") from None
