"""GCJ-02 ("Mars coordinates") ↔ WGS84, for Chinese map data (AMap/Gaode, Tencent, cnmaps ...).

Chinese web maps publish coordinates shifted by the GCJ-02 obfuscation (≈ 100–700 m in Beijing–
Tianjin–Hebei) while labelling them WGS84. The forward shift below is the public-domain formula of the
``eviltransform`` project (googollee/eviltransform) with Krasovsky's semi-major axis 6378245 m, which
reproduces its reference test vectors exactly (some ports use 6378137 m: that changes the shift by
1.7e-5 of itself, < 1.2 cm).

Accuracy
--------
* :func:`wgs84_to_gcj02` *is* the definition (no error of its own); it reproduces eviltransform's
  reference values (Shanghai, Shenzhen, Beijing) to 1e-12°.
* :func:`gcj02_to_wgs84` inverts it by fixed-point iteration ``w ← w − (f(w) − g)``, started from the
  one-step approximation. The shift varies slowly (its gradient is ≈ 1e-4), so the error shrinks
  ≈ 1e4-fold per step; iteration stops when every point's forward image matches the input to ``tol``
  (default 1e-7° ≈ 1 cm), which takes 2–3 steps. What remains is the error of the GCJ-02 model itself
  against the real obfuscation (the formula is the real one; AMap's data are rounded to 1e-6°, 0.1 m).
* Points outside the rough China box of eviltransform (lon 72.004–137.8347, lat 0.8293–55.8271) are
  returned unchanged, as every implementation does.

All functions are vectorised over numpy arrays and take ``(lon, lat)`` in that order (x, y), like
shapely and GeoJSON.
"""
from __future__ import annotations

import numpy as np

#: Semi-major axis (m, Krasovsky 1940) and first eccentricity squared of the GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323


def out_of_china(lon, lat) -> np.ndarray:
    """True where eviltransform applies no shift (outside its rough China box)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    return ~((lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271))


def _transform(x, y):
    xy = x * y
    abs_x = np.sqrt(np.abs(x))
    x_pi = x * np.pi
    y_pi = y * np.pi
    d = 20.0 * np.sin(6.0 * x_pi) + 20.0 * np.sin(2.0 * x_pi)
    lat = d + 20.0 * np.sin(y_pi) + 40.0 * np.sin(y_pi / 3.0)
    lng = d + 20.0 * np.sin(x_pi) + 40.0 * np.sin(x_pi / 3.0)
    lat = lat + 160.0 * np.sin(y_pi / 12.0) + 320.0 * np.sin(y_pi / 30.0)
    lng = lng + 150.0 * np.sin(x_pi / 12.0) + 300.0 * np.sin(x_pi / 30.0)
    lat = lat * (2.0 / 3.0) + (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * xy + 0.2 * abs_x)
    lng = lng * (2.0 / 3.0) + (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * xy + 0.1 * abs_x)
    return lat, lng


def gcj02_offset(lon, lat):
    """The GCJ-02 shift ``(dlon, dlat)`` in degrees at WGS84 points (zero outside China)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    dlat, dlng = _transform(lon - 105.0, lat - 35.0)
    rad = np.radians(lat)
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlng = (dlng * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    outside = out_of_china(lon, lat)
    return np.where(outside, 0.0, dlng), np.where(outside, 0.0, dlat)


def wgs84_to_gcj02(lon, lat):
    """WGS84 → GCJ-02 (the forward obfuscation), ``(lon, lat)`` in degrees, vectorised."""
    dlon, dlat = gcj02_offset(lon, lat)
    return np.asarray(lon, dtype=np.float64) + dlon, np.asarray(lat, dtype=np.float64) + dlat


def gcj02_to_wgs84(lon, lat, *, tol: float = 1e-7, max_iter: int = 30):
    """GCJ-02 → WGS84 by fixed-point iteration, to ``tol`` degrees (default 1e-7° ≈ 1 cm).

    Raises ``RuntimeError`` if some point has not converged after ``max_iter`` steps (it does in
    2–3 steps everywhere in China).
    """
    g_lon = np.asarray(lon, dtype=np.float64)
    g_lat = np.asarray(lat, dtype=np.float64)
    dlon, dlat = gcj02_offset(g_lon, g_lat)
    w_lon, w_lat = g_lon - dlon, g_lat - dlat
    for _ in range(max_iter):
        f_lon, f_lat = wgs84_to_gcj02(w_lon, w_lat)
        e_lon, e_lat = f_lon - g_lon, f_lat - g_lat
        err = np.maximum(np.abs(e_lon), np.abs(e_lat))
        if not np.any(err >= tol):  # NaN-safe: NaN points stay NaN and do not block convergence
            return w_lon, w_lat
        w_lon, w_lat = w_lon - e_lon, w_lat - e_lat
    raise RuntimeError(f"GCJ-02 inversion did not converge to {tol:g}° in {max_iter} steps")


def _shapely_func(fn):
    def apply(coords: np.ndarray) -> np.ndarray:
        x, y = fn(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return apply


def geometry_gcj02_to_wgs84(geometry):
    """A shapely geometry (or array of them) with every vertex moved from GCJ-02 to WGS84."""
    import shapely

    return shapely.transform(geometry, _shapely_func(gcj02_to_wgs84))


def geometry_wgs84_to_gcj02(geometry):
    """A shapely geometry (or array of them) with every vertex moved from WGS84 to GCJ-02."""
    import shapely

    return shapely.transform(geometry, _shapely_func(wgs84_to_gcj02))
