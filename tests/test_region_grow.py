"""Region growing (seed 000, section 2.3.2) against a plain-Python breadth-first reference."""
from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ihs_hpc.ops.region_grow import (
    EARTH_RADIUS_KM,
    masks_by_year,
    region_grow,
    union_mask,
)

NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def haversine_km(lat1, lon1, lat2, lon2):
    """Independent great-circle distance in km (degrees in)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2) - math.radians(lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(a, 1.0)))


def reference_grow(dem, lat, lon, seed, max_km):
    """Paper steps (2)-(3) literally: BFS into strictly lower neighbours within the cap."""
    ny, nx = dem.shape
    r0, c0 = seed
    members = {(r0, c0)}
    queue = deque([(r0, c0)])
    while queue:
        r, c = queue.popleft()
        for dr, dc in NEIGHBOURS:
            rr, cc = r + dr, c + dc
            if not (0 <= rr < ny and 0 <= cc < nx) or (rr, cc) in members:
                continue
            if math.isnan(dem[rr, cc]) or not dem[rr, cc] < dem[r, c]:
                continue
            if haversine_km(lat[r0], lon[c0], lat[rr], lon[cc]) > max_km:
                continue
            members.add((rr, cc))
            queue.append((rr, cc))
    return np.sort(np.array([r * nx + c for r, c in members], dtype=np.int64))


def random_dem(rng, ny, nx, *, levels=None, nan_fraction=0.05):
    """Smooth hills + noise, optionally quantised to ``levels`` heights (plateaus), NaN holes."""
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    dem = np.zeros((ny, nx))
    for _ in range(4):
        cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
        s = rng.uniform(6, 15)
        dem += rng.uniform(100, 400) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    dem += rng.normal(0, 0.5, size=(ny, nx))
    if levels is not None:
        dem = np.round(dem / (np.ptp(dem) / levels))
    dem[rng.random((ny, nx)) < nan_fraction] = np.nan
    return dem


def grid(rng, ny, nx, descending=True):
    lat0, lon0 = rng.uniform(36, 42), rng.uniform(113, 119)
    step = 0.01
    lat = lat0 + step * np.arange(ny) * (-1 if descending else 1)
    lon = lon0 + step * np.arange(nx)
    return lat, lon


def random_seeds(rng, dem, n):
    ok = np.argwhere(~np.isnan(dem))
    return ok[rng.choice(len(ok), size=n, replace=False)]


@pytest.mark.parametrize(
    "seed, levels, descending, max_km",
    [(0, None, True, 10.0), (1, 60, True, 10.0), (2, 20, False, 6.0), (3, None, False, 25.0)],
)
def test_matches_reference_bfs(seed, levels, descending, max_km):
    rng = np.random.default_rng(seed)
    ny, nx = 45, 52
    dem = random_dem(rng, ny, nx, levels=levels)
    lat, lon = grid(rng, ny, nx, descending)
    seeds = random_seeds(rng, dem, 25)
    seeds = np.vstack([seeds, seeds[:2]])  # duplicated sources are separate areas
    result = region_grow(dem, lat, lon, seeds, max_km=max_km)

    expected_count = np.zeros(ny * nx, dtype=np.int32)
    assert len(result.members) == len(seeds)
    for i, s in enumerate(seeds):
        ref = reference_grow(dem, lat, lon, tuple(s), max_km)
        np.testing.assert_array_equal(result.members[i], ref)
        expected_count[ref] += 1
    assert result.count.dtype == np.int32
    np.testing.assert_array_equal(result.count.ravel(), expected_count)
    np.testing.assert_array_equal(union_mask(result.count), expected_count.reshape(ny, nx) > 0)
    # the test DEMs must exercise growth, plateaus and the cap
    assert max(m.size for m in result.members) > 5


def test_members_within_cap_and_descending_paths():
    rng = np.random.default_rng(11)
    ny, nx = 60, 70
    dem = random_dem(rng, ny, nx, levels=60, nan_fraction=0.03)
    lat, lon = grid(rng, ny, nx)
    seeds = random_seeds(rng, dem, 30)
    max_km = 8.0
    result = region_grow(dem, lat, lon, seeds, max_km=max_km)
    capped = 0
    for i, (r0, c0) in enumerate(seeds):
        members = result.members[i]
        assert members.dtype == np.int64
        assert np.all(np.diff(members) > 0)
        rows, cols = np.unravel_index(members, (ny, nx))
        assert (r0 * nx + c0) in set(members.tolist())
        for r, c in zip(rows, cols):
            assert haversine_km(lat[r0], lon[c0], lat[r], lon[c]) <= max_km
            assert not np.isnan(dem[r, c])
        # every member is reachable by a strictly descending path inside the member set
        member_set = set(zip(rows.tolist(), cols.tolist()))
        reached = {(r0, c0)}
        stack = [(r0, c0)]
        while stack:
            r, c = stack.pop()
            for dr, dc in NEIGHBOURS:
                nb = (r + dr, c + dc)
                if nb in member_set and nb not in reached and dem[nb] < dem[r, c]:
                    reached.add(nb)
                    stack.append(nb)
        assert reached == member_set
        # did any area stop at the cap? (a lower, finite neighbour beyond max_km)
        for r, c in member_set:
            for dr, dc in NEIGHBOURS:
                rr, cc = r + dr, c + dc
                if (0 <= rr < ny and 0 <= cc < nx and (rr, cc) not in member_set
                        and dem[rr, cc] < dem[r, c]):
                    assert haversine_km(lat[r0], lon[c0], lat[rr], lon[cc]) > max_km
                    capped += 1
    assert capped > 0


@settings(max_examples=40, deadline=None)
@given(
    ny=st.integers(1, 9),
    nx=st.integers(1, 9),
    data=st.data(),
)
def test_property_small_grids(ny, nx, data):
    heights = data.draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, 3.0, np.nan]),
                                 min_size=ny * nx, max_size=ny * nx))
    dem = np.array(heights).reshape(ny, nx)
    finite = np.argwhere(~np.isnan(dem))
    if len(finite) == 0:
        dem[0, 0] = 5.0
        finite = np.array([[0, 0]])
    picks = data.draw(st.lists(st.integers(0, len(finite) - 1), min_size=1, max_size=4))
    seeds = finite[picks]
    spacing = data.draw(st.sampled_from([0.005, 0.01, 0.03]))
    max_km = data.draw(st.sampled_from([0.0, 1.5, 3.0, 10.0]))
    lat = 40.0 - spacing * np.arange(ny)
    lon = 116.0 + spacing * np.arange(nx)
    result = region_grow(dem, lat, lon, seeds, max_km=max_km)
    expected = np.zeros(ny * nx, dtype=np.int32)
    for i, s in enumerate(seeds):
        ref = reference_grow(dem, lat, lon, tuple(s), max_km)
        np.testing.assert_array_equal(result.members[i], ref)
        expected[ref] += 1
    np.testing.assert_array_equal(result.count.ravel(), expected)


def test_masks_by_year_counts_operating_areas():
    rng = np.random.default_rng(5)
    ny, nx = 30, 35
    dem = random_dem(rng, ny, nx)
    lat, lon = grid(rng, ny, nx)
    seeds = random_seeds(rng, dem, 12)
    result = region_grow(dem, lat, lon, seeds)
    operating = rng.random((12, 4)) < 0.6
    yearly = masks_by_year(result.members, operating, (ny, nx))
    assert yearly.shape == (4, ny, nx) and yearly.dtype == np.int32
    for year in range(4):
        expected = np.zeros((ny, nx), dtype=np.int32)
        for i in range(12):
            if operating[i, year]:
                rows, cols = result.member_rc(i)
                expected[rows, cols] += 1
        np.testing.assert_array_equal(yearly[year], expected)
    all_on = masks_by_year(result.members, np.ones((12, 1), bool), (ny, nx))
    np.testing.assert_array_equal(all_on[0], result.count)


def test_clear_errors():
    dem = np.arange(20.0).reshape(4, 5)
    dem[1, 2] = np.nan
    lat = np.linspace(40, 39.97, 4)
    lon = np.linspace(116, 116.04, 5)
    with pytest.raises(ValueError, match=r"seed 1 at \(row=4, col=0\) lies outside"):
        region_grow(dem, lat, lon, [[0, 0], [4, 0]])
    with pytest.raises(ValueError, match=r"seed 0 at \(row=1, col=2\) lies on a NaN"):
        region_grow(dem, lat, lon, [[1, 2]])
    with pytest.raises(ValueError, match="lat has length 3"):
        region_grow(dem, lat[:3], lon, [[0, 0]])
    with pytest.raises(ValueError, match="lon has length 4"):
        region_grow(dem, lat, lon[:4], [[0, 0]])
    with pytest.raises(ValueError, match=r"seeds_rc must have shape \(n, 2\)"):
        region_grow(dem, lat, lon, [0, 0])
    with pytest.raises(ValueError, match="operating has 2 rows"):
        masks_by_year([np.array([0])], np.ones((2, 3), bool), (4, 5))
