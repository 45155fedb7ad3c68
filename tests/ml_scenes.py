"""Small in-memory scenes for the U-ConvLSTM tests: smooth fields with known IHS areas."""
import numpy as np


def small_scene(seed: int = 0, ny: int = 48, nx: int = 64, days_per_year: int = 30, years=(2019, 2020, 2021),
                holes: str = "year"):
    """A :class:`ihs_hpc.ml.data.Scene` of a smooth moving field plus noise, with 5 blob-shaped IHS areas."""
    from ihs_hpc.ml.data import Scene
    from ihs_hpc.ml.holes import hole_shapes

    rng = np.random.default_rng(seed)
    n_days = days_per_year * len(years)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    t = np.arange(n_days)[:, None, None]
    values = (60 + 0.4 * yy + 10 * np.sin(xx / 9 + t / 7) + 8 * np.cos(yy / 11 - t / 5)
              + rng.normal(0, 1.0, (n_days, ny, nx))).astype(np.float32)
    members, union = [], np.zeros((ny, nx), dtype=bool)
    centres = [(8, 10), (30, 14), (20, 40), (38, 52), (10, 56)]
    for r, c in centres:
        blob = (yy - r) ** 2 / 16 + (xx - c) ** 2 / 25 <= 1
        members.append(np.flatnonzero(blob.ravel()))
        union |= blob
    offsets = np.concatenate([[0], np.cumsum([m.size for m in members])])
    # source 4 operates only from the second year on
    year_holes = np.stack([union.copy() for _ in years])
    if holes == "year":
        first = np.zeros((ny, nx), dtype=bool)
        first.ravel()[members[4]] = True
        others = np.zeros((ny, nx), dtype=bool)
        for m in members[:4]:
            others.ravel()[m] = True
        year_holes[0] = others
    dem = 100 + 5 * xx - 2 * yy
    lat = 37.0 - 0.01 * np.arange(ny)
    lon = 114.0 + 0.01 * np.arange(nx)
    return Scene(values=values, day_year=np.repeat(np.arange(len(years)), days_per_year),
                 years=np.asarray(years), year_holes=year_holes, ihs_union=union, dem=dem,
                 shapes=hole_shapes(offsets, np.concatenate(members), nx), lat=lat, lon=lon)
