"""The whole pipeline on the ``tiny`` synthetic scene, scored against the injected truth."""
import json
import math
import subprocess
import sys
from collections import deque

import numpy as np
import pytest
import xarray as xr


EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius, the sphere of seed 000's distance cap


def _haversine_km(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(a, 1.0)))


def radiation_area_bfs(dem, lat, lon, source, max_km):
    """Seed 000 §2.3.2 in plain Python, independent of ops.region_grow: breadth first from the source
    pixel, the 8 neighbours of a member that are strictly lower than it join when their centre lies within
    ``max_km`` of the source's centre. Returns the members and the distances that came within 1 m of the cap."""
    ny, nx = len(dem), len(dem[0])
    r0, c0 = source
    members, queue, borderline = {source}, deque([source]), []
    while queue:
        r, c = queue.popleft()
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                rr, cc = r + dr, c + dc
                if (dr, dc) == (0, 0) or not (0 <= rr < ny and 0 <= cc < nx) or (rr, cc) in members:
                    continue
                if not dem[rr][cc] < dem[r][c]:
                    continue
                distance = _haversine_km(lat[r0], lon[c0], lat[rr], lon[cc])
                if abs(distance - max_km) < 1e-3:
                    borderline.append(distance)
                if distance <= max_km:
                    members.add((rr, cc))
                    queue.append((rr, cc))
    return members, borderline


@pytest.fixture(scope="module")
def tiny_run(tiny_local_run):
    return tiny_local_run  # the session's LocalCluster run of tiny (conftest), shared with the Slurm tests


def test_every_stage_ran_and_summary_printed(tiny_run):
    run_dir, stdout = tiny_run
    summary = json.loads((run_dir / "run.json").read_text())
    assert [s for s, info in summary["stages"].items() if info["status"] != "done"] == []
    assert "Summary" in stdout and "dashboard" in stdout
    for store in ("cubes.zarr", "prep.zarr", "stage1.zarr", "stage2.zarr", "stage3.zarr"):
        ds = xr.open_zarr(run_dir / store)
        assert ds.attrs["ihs_complete"] is True


def test_estimate_recovers_the_injected_truth(tiny_run):
    run_dir, _ = tiny_run
    truth = xr.open_zarr(run_dir / "cubes.zarr")
    areas = xr.open_zarr(run_dir / "stage1.zarr").ihs_mask.values.astype(bool)
    estimate = xr.open_zarr(run_dir / "stage3.zarr").pm25_ihs.values[:, areas].astype(np.float64)
    true = truth.pm25_ihs_true.values[:, areas].astype(np.float64)
    assert np.isfinite(estimate).all()
    assert np.isnan(xr.open_zarr(run_dir / "stage3.zarr").pm25_ihs.values[:, ~areas]).all()
    # stage 1 equals areas grown by an independent implementation from the input DEM and sources...
    stage1 = xr.open_zarr(run_dir / "stage1.zarr")
    assert stage1.attrs["max_km"] == 10.0
    dem, lat, lon = truth.dem.values.astype(float).tolist(), truth.lat.values.tolist(), truth.lon.values.tolist()
    offsets, pixels = stage1.member_offset.values, stage1.member_pixel.values
    nx = len(lon)
    count = np.zeros(areas.shape, dtype=int)
    for i, source in enumerate(zip(truth.ihs_row.values.tolist(), truth.ihs_col.values.tolist())):
        members, borderline = radiation_area_bfs(dem, lat, lon, source, 10.0)
        assert borderline == []  # no pixel so near the cap that rounding could decide it
        assert sorted(r * nx + c for r, c in members) == pixels[offsets[i]:offsets[i + 1]].tolist(), f"IHS {i}"
        for r, c in members:
            count[r, c] += 1
    np.testing.assert_array_equal(stage1.ihs_count.values, count)
    assert np.array_equal(areas, count > 0) and 0 < areas.sum() < areas.size
    # ... and they are the areas the synthetic plumes were spread over
    assert np.array_equal(areas, truth.ihs_area_true.values > 0)
    # the accuracy promise on known truth, computed here from the stores with numpy alone
    mean_est, mean_true = estimate.mean(), true.mean()
    assert abs(mean_est - mean_true) <= 0.10 * mean_true  # |mean bias| <= 10 %
    assert np.corrcoef(estimate.mean(axis=0), true.mean(axis=0))[0, 1] >= 0.9  # spatial r
    years = truth.time.dt.year.values
    annual = [(estimate[years == y].mean(), true[years == y].mean()) for y in np.unique(years)]
    assert np.corrcoef(np.array(annual).T)[0, 1] >= 0.9  # annual r
    months = truth.time.dt.month.values
    profile = [(estimate[months == m].mean(), true[months == m].mean()) for m in range(1, 13)]
    assert np.corrcoef(np.array(profile).T)[0, 1] >= 0.9  # month-of-year profile r
    total = truth.pm25.values[:, areas].astype(np.float64)
    share_error_pp = 100 * (estimate.sum() - true.sum()) / total.sum()
    assert abs(share_error_pp) <= 3.0
    assert np.corrcoef(estimate.mean(axis=1), true.mean(axis=1))[0, 1] >= 0.6  # daily r


