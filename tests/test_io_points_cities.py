"""IHS points (CSV / GeoJSON / Shapefile, status tables), city polygons and the GCJ-02 conversion."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import shapely

from ihs_hpc.grid import Grid, haversine_km
from ihs_hpc.io.cities import read_cities, read_city_polygons
from ihs_hpc.io.errors import IngestError, IngestWarning
from ihs_hpc.io.gcj02 import gcj02_to_wgs84, wgs84_to_gcj02
from ihs_hpc.io.ihs_points import read_ihs

pytestmark = pytest.mark.filterwarnings("ignore:.*no operating status")

GRID = Grid(38.0, 40.0, 115.0, 117.0, 0.01)
YEARS = range(2012, 2016)

# ---------------------------------------------------------------------------------------------- GCJ-02


@pytest.mark.parametrize("wgs,gcj", [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),      # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),      # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),      # Beijing
])
def test_gcj02_reference_vectors(wgs, gcj):
    """eviltransform's published test vectors."""
    lon, lat = wgs84_to_gcj02(*wgs)
    assert lon == pytest.approx(gcj[0], abs=1e-9) and lat == pytest.approx(gcj[1], abs=1e-9)
    back = gcj02_to_wgs84(*gcj)
    assert back[0] == pytest.approx(wgs[0], abs=1e-7) and back[1] == pytest.approx(wgs[1], abs=1e-7)


def test_gcj02_inverse_accuracy_and_outside_china():
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(74, 135, 20000), rng.uniform(18, 53, 20000)
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    w_lon, w_lat = gcj02_to_wgs84(g_lon, g_lat)
    assert np.abs(w_lon - lon).max() < 1e-7 and np.abs(w_lat - lat).max() < 1e-7
    shift_m = haversine_km(lat, lon, g_lat, g_lon) * 1000
    assert shift_m.min() > 0 and shift_m.max() < 1000
    assert wgs84_to_gcj02(139.69, 35.69) == (139.69, 35.69)  # Tokyo: unchanged


# ---------------------------------------------------------------------------------------------- IHS


def write_csv(path, rows, columns):
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def test_ihs_csv_aliases_and_start_end_years(tmp_path):
    path = write_csv(tmp_path / "ihs.csv", [
        ["A1", 115.505, 39.505, "Steel A", "steel", 2012, ""],
        ["B2", 116.001, 38.999, "Cement B", "cement", 2014, 2014],
        ["C3", 116.999, 39.999, "Coke C", "coke", "", 2013],
    ], ["ID", "Longitude", "Latitude", "name", "type", "start_year", "end_year"])
    ds = read_ihs(path, GRID, YEARS)
    assert list(ds.ihs_id.values) == ["A1", "B2", "C3"]
    assert list(ds.ihs_name.values) == ["Steel A", "Cement B", "Coke C"]
    assert list(ds.ihs_category.values) == ["steel", "cement", "coke"]
    np.testing.assert_array_equal(ds.ihs_row.values, [49, 100, 0])
    np.testing.assert_array_equal(ds.ihs_col.values, [50, 100, 199])
    assert ds.ihs_row.dtype == np.int32 and ds.ihs_lat.dtype == np.float64
    np.testing.assert_array_equal(ds.year.values, [2012, 2013, 2014, 2015])
    np.testing.assert_array_equal(ds.ihs_operating.values, [[1, 1, 1, 1], [0, 0, 1, 0], [1, 1, 0, 0]])
    assert ds.ihs_operating.dims == ("ihs", "year") and ds.ihs_operating.dtype == bool


def test_ihs_configurable_columns_and_gb18030(tmp_path):
    path = tmp_path / "ihs_gbk.csv"
    pd.DataFrame({"编号": [7, 8], "经度": [115.5, 116.5], "纬度": [39.5, 38.5], "名称": ["邯郸钢铁", "唐山焦化"],
                  "opened": [2013, 2012]}).to_csv(path, index=False, encoding="gb18030")
    ds = read_ihs(path, GRID, YEARS, start_col="opened")
    assert list(ds.ihs_id.values) == ["7", "8"] and list(ds.ihs_name.values) == ["邯郸钢铁", "唐山焦化"]
    np.testing.assert_array_equal(ds.ihs_operating.values, [[0, 1, 1, 1], [1, 1, 1, 1]])
    with pytest.raises(IngestError, match=r"no longitude column 'lng_wgs'; the columns are"):
        read_ihs(path, GRID, YEARS, lon_col="lng_wgs")


