"""Stage 2's background fit (``stage2.met_fit: background``): eq. 3 fitted where no IHS is active and carried
into the IHS areas, checked against independent computations (numpy lstsq on scipy-interpolated met baselines,
brute-force inverse-distance weighting), the idle-day fit, and a kill + rerun that resumes to the same arrays."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

from ihs_hpc import Run
from ihs_hpc.ops.carry import carry_maps
from ihs_hpc.ops.mlr import apply_met, remove_met
from ihs_hpc.pipeline.met_fit import FIT_CARRIED, FIT_IDLE, FIT_OWN, idle_days
from ihs_hpc.pipeline.stage2 import open_stage2

MET_VARS = ["t2m", "tp", "sp", "u10", "v10", "rh"]


def ihs(*args, **kw):
    return subprocess.run([sys.executable, "-m", "ihs_hpc.cli", *map(str, args)], capture_output=True, text=True, **kw)


def write_config(path, scene, run_dir, **stage2):
    extra = "".join(f", {k}: {v}" for k, v in stage2.items())
    path.write_text(f"run_dir: {run_dir}\ninput: {{kind: store, store: {scene}}}\ngrid: {{tile_size: 16}}\n"
                    f"cluster: {{kind: none}}\nprep: {{enabled: false}}\nstage2: {{met_fit: background{extra}}}\n")
    return path


@pytest.fixture(scope="module")
def background_run(tiny_scene, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metfit")
    cfg = write_config(tmp / "bg.yaml", tiny_scene, tmp / "bg")
    result = ihs("run", cfg, "--stages", "stage1,stage2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "met_fit: background" in result.stdout
    return tmp / "bg"


def _regressors(stage2, scene):
    """Met baselines interpolated bilinearly to every analysis pixel with scipy: (ny, nx, k, time)."""
    mlat, mlon = stage2.met_lat.values, stage2.met_lon.values
    lat, lon = scene.lat.values, scene.lon.values
    pts = np.stack(np.meshgrid(lat, lon, indexing="ij"), -1)
    out = []
    for var in MET_VARS:
        cube = stage2[f"met_bl_{var}"].values.astype(np.float64)  # (time, met_lat, met_lon), lat descending
        interp = RegularGridInterpolator((mlat[::-1], mlon), np.moveaxis(cube[:, ::-1, :], 0, -1))
        out.append(interp(pts))  # (ny, nx, time)
    return np.stack(out, axis=2)


def test_background_pixels_fit_their_own_series_and_ihs_pixels_get_carried_coefficients(background_run, tiny_scene):
    s2 = Run(background_run.parent / "bg.yaml").open("stage2")  # pm25_bl_mlr: eq. 3 derived on read from the maps
    s1 = xr.open_zarr(background_run / "stage1.zarr")
    scene = xr.open_zarr(tiny_scene)
    assert s2.attrs["met_fit"] == "background"
    source = s2.met_fit_source.values
    inside = s1.ihs_mask.values.astype(bool)
    assert (source[~inside] == FIT_OWN).all() and (source[inside] == FIT_CARRIED).all()
    X = _regressors(s2, scene)
    bl = s2.pm25_bl.values.astype(np.float64)
    rng = np.random.default_rng(3)
    bg_rc = np.argwhere(~inside)[rng.choice((~inside).sum(), 3, replace=False)]
    for r, c in bg_rc:  # eq. 3 on the pixel's own series: numpy lstsq
        design = np.column_stack([np.ones(bl.shape[0]), X[r, c].T])
        coef = np.linalg.lstsq(design, bl[:, r, c], rcond=None)[0]
        np.testing.assert_allclose(s2.pm25_bl_mlr.values[:, r, c], design @ coef, rtol=1e-4, atol=1e-2)
    # carried: inverse-distance weights (power 2) of the 16 nearest background pixels, x = lon, y = lat
    coefs = np.stack([s2[f"coef_a{k}"].values.astype(np.float64) for k in range(7)])
    lat, lon = scene.lat.values, scene.lon.values
    br, bc = np.nonzero(~inside)
    for r, c in np.argwhere(inside)[rng.choice(inside.sum(), 5, replace=False)]:
        d = np.hypot(lon[bc] - lon[c], lat[br] - lat[r])
        near = np.argsort(d, kind="stable")[:16]
        w = d[near] ** -2.0
        expected = (coefs[:, br[near], bc[near]] * w).sum(1) / w.sum()
        np.testing.assert_allclose(coefs[:, r, c], expected, rtol=1e-5, atol=1e-6)
        # eq. 3 evaluated with the carried coefficients, eq. 4, the series' level kept
        fitted = coefs[0, r, c] + coefs[1:, r, c] @ X[r, c]
        series = scene.pm25.values[:, r, c].astype(np.float64)
        # the level kept: each calendar year's mean of STL's short-term component R (level_window: year)
        level = pd.Series(series - bl[:, r, c]).groupby(scene.time.dt.year.values).transform("mean").to_numpy()
        expected_tem = bl[:, r, c] - fitted + fitted.mean() + level
        np.testing.assert_allclose(s2.pm25_bl_tem.values[:, r, c], expected_tem, rtol=1e-4, atol=2e-2)
        assert s2.pm25_bl_tem.values[:, r, c].mean() == pytest.approx(series.mean(), rel=1e-4)


def test_idle_days_fit(tiny_scene, background_run, tmp_path):
    """An IHS-area pixel with enough days on which none of its sources operated is fitted on them alone."""
    cfg = write_config(tmp_path / "idle.yaml", tiny_scene, tmp_path / "idle", met_fit_idle_days=100)
    import shutil

    shutil.copytree(background_run / "stage1.zarr", tmp_path / "idle" / "stage1.zarr")
    result = ihs("run", cfg, "--stages", "stage1,stage2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    s2 = open_stage2(tmp_path / "idle" / "stage2.zarr")
    s1 = xr.open_zarr(tmp_path / "idle" / "stage1.zarr")
    scene = xr.open_zarr(tiny_scene)
    source = s2.met_fit_source.values
    assert (source == FIT_IDLE).any(), "the tiny scene has sources that open or close within the record"
    years = scene.time.dt.year.values
    stage1_years = s1.year.values
    from ihs_hpc.ops.stl import stl_settings

    margin = stl_settings(**s2.attrs["stl_settings"]).trend // 2  # half the STL trend window
    r, c = np.argwhere(source == FIT_IDLE)[0]
    operating = s1.ihs_count_year.values[:, r, c] > 0
    day_year = np.searchsorted(stage1_years, years)
    usable = idle_days(operating, day_year, margin)
    assert int(s2.met_fit_days.values[r, c]) == usable.sum() >= 100
    on = np.flatnonzero(operating[day_year])
    assert not usable[on].any() and np.abs(np.flatnonzero(usable)[:, None] - on[None, :]).min() >= margin
    X = _regressors(s2, scene)[r, c]
    bl = s2.pm25_bl.values[:, r, c].astype(np.float64)
    design = np.column_stack([np.ones(usable.sum()), X[:, usable].T])
    coef = np.linalg.lstsq(design, bl[usable], rcond=None)[0]
    full = np.column_stack([np.ones(bl.size), X.T]) @ coef
    np.testing.assert_allclose(s2.pm25_bl_mlr.values[:, r, c], full, rtol=1e-4, atol=2e-2)


def test_idle_days_keep_away_from_operating_days():
    year_of_day = np.repeat(np.arange(4), 100)
    usable = idle_days(np.array([False, False, True, False]), year_of_day, margin=30)
    assert usable[:171].all() and not usable[171:329].any() and usable[329:].all()  # >= 30 days away
    assert idle_days(np.array([True, True, True, True]), year_of_day, 30).sum() == 0
    assert idle_days(np.zeros(4, bool), year_of_day, 30).all()


def test_killed_in_the_apply_pass_then_rerun_is_identical(background_run, tiny_scene, tmp_path):
    cfg = write_config(tmp_path / "killed.yaml", tiny_scene, tmp_path / "killed")
    env = {**os.environ, "IHS_FAULT_KILL_AFTER": "stage2 IHS-area tiles:2"}
    killed = ihs("run", cfg, "--stages", "stage1,stage2", env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    partial = tmp_path / "killed" / "stage2.zarr.partial"
    records = {p.name for p in (partial / "_ihs_tiles").iterdir()}
    import zarr

    source = zarr.open_group(partial, mode="r")["met_fit_source"][:]
    finished_in_pass_a = sum(not (source[r:r + 16, c:c + 16] == FIT_CARRIED).any()
                             for r in range(0, source.shape[0], 16) for c in range(0, source.shape[1], 16))
    assert finished_in_pass_a > 0  # tiles with no IHS-area pixel: pass A wrote their pm25_bl_tem
    assert len([r for r in records if r.startswith("apply_")]) == finished_in_pass_a + 2
    result = ihs("run", cfg, "--stages", "stage1,stage2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    a, b = xr.open_zarr(background_run / "stage2.zarr"), xr.open_zarr(tmp_path / "killed" / "stage2.zarr")
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_tiles_without_carried_pixels_are_finished_in_pass_a_as_pass_c_would(background_run, tmp_path):
    """Pass A writes pm25_bl_tem of a tile none of whose pixels is carried; pass C run on such a tile
    afterwards (from what the store holds) rewrites the same bytes."""
    import shutil

    import zarr

    from ihs_hpc.grid import Grid
    from ihs_hpc.pipeline.met_fit import apply_tile

    store = tmp_path / "stage2.zarr"
    shutil.copytree(background_run / "stage2.zarr", store)
    ds = xr.open_zarr(store)
    grid = Grid.from_dataset(ds)
    source = ds.met_fit_source.values
    tiles = grid.tiles(16)
    in_pass_a = [t for t in tiles if (source[t.rows, t.cols] > 0).any() and not (source[t.rows, t.cols] == FIT_CARRIED).any()]
    with_carried = [t for t in tiles if (source[t.rows, t.cols] == FIT_CARRIED).any()]
    assert in_pass_a and with_carried, "the tiny scene has tiles with and without IHS-area pixels"
    level = dict(keep_level=bool(ds.attrs["keep_level"]), level_by_year=ds.attrs["level_window"] == "year",
                 year_of_day=np.unique(ds.time.dt.year.values, return_inverse=True)[1].astype(np.int64))
    before = ds.pm25_bl_tem.values
    assert np.isfinite(before[:, in_pass_a[0].rows, in_pass_a[0].cols]).any()
    for tile in in_pass_a + with_carried[:1]:
        apply_tile(tile, out=store, variables=tuple(ds.attrs["met_variables"]), met_lat=ds.met_lat.values,
                   met_lon=ds.met_lon.values, grid=grid, level=level)
    np.testing.assert_array_equal(zarr.open_group(store, mode="r")["pm25_bl_tem"][:], before)


# ---------------------------------------------------------------------------------------------- ops
def test_carry_maps_matches_brute_force_idw():
    rng = np.random.default_rng(0)
    lat = 37.0 - np.cumsum(rng.uniform(0.008, 0.012, 30))  # irregular: no tied distances
    lon = 114.0 + np.cumsum(rng.uniform(0.008, 0.012, 40))
    maps = rng.normal(size=(3, 30, 40))
    source = rng.random((30, 40)) < 0.6
    target = ~source & (rng.random((30, 40)) < 0.8)
    out = carry_maps(maps, source, target, lat, lon, k=7, power=2.0)
    sr, sc = np.nonzero(source)
    for r in range(30):
        for c in range(40):
            if not target[r, c]:
                np.testing.assert_array_equal(out[:, r, c], maps[:, r, c])
                continue
            d = np.hypot(lon[sc] - lon[c], lat[sr] - lat[r])
            near = np.argsort(d)[:7]
            w = d[near] ** -2.0
            np.testing.assert_allclose(out[:, r, c], (maps[:, sr[near], sc[near]] * w).sum(1) / w.sum(), rtol=1e-12)
    with pytest.raises(ValueError, match="no source"):
        carry_maps(maps, np.zeros((30, 40), bool), target, lat, lon)
    bad = maps.copy()
    bad[1, sr[0], sc[0]] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        carry_maps(bad, source, target, lat, lon)
    with pytest.raises(ValueError, match="shape"):
        carry_maps(maps, source[:-1], target, lat, lon)


def test_apply_met_is_eq3_evaluated_and_eq4():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 6, 50))
    y = rng.normal(size=(4, 50)) + 10
    coef = rng.normal(size=(4, 7))
    tem, fitted = apply_met(y, X, coef)
    expected = coef[:, :1] + np.einsum("pk,pkt->pt", coef[:, 1:], X)
    np.testing.assert_allclose(fitted, expected, rtol=1e-12)
    np.testing.assert_allclose(tem, y - expected, rtol=1e-12)
    tem_level, _ = apply_met(y, X, coef, keep_level=True)
    np.testing.assert_allclose(tem_level, y - expected + expected.mean(-1, keepdims=True), rtol=1e-12)
    # with a pixel's own least-squares coefficients it is remove_met
    own_tem, fit = remove_met(y, X, keep_level=True)
    again, _ = apply_met(y, X, fit.coef, keep_level=True)
    np.testing.assert_allclose(again, own_tem, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="coef"):
        apply_met(y, X, coef[:, :5])
