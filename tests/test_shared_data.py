"""Shared data (coarse DEM, BTH city polygons) is found through IHS_SHARED_DATA only, with clear errors."""
import numpy as np
import pytest
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

from ihs_hpc.shared_data import SharedDataError
from ihs_hpc.synth import cities, terrain


def test_unset_setting_means_the_analytic_terrain_and_an_error_for_bth_cities(monkeypatch):
    monkeypatch.delenv("IHS_SHARED_DATA", raising=False)
    assert terrain.shared_dem_path() is None  # no path guessed from where the package sits
    assert terrain.base_source() == "analytic + fractal texture"
    with pytest.raises(SharedDataError, match=r"'bth' city layout .*set IHS_SHARED_DATA") as info:
        cities.shared_cities_path()
    assert info.value.exit_code == 2


def test_a_folder_without_the_file_is_an_error_naming_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("IHS_SHARED_DATA", str(tmp_path))
    with pytest.raises(SharedDataError, match=str(tmp_path / "dem" / "china-dem.nc")):
        terrain.base_source()
    with pytest.raises(SharedDataError, match="bth_13_cities_cnmaps.geojson"):
        cities.shared_cities_path()


def test_the_setting_gives_the_real_dem_interpolated_like_scipy(monkeypatch, shared_data):
    monkeypatch.setenv("IHS_SHARED_DATA", str(shared_data))
    path = terrain.shared_dem_path()
    assert path == shared_data / "dem" / "china-dem.nc"
    assert terrain.base_source().startswith("china-dem.nc")
    lat, lon = np.meshgrid(np.linspace(36.2, 42.4, 9), np.linspace(113.7, 119.6, 8), indexing="ij")
    z, sea = terrain.base_elevation(lat, lon)
    with xr.open_dataset(path) as ds:
        values = np.where(np.isfinite(ds.dem.values) & (np.abs(ds.dem.values) < 1e4), ds.dem.values, terrain.SEA_LEVEL_M)
        order = np.argsort(ds.lat.values)
        ref = RegularGridInterpolator((ds.lat.values[order], ds.lon.values), values[order])(np.stack([lat, lon], -1))
    np.testing.assert_allclose(z, ref, rtol=1e-9)  # scipy forms the weights otherwise: rounding only
    assert z.max() > 1000 and sea.shape == lat.shape


def test_a_fresh_copy_of_the_shared_data_is_the_same_scene_and_changed_content_is_not(tmp_path, shared_data):
    """The scene's fingerprint knows the shared files by content: a copy elsewhere with new times keeps a
    run's outputs valid (a machine that re-copies the data at start-up does not rebuild everything),
    one changed byte does not."""
    import os
    import shutil

    from ihs_hpc.pipeline.plan import SYNTH_SHARED_FILES, shared_data_listing

    copies = []
    for name, when in (("a", 1_000_000_000), ("b", 1_700_000_000)):
        root = tmp_path / name
        for rel in SYNTH_SHARED_FILES:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shared_data / rel, root / rel)
            os.utime(root / rel, ns=(when * 10**9, when * 10**9))
        copies.append(root)
    assert shared_data_listing(copies[0]) == shared_data_listing(copies[1]) == shared_data_listing(shared_data)
    assert shared_data_listing(copies[0]).startswith(f"{len(SYNTH_SHARED_FILES)} files")
    target = copies[1] / SYNTH_SHARED_FILES[1]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 1
    target.write_bytes(bytes(data))
    assert shared_data_listing(copies[1]) != shared_data_listing(copies[0])
    (copies[0] / SYNTH_SHARED_FILES[0]).unlink()
    assert shared_data_listing(copies[0]).startswith(f"{len(SYNTH_SHARED_FILES) - 1} files")