def write_geojson(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": {"type": "Point", "coordinates": list(xy)}}
        for xy, props in features]}))
    return path


def test_ihs_geojson_with_long_status_table(tmp_path):
    pts = write_geojson(tmp_path / "ihs.geojson", [
        ((115.2, 39.8), {"ihs_id": "x1", "name": "one", "category": "steel"}),
        ((116.7, 38.3), {"ihs_id": "x2", "name": "two", "category": "glass"}),
    ])
    status = write_csv(tmp_path / "status.csv", [
        ["x1", 2012, 1], ["x1", 2013, 0], ["x1", 2014, "yes"], ["x1", 2015, "false"],
        ["x2", 2012, 1], ["x2", 2013, 1], ["x2", 2014, 1], ["x2", 2015, 1], ["x2", 2020, 0],
    ], ["ihs_id", "year", "operating"])
    ds = read_ihs(pts, GRID, YEARS, status=status)
    np.testing.assert_array_equal(ds.ihs_operating.values, [[1, 0, 1, 0], [1, 1, 1, 1]])
    np.testing.assert_allclose(ds.ihs_lon.values, [115.2, 116.7])
    np.testing.assert_array_equal(ds.ihs_row.values, [20, 170])


def test_status_missing_years_warn_or_error(tmp_path):
    pts = write_csv(tmp_path / "ihs.csv", [["a", 115.5, 39.5], ["b", 116.5, 38.5]], ["id", "lon", "lat"])
    status = write_csv(tmp_path / "status.csv", [["a", 2012], ["a", 2013], ["a", 2014], ["a", 2015], ["b", 2013]],
                       ["ihs_id", "year"])
    with pytest.warns(IngestWarning, match=r"b: 2012, 2014, 2015.*not operating"):
        ds = read_ihs(pts, GRID, YEARS, status=status)
    np.testing.assert_array_equal(ds.ihs_operating.values, [[1, 1, 1, 1], [0, 1, 0, 0]])
    with pytest.raises(IngestError, match="years without a status row") as info:
        read_ihs(pts, GRID, YEARS, status=status, missing_years="error")
    assert info.value.ihs_id == "b"
    unknown = write_csv(tmp_path / "s2.csv", [["a", 2012, 1], ["zz", 2012, 1]], ["ihs_id", "year", "operating"])
    with pytest.raises(IngestError, match="not in the IHS file") as info:
        read_ihs(pts, GRID, YEARS, status=unknown)
    assert info.value.ihs_id == "zz"


def test_swapped_lon_lat_suggests_the_swap(tmp_path):
    path = write_csv(tmp_path / "ihs.csv", [["ok", 115.5, 39.5], ["swapped", 39.2, 116.1]], ["id", "lon", "lat"])
    with pytest.raises(IngestError, match="look exchanged") as info:
        read_ihs(path, GRID, YEARS)
    assert info.value.ihs_id == "swapped"


def test_outside_grid_error_or_drop(tmp_path):
    path = write_csv(tmp_path / "ihs.csv", [["in", 115.5, 39.5], ["far", 120.0, 30.0]], ["id", "lon", "lat"])
    with pytest.raises(IngestError, match="outside the grid") as info:
        read_ihs(path, GRID, YEARS)
    assert info.value.ihs_id == "far" and info.value.path == str(path)
    with pytest.warns(IngestWarning, match="'far'"):
        ds = read_ihs(path, GRID, YEARS, outside="drop")
    assert list(ds.ihs_id.values) == ["in"]


def test_duplicate_ids_and_missing_coordinates(tmp_path):
    path = write_csv(tmp_path / "ihs.csv", [["d", 115.5, 39.5], ["e", 115.6, 39.5], ["d", 116.0, 39.0]],
                     ["id", "lon", "lat"])
    with pytest.raises(IngestError, match=r"duplicate IHS id\(s\) \['d'\]") as info:
        read_ihs(path, GRID, YEARS)
    assert info.value.ihs_id == "d"
    path = write_csv(tmp_path / "ihs2.csv", [["d", 115.5, 39.5], ["nolat", 115.6, ""]], ["id", "lon", "lat"])
    with pytest.raises(IngestError, match="missing or non-numeric coordinate") as info:
        read_ihs(path, GRID, YEARS)
    assert info.value.ihs_id == "nolat"


