"""Order statistics shared by the kernels: quickselect without a full sort, binary search in sorted data."""
import numba


@numba.njit(cache=True)
def select_kth(a, lo, hi, k):
    """Reorder ``a[lo:hi+1]`` so that ``a[k]`` is its k-th smallest value, everything left of
    ``k`` is ``<= a[k]`` and everything right of it ``>= a[k]``; return ``a[k]`` (no NaN)."""
    while hi > lo:
        mid = (lo + hi) // 2
        # median of three as pivot
        x, y, z = a[lo], a[mid], a[hi]
        if x > y:
            x, y = y, x
        if y > z:
            y = z
            if x > y:
                y = x
        pivot = y
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                tmp = a[i]
                a[i] = a[j]
                a[j] = tmp
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@numba.njit(cache=True)
def count_below(a, n, value):
    """Number of entries of the ascending ``a[:n]`` below ``value``: the first position holding a value
    ``>= value`` (``n`` if none), by binary search."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo
