"""Cities of a synthetic scene: the ``city_id`` raster, the city table, and the urban PM2.5 blobs.

* ``voronoi``: a few synthetic cities ("City A", "City B", …) tessellating the scene around seeded
  centres on the plain;
* ``bth``: the 13 real prefecture-level units of Beijing–Tianjin–Hebei rasterised (pixel centre
  inside polygon) from the shared GeoJSON; its GCJ-02 offset (~100–700 m) is ignored — for
  synthetic truth it does not matter.

Other anthropogenic PM2.5 (traffic, residential heating, small industry) is a set of Gaussian blobs
around the urban centres and a few towns, each with its own heating-season and weekly cycles and
its own trend, unrelated to the IHS.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..grid import Grid, haversine_km
from ..shared_data import shared_data_file
from .presets import STREAM_CITIES, rng

#: Approximate urban centres (lat, lon) of the 13 BTH cities, by adcode.
BTH_URBAN_CENTRES = {
    110000: (39.904, 116.407), 120000: (39.125, 117.190), 130100: (38.042, 114.515),
    130200: (39.630, 118.180), 130300: (39.935, 119.600), 130400: (36.625, 114.539),
    130500: (37.070, 114.505), 130600: (38.874, 115.465), 130700: (40.769, 114.887),
    130800: (40.952, 117.963), 130900: (38.304, 116.839), 131000: (39.538, 116.684),
    131100: (37.739, 115.671),
}


def shared_cities_path() -> Path:
    """The BTH city polygons, ``$IHS_SHARED_DATA/bth_boundaries/bth_13_cities_cnmaps.geojson``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ihs_hpc.shared_data.SharedDataError
        ``IHS_SHARED_DATA`` is unset or lacks the file.
    """
    return shared_data_file("bth_boundaries/bth_13_cities_cnmaps.geojson",
                            needed_for="the 'bth' city layout (use a preset with cities='voronoi' to do without)")


@dataclass
class Cities:
    """City raster, table and (for ``files`` output) polygons."""

    city_id: np.ndarray      # (ny, nx) int16, -1 = none
    name: np.ndarray         # str, local name
    name_en: np.ndarray      # str
    adcode: np.ndarray       # int32
    centre_lat: np.ndarray   # urban centre
    centre_lon: np.ndarray
    features: list | None    # GeoJSON features of the real city polygons (None: polygonise city_id)

    def geojson(self, grid: Grid) -> dict:
        """FeatureCollection of the city polygons (properties adcode, name, name_en, province)."""
        if self.features is not None:
            return {"type": "FeatureCollection", "features": self.features}
        return _polygonise(grid, self.city_id, self.name, self.name_en, self.adcode)


@dataclass
class UrbanBlob:
    """One town's PM2.5 blob: centre, width, amplitude, heating-season and weekly modulation, trend."""
    lat: float
    lon: float
    sigma_km: float
    amplitude: float        # µg m-3 at the centre, 2013 level
    heating: float          # relative increase in the heating season
    weekly: float           # relative weekday/weekend contrast
    trend: float            # fractional change per year


def _voronoi(grid: Grid, dem: np.ndarray, n: int, seed: int) -> Cities:
    gen = rng(seed, STREAM_CITIES)
    ny, nx = grid.shape
    lat2d, lon2d = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    z = dem.astype(np.float64)
    weight = np.exp(-np.clip(z, 0, None) / 150.0).ravel()
    weight /= weight.sum()
    centres = []
    min_km = 0.35 * np.sqrt(grid.cell_area_km2().sum() / max(n, 1))
    for _ in range(200 * n):
        if len(centres) == n:
            break
        k = int(gen.choice(weight.size, p=weight))
        r, c = divmod(k, nx)
        if all(haversine_km(grid.lat[r], grid.lon[c], grid.lat[r2], grid.lon[c2]) >= min_km for r2, c2 in centres):
            centres.append((r, c))
    while len(centres) < n:  # tiny scenes: accept closer centres
        k = int(gen.integers(weight.size))
        if divmod(k, nx) not in centres:
            centres.append(divmod(k, nx))
    clat = np.array([grid.lat[r] for r, _ in centres])
    clon = np.array([grid.lon[c] for _, c in centres])
    d = np.stack([haversine_km(la, lo, lat2d, lon2d) for la, lo in zip(clat, clon)])
    city_id = np.argmin(d, axis=0).astype(np.int16)
    letters = [chr(ord("A") + i) if i < 26 else f"Z{i}" for i in range(n)]
    names = np.array([f"City {x}" for x in letters], dtype=object)
    adcode = np.array([990100 + 100 * i for i in range(n)], dtype=np.int32)
    return Cities(city_id=city_id, name=names, name_en=names.copy(), adcode=adcode,
                  centre_lat=clat, centre_lon=clon, features=None)


def _polygonise(grid: Grid, city_id, names, names_en, adcode) -> dict:
    """City polygons following pixel edges (rasterising them again gives ``city_id`` back)."""
    from rasterio.features import shapes
    from shapely.geometry import mapping, shape
    from shapely.ops import unary_union

    polys: dict = {}
    for geom, value in shapes(city_id.astype(np.int16), transform=grid.transform):
        if value >= 0:
            polys.setdefault(int(value), []).append(shape(geom))
    features = []
    for i in range(len(names)):
        geom = unary_union(polys.get(i, []))
        features.append({"type": "Feature",
                         "properties": {"adcode": int(adcode[i]), "name": str(names[i]),
                                        "name_en": str(names_en[i]), "province": "Synthetic"},
                         "geometry": mapping(geom)})
    return json.loads(json.dumps({"type": "FeatureCollection", "features": features}))