def test_dem_nodata_warning_names_the_ihs(tmp_path):
    path = write_csv(tmp_path / "ihs.csv", [["dry", 115.5, 39.5], ["wet", 116.5, 38.5]], ["id", "lon", "lat"])
    dem = np.full(GRID.shape, 100.0, dtype=np.float32)
    r, c = GRID.index_of(38.5, 116.5)
    dem[r, c] = np.nan
    with pytest.warns(IngestWarning, match=r"1 IHS lie on DEM nodata cells \('wet'\)"):
        read_ihs(path, GRID, YEARS, dem=dem)


def test_shapefile_polygons_and_gcj02_points(tmp_path):
    import geopandas as gpd

    centre = (116.0, 39.0)
    poly = shapely.Point(centre).buffer(0.002)
    gpd.GeoDataFrame({"ihs_id": ["p1"], "category": ["power"]}, geometry=[poly], crs="EPSG:4326").to_file(tmp_path / "ihs.shp")
    ds = read_ihs(tmp_path / "ihs.shp", GRID, YEARS)
    assert ds.ihs_lon.values[0] == pytest.approx(116.0, abs=1e-6) and ds.ihs_category.values[0] == "power"
    g_lon, g_lat = wgs84_to_gcj02(*centre)
    gcj = write_geojson(tmp_path / "gcj.geojson", [((float(g_lon), float(g_lat)), {"id": "g"})])
    ds = read_ihs(gcj, GRID, YEARS, crs_offset="gcj02")
    assert ds.ihs_lon.values[0] == pytest.approx(116.0, abs=1e-7) and ds.ihs_lat.values[0] == pytest.approx(39.0, abs=1e-7)


# ---------------------------------------------------------------------------------------------- cities
BTH_CITIES = "bth_boundaries/bth_13_cities_cnmaps.geojson"


def test_real_bth_cities_on_a_coarse_grid(shared_data):
    grid = Grid(35.9, 42.7, 113.4, 119.9, 0.05)
    ds = read_cities(shared_data / BTH_CITIES, grid)
    assert ds.city_id.dtype == np.int16 and ds.city_id.dims == ("lat", "lon")
    assert ds.sizes["city"] == 13 and set(np.unique(ds.city_id.values)) == set(range(-1, 13))
    assert list(ds.city_name_en.values[:3]) == ["Beijing", "Tianjin", "Shijiazhuang"]
    assert ds.city_name.values[0] == "北京市" and int(ds.city_adcode.values[5]) == 130400
    assert (ds.city_cells.values > 100).all()
    area = float((grid.cell_area_km2() * (ds.city_id.values >= 0)).sum())
    assert area == pytest.approx(216_872, rel=0.01)
    names = list(ds.city_name_en.values)
    for lat, lon, name in ((39.9087, 116.3975, "Beijing"), (39.13, 117.20, "Tianjin"), (38.04, 114.51, "Shijiazhuang"),
                           (36.61, 114.49, "Handan"), (40.97, 117.94, "Chengde")):
        r, c = grid.index_of(lat, lon)
        assert names[int(ds.city_id.values[r, c])] == name


def test_gcj02_moves_bth_vertices_100_to_700_m(shared_data):
    raw = read_city_polygons(shared_data / BTH_CITIES, crs_offset=None)
    fixed = read_city_polygons(shared_data / BTH_CITIES)  # auto: cnmaps file -> gcj02
    assert raw.attrs["crs_offset"] is None and fixed.attrs["crs_offset"] == "gcj02"
    a = shapely.get_coordinates(raw.geometry.values)
    b = shapely.get_coordinates(fixed.geometry.values)
    moved = haversine_km(a[:, 1], a[:, 0], b[:, 1], b[:, 0]) * 1000
    assert len(moved) > 10_000 and moved.min() > 100 and moved.max() < 700
    # the conversion shifts WGS84 = GCJ-02 minus the offset: going forward again gives the file's vertices
    fwd = np.column_stack(wgs84_to_gcj02(b[:, 0], b[:, 1]))
    assert np.abs(fwd - a).max() < 1e-7


def test_city_field_errors(tmp_path, shared_data):
    with pytest.raises(IngestError, match=r"no English name property 'NAME_EN'; the properties are"):
        read_cities(shared_data / BTH_CITIES, GRID, name_en_field="NAME_EN")
    far = Grid(20.0, 21.0, 100.0, 101.0, 0.05)
    with pytest.raises(IngestError, match="no city polygon covers"):
        read_cities(shared_data / BTH_CITIES, far)
    pts = write_geojson(tmp_path / "p.geojson", [((116.0, 39.0), {"name": "x", "name_en": "x", "adcode": 1})])
    with pytest.raises(IngestError, match="Point geometries; city boundaries must be polygons"):
        read_cities(pts, GRID)
