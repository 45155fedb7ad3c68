"""Stage-1 region growing from IHS pixels over a DEM (numba kernels).

Seed 000, section 2.3.2, steps (2)–(3): growth starts at the pixel of an industrial heat source
(the *source*); a growth point's eight neighbours that are **strictly lower** than the growth
point join the area and become growth points themselves; a pixel joins only if the great-circle
distance between its centre and the source pixel's centre is at most ``max_km``; NaN DEM pixels
are never entered.  A pixel reachable along several paths joins once.

The final area is the set of pixels reachable from the source by an 8-connected, strictly
descending path whose every pixel lies within the distance cap, so the result does not depend
on the order in which growth points are expanded.

Each source is grown independently (breadth first, explicit queue, a visited *stamp* array
that holds the index of the last source that entered the pixel, so it never has to be
cleared).  Sources are spread over threads in ``n_chunks`` strided chunks; each chunk owns one
stamp array (``ny * nx`` int32) and one queue (``ny * nx`` int64), i.e. 12 bytes per pixel per
chunk.  Two passes of the same kernel: the
first counts the members of each source, the second writes them (in the order they joined) at
prefix-sum offsets into one flat array; the caller sorts them.

Distances: haversine on a sphere of radius :data:`EARTH_RADIUS_KM` (IUGG mean Earth radius
R1 = 6371.0088 km).
"""
from __future__ import annotations

import numba
import numpy as np

#: Mean Earth radius (IUGG R1) in km used by the haversine distance cap.
EARTH_RADIUS_KM = 6371.0088

_NEIGHBOUR_DR = np.array([-1, -1, -1, 0, 0, 1, 1, 1], dtype=np.int64)
_NEIGHBOUR_DC = np.array([-1, 0, 1, -1, 1, -1, 0, 1], dtype=np.int64)


@numba.njit(cache=True)
def haversine_km(lat1_rad, lon1_rad, cos_lat1, lat2_rad, lon2_rad, cos_lat2):
    """Great-circle distance (km) between two points given in radians (haversine formula)."""
    s_lat = np.sin(0.5 * (lat2_rad - lat1_rad))
    s_lon = np.sin(0.5 * (lon2_rad - lon1_rad))
    a = s_lat * s_lat + cos_lat1 * cos_lat2 * s_lon * s_lon
    if a > 1.0:
        a = 1.0
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


@numba.njit(cache=True)
def _grow_one(dem, lat_rad, lon_rad, cos_lat, seed_r, seed_c, max_km, stamp, stamp_value, queue):
    """Grow one source breadth first; return the number of members.

    ``queue`` (capacity ``ny * nx``) receives the flat indices of the members in the order they
    joined, the source first.
    """
    ny, nx = dem.shape
    lat0 = lat_rad[seed_r]
    lon0 = lon_rad[seed_c]
    cos0 = cos_lat[seed_r]
    seed_flat = seed_r * nx + seed_c
    stamp[seed_flat] = stamp_value
    queue[0] = seed_flat
    head = 0
    tail = 1
    while head < tail:
        cur = queue[head]
        head += 1
        r = cur // nx
        c = cur - r * nx
        h = dem[r, c]
        for m in range(8):
            rr = r + _NEIGHBOUR_DR[m]
            cc = c + _NEIGHBOUR_DC[m]
            if rr < 0 or rr >= ny or cc < 0 or cc >= nx:
                continue
            nb = rr * nx + cc
            if stamp[nb] == stamp_value:
                continue
            hn = dem[rr, cc]
            if not (hn < h):  # strictly lower; False for NaN
                continue
            if haversine_km(lat0, lon0, cos0, lat_rad[rr], lon_rad[cc], cos_lat[rr]) > max_km:
                continue
            stamp[nb] = stamp_value
            queue[tail] = nb
            tail += 1
    return tail


@numba.njit(cache=True, parallel=True)
def region_grow_pass(dem, lat_rad, lon_rad, seeds_r, seeds_c, max_km, n_chunks, write,
                     n_members, offsets, members):
    """Grow every source; count its members (``write=False``) or write them (``write=True``).

    Seed 000, section 2.3.2.  Called twice: pass 1 fills ``n_members``; the caller turns the
    counts into prefix-sum ``offsets`` and calls pass 2, which writes the members of source
    ``i`` in the order they joined (the source first) into ``members[offsets[i]:offsets[i + 1]]``.

    Parameters
    ----------
    dem : ndarray, shape (ny, nx), float64
        Elevation; NaN pixels are never entered.
    lat_rad, lon_rad : ndarray, shape (ny,) and (nx,), float64
        Cell-centre latitude and longitude in radians.
    seeds_r, seeds_c : ndarray, shape (n,), int64
        Row and column of each source pixel (already validated: inside the grid, finite DEM).
    max_km : float
        Distance cap from the source pixel centre (km, haversine).
    n_chunks : int
        Number of independent work chunks (each owns an ``ny * nx`` int32 stamp array);
        source ``i`` belongs to chunk ``i % n_chunks``.
    write : bool
        False for pass 1 (counts), True for pass 2 (members).
    n_members : ndarray, shape (n,), int64
        Pass 1 output: member count per source, the source included.
    offsets : ndarray, shape (n + 1,), int64
        Pass 2 input (ignored in pass 1).
    members : ndarray, shape (offsets[-1],), int64
        Pass 2 output: flat pixel indices ``row * nx + col`` (ignored in pass 1).
    """
    ny, nx = dem.shape
    n_seeds = seeds_r.shape[0]
    cos_lat = np.cos(lat_rad)
    for chunk in numba.prange(n_chunks):
        stamp = np.zeros(ny * nx, dtype=np.int32)
        queue = np.empty(ny * nx, dtype=np.int64)
        for i in range(chunk, n_seeds, n_chunks):
            n = _grow_one(dem, lat_rad, lon_rad, cos_lat, seeds_r[i], seeds_c[i], max_km,
                                 stamp, np.int32(i + 1), queue)
            if write:
                start = offsets[i]
                members[start:start + n] = queue[:n]
            else:
                n_members[i] = n


@numba.njit(cache=True)
def accumulate_counts(members, count_flat):
    """Add one to ``count_flat[p]`` for every entry ``p`` of ``members`` (serial)."""
    for j in range(members.shape[0]):
        count_flat[members[j]] += 1
