import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ihs_hpc.grid import BTH_GRID, EARTH_RADIUS_KM, Grid, haversine_km


def independent_haversine(lat1, lon1, lat2, lon2):
    """Textbook haversine with the math module, one pair at a time."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def test_bth_grid_shape_and_centres():
    assert BTH_GRID.shape == (660, 630)
    assert BTH_GRID.lat[0] == pytest.approx(42.595)
    assert BTH_GRID.lat[-1] == pytest.approx(36.005)
    assert BTH_GRID.lon[0] == pytest.approx(113.505)
    assert np.all(np.diff(BTH_GRID.lat) < 0)


def test_distances_match_independent_haversine():
    g = Grid(36.0, 36.3, 114.0, 114.4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        r, c = rng.integers(0, g.ny), rng.integers(0, g.nx)
        d = g.distance_km(r, c)
        for _ in range(5):
            r2, c2 = rng.integers(0, g.ny), rng.integers(0, g.nx)
            ref = independent_haversine(g.lat[r], g.lon[c], g.lat[r2], g.lon[c2])
            assert d[r2, c2] == pytest.approx(ref, rel=1e-12, abs=1e-12)
    assert haversine_km(0.0, 0.0, 0.0, 1.0) == pytest.approx(2 * math.pi * EARTH_RADIUS_KM / 360, rel=1e-12)


def test_cell_areas_sum_to_spherical_band():
    g = Grid(36.0, 37.0, 114.0, 115.0, res=0.01)
    band = EARTH_RADIUS_KM**2 * math.radians(1.0) * (math.sin(math.radians(37)) - math.sin(math.radians(36)))
    assert g.cell_area_km2().sum() == pytest.approx(band, rel=1e-10)
    # a 0.01° cell near 36.5 °N is about 1.11 km × 0.89 km
    assert g.cell_area_km2()[50, 0] == pytest.approx(1.1119 * 1.1119 * math.cos(math.radians(36.495)), rel=1e-3)


@settings(max_examples=60, deadline=None)
@given(ny=st.integers(1, 90), nx=st.integers(1, 90), ty=st.integers(1, 40), tx=st.integers(1, 40))
def test_tiles_cover_the_grid_exactly_once(ny, nx, ty, tx):
    g = Grid(30.0, 30.0 + ny * 0.01, 110.0, 110.0 + nx * 0.01)
    assert g.shape == (ny, nx)
    cover = np.zeros(g.shape, dtype=int)
    tiles = g.tiles((ty, tx))
    for t in tiles:
        cover[t.rows, t.cols] += 1
        assert 1 <= t.shape[0] <= ty and 1 <= t.shape[1] <= tx
    assert np.all(cover == 1)
    assert [t.id for t in tiles] == list(range(len(tiles)))
    assert len({t.name for t in tiles}) == len(tiles)


def test_cf_round_trip_through_xarray_and_zarr(tmp_path):
    import xarray as xr

    g = Grid(36.0, 36.48, 113.5, 114.14)
    ds = g.to_dataset()
    assert ds.lat.attrs["units"] == "degrees_north" and ds.lon.attrs["standard_name"] == "longitude"
    assert ds.crs.attrs["grid_mapping_name"] == "latitude_longitude"
    ds.to_zarr(tmp_path / "g.zarr", zarr_format=3, consolidated=False)
    back = xr.open_zarr(tmp_path / "g.zarr", consolidated=False)
    assert Grid.from_dataset(back) == g
    # either latitude order rebuilds the same grid
    assert Grid.from_coords(g.lat[::-1], g.lon) == g


def test_index_of_and_errors():
    g = Grid(36.0, 36.5, 114.0, 114.5)
    rows, cols = g.index_of([36.499, 36.001], [114.001, 114.499])
    assert rows.tolist() == [0, 49] and cols.tolist() == [0, 49]
    with pytest.raises(ValueError, match="outside the grid"):
        g.index_of([40.0], [114.2])
    with pytest.raises(ValueError, match="whole number"):
        Grid(36.0, 36.005, 114.0, 114.5)
    with pytest.raises(ValueError, match="south < north"):
        Grid(37.0, 36.0, 114.0, 114.5)


def test_enclosing_met_grid_covers_with_margin():
    met = BTH_GRID.enclosing(0.1, margin_cells=1)
    assert met.res == 0.1
    assert met.south <= BTH_GRID.south - 0.1 + 1e-9 and met.north >= BTH_GRID.north + 0.1 - 1e-9
    assert met.west <= BTH_GRID.west - 0.1 + 1e-9 and met.east >= BTH_GRID.east + 0.1 - 1e-9
    assert met.shape == (68, 65)
