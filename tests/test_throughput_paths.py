"""The fast paths of issue 15 give the numbers of the straightforward computations they replace.

* stage 2 in chunks of pixels with regressors interpolated inside the regression kernel
  (``ops.met_removal.remove_met_block``, ``ops.mlr.mlr_bilinear``) equals the whole-tile computation with the
  regressors from the einsum bilinear (``ops.interp.apply_bilinear``) and numpy's lstsq where a pixel is
  rank-deficient;
* the series-major bilinear (``apply_bilinear_rows``) equals ``apply_bilinear`` exactly;
* kriging through the day-major copy (``pipeline.daily.krige_cube`` + ``merge_cube``) equals kriging each day
  of the store read directly (``fill_block``), resumes without redoing finished blocks, and counts the
  input's missing values per day;
* glibc keeps freed memory in worker processes (``ihs_hpc.malloc``): page faults of repeated large
  allocations in a thread drop, and LocalCluster workers get the setting;
* without a GPU the STL operator's ``backend="auto"`` never imports torch.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ihs_hpc.grid import Grid


def _met_case(rng, n_time=120, ny=20, nx=24, k=3):
    """Coarse met baselines on a 0.1° grid and the bilinear corners of a 0.01° tile inside it."""
    from ihs_hpc.ops.interp import bilinear_weights

    met_lat = 37.5 - 0.1 * np.arange(8)
    met_lon = 114.0 + 0.1 * np.arange(9)
    lat = 37.4 - 0.01 * np.arange(ny)
    lon = 114.1 + 0.01 * np.arange(nx)
    t = np.arange(n_time)
    fields = np.stack([np.sin(2 * np.pi * (t[:, None, None] / 30.0 + j))
                       + rng.normal(0, 0.3, (n_time, met_lat.size, met_lon.size)) for j in range(k)])
    index, weight = bilinear_weights(met_lat, met_lon, lat, lon)
    return fields, index, weight, (ny, nx)


def test_remove_met_block_equals_whole_tile_with_einsum_regressors():
    from ihs_hpc.ops.interp import apply_bilinear
    from ihs_hpc.ops.met_removal import remove_met_block
    from ihs_hpc.ops.mlr import remove_met
    from ihs_hpc.ops.stl import stl_baseline

    rng = np.random.default_rng(5)
    fields, index, weight, (ny, nx) = _met_case(rng)
    n_time = fields.shape[1]
    t = np.arange(n_time)
    y = 50 + 10 * np.sin(2 * np.pi * t / 30.0)[:, None] + rng.normal(0, 3, (n_time, ny * nx))
    y += 2.0 * apply_bilinear(fields[0], index, weight)  # a real dependence on the first regressor
    y[:, [3, 100]] = np.nan  # pixels with no value on any day: not analysed, NaN everywhere
    series = y.astype(np.float32)
    settings = dict(period=30)
    got = remove_met_block(series, list(fields.reshape(fields.shape[0], n_time, -1).transpose(0, 2, 1)), index,
                           weight, keep_level=True, chunk=97, **settings)  # a chunk that divides nothing

    analysed = np.isfinite(series).any(axis=0)
    y64 = series.T.astype(np.float64)[analysed]
    X = np.stack([apply_bilinear(f, index, weight).T for f in fields], axis=1)[analysed]  # (pixels, k, time)
    bl = stl_baseline(y64, **settings)
    tem, fit = remove_met(bl, X, keep_level=True)
    short_term_mean = (y64 - bl).mean(axis=1)  # keep_level keeps the series' mean: + mean of STL's R (eq. 1)
    tem += short_term_mean[:, None]
    np.testing.assert_allclose(tem.mean(axis=1), y64.mean(axis=1), rtol=1e-12)
    assert got.short_term_level.shape == (ny * nx, 1)  # no year_of_day: one year, the record
    np.testing.assert_array_equal(got.short_term_level[analysed, 0], short_term_mean.astype(np.float32))
    np.testing.assert_array_equal(got.pm25_bl[:, analysed], bl.T.astype(np.float32))
    np.testing.assert_array_equal(got.pm25_bl_mlr[:, analysed], fit.fitted.T.astype(np.float32))
    np.testing.assert_array_equal(got.pm25_bl_tem[:, analysed], tem.T.astype(np.float32))
    np.testing.assert_allclose(got.coef[analysed], fit.coef, rtol=1e-12)
    np.testing.assert_array_equal(got.r2[analysed], fit.r2.astype(np.float32))
    assert np.isnan(got.pm25_bl[:, ~analysed]).all() and np.isnan(got.coef[~analysed]).all()
    assert np.nanmax(got.coef[:, 1]) > 1.5  # the injected dependence (a1 = 2) is found

    # `fit`: only some pixels regressed (stage 2's met_fit: background); the others get their baseline only
    fit_mask = rng.random(ny * nx) < 0.5
    part = remove_met_block(series, list(fields.reshape(fields.shape[0], n_time, -1).transpose(0, 2, 1)), index,
                            weight, keep_level=True, fit=fit_mask, chunk=97, **settings)
    own = fit_mask[analysed]
    np.testing.assert_array_equal(part.pm25_bl[:, analysed], bl.T.astype(np.float32))
    np.testing.assert_array_equal(part.short_term_level[analysed, 0], short_term_mean.astype(np.float32))
    np.testing.assert_array_equal(part.pm25_bl_tem[:, analysed][:, own], tem[own].T.astype(np.float32))
    np.testing.assert_allclose(part.coef[analysed][own], fit.coef[own], rtol=1e-12)
    assert np.isnan(part.pm25_bl_tem[:, ~fit_mask]).all() and np.isnan(part.pm25_bl_mlr[:, ~fit_mask]).all()
    assert np.isnan(part.coef[~fit_mask]).all() and np.isnan(part.r2[~fit_mask]).all()
    with pytest.raises(ValueError, match="fit must be"):
        remove_met_block(series, [fields[0].reshape(n_time, -1).T], index, weight, fit=fit_mask[:-1], **settings)
    # `analysed` given by the caller (stage 2's tile reader): the same arrays, non-analysed pixels still NaN
    given = remove_met_block(series, list(fields.reshape(fields.shape[0], n_time, -1).transpose(0, 2, 1)), index,
                             weight, keep_level=True, chunk=97, analysed=analysed, **settings)
    for name in ("pm25_bl", "pm25_bl_mlr", "pm25_bl_tem", "coef", "r2", "short_term_level"):
        np.testing.assert_array_equal(getattr(given, name), getattr(got, name), err_msg=name)
    with pytest.raises(ValueError, match="analysed must be"):
        remove_met_block(series, [fields[0].reshape(n_time, -1).T], index, weight, analysed=analysed[:-1], **settings)

    # level_by_year: each year's mean of R instead of the record's (pandas groupby as the reference)
    import pandas as pd

    year_of_day = np.arange(n_time) // 45  # uneven "years": the last one is shorter
    by_year = remove_met_block(series, list(fields.reshape(fields.shape[0], n_time, -1).transpose(0, 2, 1)), index,
                               weight, keep_level=True, chunk=97, year_of_day=year_of_day, level_by_year=True,
                               **settings)
    resid = pd.DataFrame((y64 - bl).T)
    level = resid.groupby(year_of_day).mean().to_numpy().T  # (pixels, years)
    np.testing.assert_allclose(by_year.short_term_level[analysed], level, rtol=1e-5, atol=1e-5)
    expected = tem - short_term_mean[:, None] + level[:, year_of_day]
    np.testing.assert_allclose(by_year.pm25_bl_tem[:, analysed], expected.T, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(by_year.pm25_bl_tem[:, analysed].mean(axis=0), y64.mean(axis=1), rtol=1e-5)
    with pytest.raises(ValueError, match="year_of_day must be"):
        remove_met_block(series, [fields[0].reshape(n_time, -1).T], index, weight, year_of_day=year_of_day[:-1],
                         **settings)



def test_apply_met_block_is_eqs_3_4_with_given_coefficients_on_materialised_regressors():
    """Stage 2's pass over a tile with coefficients fitted elsewhere (met_fit: background) equals numpy's
    einsum on the regressors from apply_bilinear (ops.mlr.apply_met), plus each year's level, in any chunking;
    and with the pixels' own coefficients it gives what remove_met_block fits and removes in one go."""
    from ihs_hpc.ops.interp import apply_bilinear
    from ihs_hpc.ops.met_removal import apply_met_block, remove_met_block
    from ihs_hpc.ops.mlr import apply_met

    rng = np.random.default_rng(11)
    fields, index, weight, (ny, nx) = _met_case(rng)
    n_time, k = fields.shape[1], fields.shape[0]
    rows = list(fields.reshape(k, n_time, -1).transpose(0, 2, 1))
    bl = (40 + rng.normal(0, 5, (n_time, ny * nx))).astype(np.float32)
    columns = np.sort(rng.choice(ny * nx, 150, replace=False))
    coef = rng.normal(0, 2, (columns.size, k + 1))
    coef[7] = np.nan  # a pixel without coefficients: NaN, like its neighbours outside `columns`
    year_of_day = np.arange(n_time) // 45
    level = rng.normal(0, 3, (columns.size, int(year_of_day.max()) + 1))
    X = np.stack([apply_bilinear(f, index, weight).T for f in fields], axis=1)[columns]  # (pixels, k, time)
    tem_ref, fitted_ref = apply_met(bl[:, columns].T.astype(np.float64), X, coef, keep_level=True)
    tem_ref = tem_ref + level[:, year_of_day]
    for chunk in (None, 7):  # a chunk smaller than the pixels of one coarse cell
        mlr, tem = apply_met_block(bl, rows, index[columns], weight[columns], coef, level, columns, keep_level=True,
                                   year_of_day=year_of_day, chunk=chunk)
        np.testing.assert_allclose(mlr[:, columns], fitted_ref.T, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(tem[:, columns], tem_ref.T, rtol=1e-6, atol=1e-5)
        outside = np.setdiff1d(np.arange(ny * nx), columns)
        assert np.isnan(mlr[:, outside]).all() and np.isnan(tem[:, outside]).all()
        assert np.isnan(mlr[:, columns[7]]).all() and np.isnan(tem[:, columns[7]]).all()
        # one output alone (stage 2 stores eq. 4 alone and derives eq. 3 on read): the same numbers
        none, tem_only = apply_met_block(bl, rows, index[columns], weight[columns], coef, level, columns,
                                         keep_level=True, year_of_day=year_of_day, chunk=chunk, fitted=False)
        mlr_only, nothing = apply_met_block(np.broadcast_to(np.float32(np.nan), bl.shape), rows, index[columns],
                                            weight[columns], coef, level, columns, year_of_day=year_of_day,
                                            chunk=chunk, removed=False)
        assert none is None and nothing is None
        np.testing.assert_array_equal(tem_only, tem)
        np.testing.assert_array_equal(mlr_only, mlr)
    with pytest.raises(ValueError, match="ask for"):
        apply_met_block(bl, rows, index[columns], weight[columns], coef, level, columns, fitted=False, removed=False)
    mlr, tem = apply_met_block(bl, rows, index[columns], weight[columns], coef, level, columns, keep_level=False,
                               year_of_day=year_of_day)
    np.testing.assert_allclose(tem[:, columns], bl[:, columns] - fitted_ref.T, rtol=1e-6, atol=1e-5)

    # with the pixels' own fits, pass A's baseline + pass C equals fitting and removing in one block
    series = (bl + 2.0 * apply_bilinear(fields[0], index, weight)).astype(np.float32)
    kw = dict(keep_level=True, year_of_day=year_of_day, level_by_year=True, period=30)
    whole = remove_met_block(series, rows, index, weight, **kw)
    base = remove_met_block(series, rows, index, weight, met_removed=False, **kw)
    assert base.pm25_bl_mlr is None and base.pm25_bl_tem is None
    np.testing.assert_array_equal(base.pm25_bl, whole.pm25_bl)
    np.testing.assert_array_equal(base.coef, whole.coef)
    every = np.arange(ny * nx)
    mlr, tem = apply_met_block(base.pm25_bl, rows, index, weight, base.coef, base.short_term_level, every,
                               keep_level=True, year_of_day=year_of_day)
    np.testing.assert_allclose(mlr, whole.pm25_bl_mlr, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(tem, whole.pm25_bl_tem, rtol=1e-6, atol=1e-5)
    with pytest.raises(ValueError, match="coef must be"):
        apply_met_block(bl, rows, index[columns], weight[columns], coef[:, :2], level, columns)


def test_mlr_bilinear_equals_mlr_and_lstsq_on_rank_deficient_pixels():
    from ihs_hpc.ops.interp import apply_bilinear_rows
    from ihs_hpc.ops.mlr import mlr, mlr_bilinear

    rng = np.random.default_rng(2)
    fields, index, weight, _ = _met_case(rng, k=3)
    rows = fields.reshape(3, fields.shape[1], -1).transpose(0, 2, 1).copy()
    rows[2] = 2.0 * rows[1] - 1.0  # regressor 3 collinear with regressor 2 everywhere: lstsq's minimum norm
    X = apply_bilinear_rows(rows, index, weight)
    y = 40 + X[:, 0] * 1.5 - X[:, 1] + rng.normal(0, 0.5, X[:, 0].shape)
    got, ref = mlr_bilinear(y, rows, index, weight), mlr(y, X)
    assert (ref.rank < 4).all()  # every pixel took the lstsq fallback
    for name in ("coef", "fitted", "r2", "rank"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name))
    design = np.column_stack([np.ones(y.shape[1]), X[7].T])
    np.testing.assert_allclose(got.coef[7], np.linalg.lstsq(design, y[7], rcond=None)[0], rtol=1e-9, atol=1e-9)


def test_apply_bilinear_rows_equals_apply_bilinear():
    from ihs_hpc.ops.interp import apply_bilinear, apply_bilinear_rows

    rng = np.random.default_rng(0)
    fields, index, weight, _ = _met_case(rng, k=2)
    rows = fields.reshape(2, fields.shape[1], -1).transpose(0, 2, 1)
    got = apply_bilinear_rows(rows, index, weight)
    for j in range(2):
        np.testing.assert_array_equal(got[:, j, :], apply_bilinear(fields[j], index, weight).T)
    np.testing.assert_array_equal(apply_bilinear_rows(rows[0], index, weight), got[:, 0, :])
    with pytest.raises(ValueError, match="outside"):
        apply_bilinear_rows(rows[0], index + 10_000, weight)


def test_gather_and_scatter_series_are_inverse_transposes():
    from ihs_hpc.kernels.layout import gather_series, put_met_removed, scatter_met_removed, scatter_series

    rng = np.random.default_rng(1)
    cube = rng.normal(size=(77, 130)).astype(np.float32)
    columns = np.array([0, 5, 6, 7, 64, 129], dtype=np.int64)
    series = np.empty((columns.size, 77))
    gather_series(cube, columns, series)
    np.testing.assert_array_equal(series, cube[:, columns].T.astype(np.float64))
    out = np.zeros_like(cube)
    scatter_series(series, columns, out)
    np.testing.assert_array_equal(out[:, columns], cube[:, columns])
    assert not out[:, np.setdiff1d(np.arange(130), columns)].any()
    fitted = 0.5 * series + 1.0
    offset = np.arange(columns.size, dtype=np.float64)
    year_of_day = np.arange(77) // 30
    level = np.random.default_rng(2).normal(size=(columns.size, 3))
    for keep_level in (True, False):
        outs = [np.zeros_like(cube) for _ in range(2)]
        scatter_met_removed(series, fitted, offset, level, year_of_day, keep_level, columns, *outs)
        removed = series - fitted + ((offset[:, None] + level[:, year_of_day]) if keep_level else 0.0)
        np.testing.assert_array_equal(outs[0][:, columns], fitted.T.astype(np.float32))
        np.testing.assert_allclose(outs[1][:, columns], removed.T.astype(np.float32), rtol=1e-6)
        assert not outs[1][:, np.setdiff1d(np.arange(130), columns)].any()
        puts = [np.zeros_like(cube) for _ in range(2)]
        bl_cube = np.zeros_like(cube)
        bl_cube[:, columns] = series.T
        put_met_removed(bl_cube, np.ascontiguousarray(fitted.T), offset, level, year_of_day, keep_level, columns, *puts)
        for got, want in zip(puts, outs):
            np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------------------------------- kriging
@pytest.fixture()
def gappy_store(tmp_path):
    """A 40-day, 40 × 52 px cube (tiles of 16) with scattered gaps, a hole and a day without data."""
    from ihs_hpc.io.cube import create_store, cube_spec, write_tile

    grid = Grid(37.0, 37.4, 114.0, 114.52, 0.01)
    rng = np.random.default_rng(3)
    n = 40
    yy, xx = np.mgrid[0:grid.ny, 0:grid.nx]
    cube = (50 + 10 * np.sin(yy / 7.0)[None] + 8 * np.cos(xx / 9.0)[None]
            + rng.normal(0, 1, (n, grid.ny, grid.nx))).astype(np.float32)
    raw = cube.copy()
    raw[rng.random(raw.shape) < 0.05] = np.nan
    raw[7] = np.nan  # a day without any data: kriging leaves it to the time fill
    clean = raw.copy()
    clean[rng.random(raw.shape) < 0.01] = np.nan  # "outliers" removed after the input's gaps
    time = np.datetime64("2020-01-01") + np.arange(n).astype("timedelta64[D]")
    path = tmp_path / "in.zarr"
    create_store(path, grid, {"raw": cube_spec("1", "raw"), "clean": cube_spec("1", "clean")}, tile_size=16, time=time)
    for tile in grid.tiles(16):
        write_tile(path, tile, {"raw": raw[:, tile.rows, tile.cols], "clean": clean[:, tile.rows, tile.cols]})
    return path, grid, raw, clean


def test_day_major_kriging_equals_kriging_the_store_directly_and_resumes(gappy_store, tmp_path, monkeypatch):
    from ihs_hpc.errors import IncompleteRunError
    from ihs_hpc.io.cube import create_store, cube_spec, read_tile
    from ihs_hpc.pipeline.daily import DayBlock, fill_block, krige_cube, merge_cube

    path, grid, raw, clean = gappy_store
    holes = np.zeros(grid.shape, dtype=bool)
    holes[10:16, 20:30] = True
    fill_mask = np.ones(grid.shape, dtype=bool)
    fill_mask[0, 0] = False  # a pixel never filled
    out = tmp_path / "out.zarr"
    create_store(out, grid, {"filled": cube_spec("1", "filled")}, tile_size=16,
                 time=np.datetime64("2020-01-01") + np.arange(40).astype("timedelta64[D]"))
    kwargs = dict(holes=holes, fill_mask=fill_mask | holes, model="exponential", k=12)
    # first run: one block fails every attempt (an interrupted run); the rest is kept
    monkeypatch.setenv("IHS_FAULT_FAIL_TILE", "kriging days:d00009_00018")
    with pytest.raises(IncompleteRunError, match="d00009_00018"):
        krige_cube(path, "clean", grid, None, block_days=9, scratch=out / "_ihs_fills", original=(path, "raw"), **kwargs)
    days = out / "_ihs_fills" / "days.zarr"
    before = {p.name: p.stat().st_mtime_ns for p in (days / "blocks").iterdir()}
    assert len(before) == 4 and (days / "source").is_dir()
    monkeypatch.delenv("IHS_FAULT_FAIL_TILE")
    fills, infos = krige_cube(path, "clean", grid, None, block_days=9, scratch=out / "_ihs_fills",
                              original=(path, "raw"), **kwargs)
    after = {p.name: p.stat().st_mtime_ns for p in (days / "blocks").iterdir()}
    assert {n for n in after if after[n] != before.get(n)} == {"d00009_00018.json"}  # only the missing block
    assert not (days / "source").exists()  # every block done: the copy is deleted
    merge_cube(path, "clean", out, "filled", grid, 16, fills, holes=holes)
    got = np.concatenate([np.concatenate([read_tile(out, t, ["filled"])["filled"] for t in grid.tiles(16) if t.iy == iy],
                                         axis=2) for iy in range(3)], axis=1)

    # the reference: each block of days read straight from the time-contiguous store, fills put in
    expect = np.where(holes[None], np.nan, clean)
    ref_infos = []
    for start in range(0, 40, 9):
        res = fill_block(DayBlock(start, min(start + 9, 40)), store=path, variable="clean", lat=grid.lat, lon=grid.lon,
                         original=(path, "raw"), **kwargs)
        rows, cols = np.divmod(res["pixel"], grid.nx)
        expect[res["day"], rows, cols] = res["value"]
        ref_infos += res["info"]
    np.testing.assert_array_equal(got, expect)
    assert np.isnan(got[:, 0, 0]).sum() == np.isnan(clean[:, 0, 0]).sum()  # outside fill_mask: left as is
    assert np.isnan(got[7]).all()  # no data that day: nothing to krige from
    assert [i["n_missing_input"] for i in infos] == [int(np.isnan(raw[d]).sum()) for d in range(40)]
    assert [(i["day"], i["n_filled"], i["params"]) for i in infos] == [
        (i["day"], i["n_filled"], i["params"]) for i in ref_infos]



# ------------------------------------------------------------------------------------------- processes
ALLOC_CHILD = textwrap.dedent("""
    import resource, threading, numpy as np
    def work():
        for _ in range(8):
            a = np.ones(25_000_000)  # 200 MB, allocated and freed in a thread, as a Dask task does
            del a
    work()  # the first round faults its pages in either way
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = threading.Thread(target=work); t.start(); t.join()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_malloc_environment_stops_page_faults_of_repeated_large_allocations():
    from ihs_hpc.malloc import malloc_environment, reuse_freed_memory

    env = malloc_environment(1024)
    assert env == {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**30)}
    assert malloc_environment(0) == {} and reuse_freed_memory(0) is False

    def faults(extra):
        base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        out = subprocess.run([sys.executable, "-c", ALLOC_CHILD], env={**base, **extra}, capture_output=True,
                             text=True, check=True).stdout
        return int(out.split()[-1])

    default, kept = faults({}), faults(env)
    assert default > 1_000, default  # every 200 MB array faulted in again (2 MB pages where THP applies)
    assert kept < default / 20, (kept, default)


@pytest.mark.slow
def test_local_workers_keep_freed_memory():
    from ihs_hpc.cluster import get_client

    with get_client("local", n_workers=1, threads_per_worker=1, echo=lambda *_: None) as client:
        env = list(client.run(lambda: {k: os.environ.get(k) for k in
                                       ("MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")}).values())
    assert env == [{"MALLOC_ARENA_MAX": "1", "MALLOC_TRIM_THRESHOLD_": str(2**30), "MALLOC_MMAP_THRESHOLD_": str(2**30)}]


def test_operator_backend_auto_does_not_import_torch_without_a_gpu():
    from ihs_hpc.ops.stl_apply import GPU_DEVICE_FILES

    if any(os.path.exists(p) for p in GPU_DEVICE_FILES):
        pytest.skip("this machine has a GPU driver: auto may use torch there")
    code = ("import sys, numpy as np; from ihs_hpc.ops.stl import stl_baseline; "
            "stl_baseline(np.random.default_rng(0).normal(size=(4, 60)), 7, method='operator'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_chunk_cache_reads_what_zarr_reads_and_notices_a_rewritten_chunk(tmp_path):
    import zarr

    from ihs_hpc.io import chunk_cache

    chunk_cache.clear()
    path = tmp_path / "m.zarr"
    data = np.random.default_rng(0).normal(size=(9, 20, 13)).astype(np.float32)
    array = zarr.open_group(path, mode="w", zarr_format=3).create_array("v", shape=data.shape, chunks=(9, 8, 8),
                                                                      dtype="float32")
    array[...] = data
    for index in [(slice(None), slice(3, 17), slice(5, 13)), (slice(None), slice(0, 8), slice(0, 8)),
                  (slice(2, 4), slice(7, 9), slice(12, 13))]:
        np.testing.assert_array_equal(chunk_cache.read_region_cached(path, "v", index), data[index])
    assert len(chunk_cache._chunks) == 6  # every chunk decoded once, kept
    array[:, 0:8, 0:8] = -data[:, 0:8, 0:8]  # a rewritten chunk (new file) is read afresh
    np.testing.assert_array_equal(chunk_cache.read_region_cached(path, "v", (slice(None), slice(0, 4), slice(0, 4))),
                                  -data[:, 0:4, 0:4])
    chunk_cache.clear()