def test_report_and_tables_of_the_run_match_the_stores(tiny_run):
    import pandas as pd
    from matplotlib.image import imread

    run_dir, _ = tiny_run
    index = (run_dir / "report" / "index.html").read_text()
    figures = json.loads((run_dir / "report" / "figures.json").read_text())
    assert len(figures) >= 8
    for name, meta in figures.items():
        assert name in index
        image = imread(run_dir / "report" / "figures" / name)
        assert image.shape[:2] == (meta["height_px"], meta["width_px"]), name
    # annual table against an independent computation from the stores
    annual = pd.read_csv(run_dir / "stats" / "annual.csv").set_index("year")
    areas = xr.open_zarr(run_dir / "stage1.zarr").ihs_mask.values.astype(bool)
    stage3 = xr.open_zarr(run_dir / "stage3.zarr")
    cubes = xr.open_zarr(run_dir / "cubes.zarr")
    years = stage3.time.dt.year.values
    for year in np.unique(years):
        in_year = years == year
        ihs = stage3.pm25_ihs.values[in_year][:, areas].astype(np.float64)
        total = cubes.pm25.values[in_year][:, areas].astype(np.float64)
        assert annual.loc[year, "pm25_ihs"] == pytest.approx(ihs.mean(), rel=1e-5)
        assert annual.loc[year, "share_pct"] == pytest.approx(100 * ihs.sum() / total.sum(), rel=1e-5)


def test_allocation_stage_uses_the_runs_city_pm25(tiny_run, tmp_path):
    import pandas as pd

    run_dir, _ = tiny_run
    city_pm25 = pd.read_csv(run_dir / "stats" / "city_pm25.csv")
    rng = np.random.default_rng(7)
    index = tmp_path / "index.csv"
    pd.DataFrame({"city": city_pm25.city, "population": rng.uniform(100, 1000, len(city_pm25)),
                  "gdp": rng.uniform(1000, 5000, len(city_pm25))}).to_csv(index, index=False)
    config = tmp_path / "alloc.yaml"
    # the run's own configuration plus the allocation keys: the stores it reads must match (fingerprints)
    config.write_text(f"run_dir: {run_dir}\n" + (run_dir.parent / "tiny.yaml").read_text()
                      + f"allocation: {{index: {index}, q: 0.4, p_min: 0.3, p_max: 0.5}}\n")
    result = subprocess.run([sys.executable, "-m", "ihs_hpc.cli", "run", str(config), "--stages", "allocate",
                             "--cluster", "none"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    plan = pd.read_csv(run_dir / "allocation" / "plan.csv")
    assert plan.pm25_target.sum() == pytest.approx(0.6 * city_pm25.pm25.sum(), rel=1e-9)
    assert plan.reduction_rate.between(0.3 - 1e-9, 0.5 + 1e-9).all()
    gini = pd.read_csv(run_dir / "allocation" / "gini.csv")
    assert (gini.gini_optimised <= gini.gini_initial + 1e-12).all()
