"""Empirical semivariogram of one gridded day from pixel pairs at short offsets (numba)."""
import numba
import numpy as np


@numba.njit(cache=True)
def offset_semivariance(field, dys, dxs, stride, sums, counts):
    """Accumulate ``0.5·(z(p) − z(p + offset))²`` over valid pairs into ``sums[k]``/``counts[k]``.

    ``field`` (ny, nx) with NaN for missing; offset ``k`` is ``(dys[k], dxs[k])`` cells; anchors ``p``
    are every ``stride``-th row and column. ``sums`` and ``counts`` are zeroed by the caller.
    """
    ny, nx = field.shape
    for k in range(dys.size):
        dy, dx = dys[k], dxs[k]
        s = 0.0
        c = 0
        for r in range(0, ny, stride):
            r2 = r + dy
            if r2 < 0 or r2 >= ny:
                continue
            for col in range(0, nx, stride):
                c2 = col + dx
                if c2 < 0 or c2 >= nx:
                    continue
                a = field[r, col]
                b = field[r2, c2]
                if np.isfinite(a) and np.isfinite(b):
                    d = a - b
                    s += 0.5 * d * d
                    c += 1
        sums[k] = s
        counts[k] = c