def _bth(grid: Grid, path: Path | None) -> Cities:
    from rasterio.features import rasterize
    from shapely.geometry import box, shape

    path = shared_cities_path() if path is None else Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"the 'bth' city layout needs the BTH city polygons at {path}; set IHS_SHARED_DATA or use a "
            f"preset with cities='voronoi'"
        )
    collection = json.loads(path.read_text(encoding="utf-8"))
    scene = box(grid.west, grid.south, grid.east, grid.north)
    feats = [f for f in collection["features"] if shape(f["geometry"]).intersects(scene)]
    feats.sort(key=lambda f: int(f["properties"]["adcode"]))
    city_id = rasterize(((f["geometry"], i) for i, f in enumerate(feats)), out_shape=grid.shape,
                        transform=grid.transform, fill=-1, dtype="int16")
    present = [i for i in range(len(feats)) if (city_id == i).any()]
    remap = np.full(len(feats) + 1, -1, dtype=np.int16)
    for new, old in enumerate(present):
        remap[old] = new
    city_id = np.where(city_id >= 0, remap[city_id], -1).astype(np.int16)
    feats = [feats[i] for i in present]
    adcode = np.array([int(f["properties"]["adcode"]) for f in feats], dtype=np.int32)
    centres = [BTH_URBAN_CENTRES.get(int(a), tuple(shape(f["geometry"]).representative_point().coords[0][::-1]))
               for a, f in zip(adcode, feats)]
    return Cities(
        city_id=city_id,
        name=np.array([f["properties"].get("name", "") for f in feats], dtype=object),
        name_en=np.array([f["properties"].get("name_en", "") for f in feats], dtype=object),
        adcode=adcode,
        centre_lat=np.array([c[0] for c in centres]), centre_lon=np.array([c[1] for c in centres]),
        features=feats,
    )


def make_cities(grid: Grid, dem: np.ndarray, kind: str, n: int, seed: int, path=None) -> Cities:
    """City polygons on ``grid``: ``voronoi`` (``n`` seeded cells) or ``bth`` (the shipped BTH boundaries at
    ``path``)."""
    if kind == "voronoi":
        return _voronoi(grid, dem, n, seed)
    if kind == "bth":
        return _bth(grid, path)
    raise ValueError(f"unknown city layout {kind!r}")


def urban_blobs(grid: Grid, dem: np.ndarray, cities: Cities, n_towns: int, seed: int) -> list[UrbanBlob]:
    """Urban PM2.5 sources: one blob per city centre near the scene, plus towns on the plain."""
    gen = rng(seed, STREAM_CITIES, 1)
    blobs = []
    pad = 0.3
    for la, lo in zip(cities.centre_lat, cities.centre_lon):
        inside = (grid.south - pad <= la <= grid.north + pad) and (grid.west - pad <= lo <= grid.east + pad)
        draw = (gen.uniform(6.0, 11.0), gen.uniform(14.0, 26.0), gen.uniform(0.2, 0.5),
                gen.uniform(0.04, 0.10), gen.uniform(-0.07, -0.03))
        if inside:
            blobs.append(UrbanBlob(float(la), float(lo), *draw))
    z = dem.astype(np.float64)
    weight = np.exp(-np.clip(z, 0, None) / 100.0).ravel()
    weight /= weight.sum()
    picks = gen.choice(weight.size, size=n_towns, replace=True, p=weight)
    for k in picks:
        r, c = divmod(int(k), grid.nx)
        blobs.append(UrbanBlob(float(grid.lat[r]), float(grid.lon[c]), gen.uniform(2.0, 4.0),
                               gen.uniform(5.0, 12.0), gen.uniform(0.2, 0.6), gen.uniform(0.02, 0.08),
                               gen.uniform(-0.06, -0.02)))
    return blobs


def settlement_density(grid: Grid, blobs: list[UrbanBlob]) -> np.ndarray:
    """The scene's urban covariate (``urban``): a settlement-density index, the stand-in for the built-up or
    population density raster a real run ingests (``input.files.urban``).

    Each town and city is a Gaussian of its own width whose peak is that width in km (a larger
    settlement is both wider and denser), summed: ``Σ_b σ_b exp(−d_b² / 2σ_b²)``. It knows where the
    settlements are and how large, never how much PM2.5 they emit (their amplitudes and cycles).
    """
    from ..grid import haversine_km

    lat2 = np.repeat(grid.lat[:, None], grid.nx, axis=1)
    lon2 = np.repeat(grid.lon[None, :], grid.ny, axis=0)
    out = np.zeros(grid.shape, dtype=np.float64)
    for blob in blobs:
        d = haversine_km(blob.lat, blob.lon, lat2, lon2)
        out += np.where(d <= 4 * blob.sigma_km, blob.sigma_km * np.exp(-0.5 * (d / blob.sigma_km) ** 2), 0.0)
    return out.astype(np.float32)
