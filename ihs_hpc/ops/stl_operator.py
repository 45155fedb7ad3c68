"""Non-robust STL as a linear operator: a whole tile in one matrix product.

Without robustness loops (``outer_iter == 0``) every step of STL -- loess smoothers with
fixed weights, moving averages, differences -- is linear in the data, so for series of
length ``N`` there are ``N x N`` matrices ``T`` and ``S`` (depending only on ``N`` and the
settings) with ``trend = T @ x`` and ``seasonal = S @ x``; the stage-2 baseline
(seed 000, eq. 2) is ``B @ x`` with ``B = T + S``. For a batch ``X`` (n_series, N):
``baseline = X @ B.T``.

Building: the numba kernel runs on the identity (row ``s`` of ``B.T`` is the response to a
unit impulse at ``s``), batched and parallel. With all jumps equal to 1 STL commutes with
time reversal, so the operators are *centrosymmetric* (``B[N-1-t, N-1-s] = B[t, s]``):
only the first ``ceil(N/2)`` impulses are run (checked against a few reflected ones), half
the matrix is stored, and a batch is applied as two half-size products on the even and odd
parts ``x +/- reverse(x)`` -- half the flops of one dense product.

Caching: on disk in ``$IHS_CACHE_DIR/stl_operators/`` (default
``~/.cache/ihs_hpc/stl_operators/``), one ``.npy`` per component, named by a hash of ``N``,
all settings and a format version, written atomically (temp file + ``os.replace``); and
in memory (LRU, :data:`MEMORY_CACHE_BYTES`).

Applying an operator to a batch (numpy or torch, float64 or float32): :mod:`ihs_hpc.ops.stl_apply`.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from ihs_hpc.ops.stl_core import STLSettings, stl_direct, stl_settings

__all__ = [
    "STLOperator",
    "get_stl_operator",
    "ensure_stl_operator",
    "stl_operators",
    "baseline_operator",
    "operator_pays",
    "operator_for",
    "linear_settings",
    "operator_cache_dir",
    "operator_cache_info",
    "clear_operator_cache",
]

#: Bump when the kernel's arithmetic changes: invalidates cached operators.
FORMAT_VERSION = 1
#: Environment variable naming the cache root.
CACHE_ENV = "IHS_CACHE_DIR"
#: Bytes of operators kept in memory (least recently used dropped first).
MEMORY_CACHE_BYTES = 2 << 30
#: Series longer than this never take the operator path automatically (N^2 memory).
MAX_AUTO_N = 8192
#: Impulses per kernel call while building (bounds the build's memory).
BUILD_CHUNK = 512
OUTPUTS = ("baseline", "trend", "seasonal", "trend_seasonal")

_lock = threading.RLock()
_memory: "collections.OrderedDict[str, STLOperator]" = collections.OrderedDict()
_stats = {"memory_hits": 0, "disk_hits": 0, "builds": 0}
_build_locks: "dict[str, threading.Lock]" = {}


# --------------------------------------------------------------------------- cache plumbing
def operator_cache_dir() -> Path:
    """Directory of cached operators: ``$IHS_CACHE_DIR/stl_operators`` or ``~/.cache/ihs_hpc/stl_operators``."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root) if root else Path.home() / ".cache" / "ihs_hpc"
    return base / "stl_operators"


def operator_key(n: int, settings: STLSettings) -> str:
    """Hash of ``N``, every setting that shapes the linear map, and :data:`FORMAT_VERSION`."""
    fields = settings.as_dict()
    fields.pop("robust")  # only sets iteration defaults, already resolved
    payload = json.dumps({"format": FORMAT_VERSION, "n": int(n), **fields}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _component_path(key: str, component: str) -> Path:
    return operator_cache_dir() / f"stl_{key}.{component}.npy"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` as .npy through a temp file in the same directory + ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def operator_cache_info() -> dict:
    """Counters of the operator caches: memory/disk hits, builds, entries and bytes in memory."""
    with _lock:
        return dict(_stats, entries=len(_memory), bytes=sum(op.nbytes for op in _memory.values()))


def clear_operator_cache(disk: bool = False) -> None:
    """Empty the in-memory operator cache (and the disk cache directory's operators if ``disk``)."""
    with _lock:
        _memory.clear()
        if disk:
            directory = operator_cache_dir()
            if directory.is_dir():
                for path in directory.glob("stl_*.npy"):
                    path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the operator
@dataclasses.dataclass
class STLOperator:
    """Linear maps of non-robust STL for series of length ``n``.

    Attributes
    ----------
    n : int
        Series length.
    settings : STLSettings
        Resolved (linear) settings.
    trend_rows, seasonal_rows : ndarray of float64
        Impulse responses: row ``s`` is the trend / seasonal component of the unit series
        ``e_s``, i.e. rows of ``T.T`` / ``S.T``. Shape ``(ceil(n/2), n)`` when
        :attr:`symmetric` (the rest follows by reflection), else ``(n, n)``.
    symmetric : bool
        Centrosymmetric operators (all jumps 1), applied as two half-size products.
    """

    n: int
    settings: STLSettings
    trend_rows: np.ndarray
    seasonal_rows: np.ndarray
    symmetric: bool
    _factors: dict = dataclasses.field(default_factory=dict, repr=False)
    _torch: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def nbytes(self) -> int:
        """Bytes held (impulse responses and derived factors, numpy side)."""
        total = self.trend_rows.nbytes + self.seasonal_rows.nbytes
        return total + sum(sum(a.nbytes for a in f) for f in self._factors.values())

    def _rows(self, component: str) -> np.ndarray:
        if component == "trend":
            return self.trend_rows
        if component == "seasonal":
            return self.seasonal_rows
        return self.trend_rows + self.seasonal_rows

    def matrix(self, component: str = "baseline") -> np.ndarray:
        """Dense ``(n, n)`` operator ``M`` of ``component`` with ``out = M @ series`` (``X @ M.T`` for a batch).

        Parameters
        ----------
        component : {"baseline", "trend", "seasonal"}
        """
        if component not in ("baseline", "trend", "seasonal"):
            raise ValueError(f"component must be 'baseline', 'trend' or 'seasonal'; got component={component!r}")
        rows = self._rows(component)
        if not self.symmetric:
            return np.ascontiguousarray(rows.T)
        n, m = self.n, self.n // 2
        full = np.empty((n, n))
        full[: rows.shape[0]] = rows
        full[rows.shape[0]:] = rows[:m][::-1, ::-1]
        return np.ascontiguousarray(full.T)

    def factors(self, output: str, precision: str = "float64"):
        """Matrices applied to a batch for ``output`` (cached), in the arithmetic of ``precision``.

        Symmetric: ``(even, odd)`` with ``[x_f + x_b, x_mid] @ even`` and
        ``(x_f - x_b) @ odd`` (``x_f`` the first ``n // 2`` values, ``x_b`` the last ones
        reversed); ``trend_seasonal`` stacks trend and seasonal columns. Otherwise ``(rows,)``
        with ``out = X @ rows``. float32 copies are cached beside the float64 ones.
        """
        if precision != "float64":
            key = f"{output}:{precision}"
            with _lock:
                cached = self._factors.get(key)
            if cached is None:
                cached = tuple(f.astype(precision) for f in self.factors(output))
                with _lock:
                    self._factors[key] = cached
            return cached
        with _lock:
            cached = self._factors.get(output)
            if cached is not None:
                return cached
        components = ("trend", "seasonal") if output == "trend_seasonal" else (output,)
        parts = [self._split(self._rows(c)) for c in components]
        if len(parts) == 1:
            result = parts[0]
        else:
            result = tuple(np.ascontiguousarray(np.hstack([p[i] for p in parts])) for i in range(len(parts[0])))
        with _lock:
            self._factors[output] = result
            _trim()
        return result

    def torch_factors(self, output: str, device, precision: str = "float64"):
        """:meth:`factors` as torch tensors on ``device`` in ``precision`` (cached per output, device, precision)."""
        import torch

        key = (output, str(device), precision)
        with _lock:
            mats = self._torch.get(key)
        if mats is None:
            mats = tuple(torch.from_numpy(f).to(device, getattr(torch, precision)) for f in self.factors(output))
            with _lock:
                self._torch[key] = mats
        return mats

    def _split(self, rows: np.ndarray):
        if not self.symmetric:
            return (np.ascontiguousarray(rows),)
        n, m = self.n, self.n // 2
        h = rows.shape[0]  # m + (n odd)
        p = rows[:m, :m]
        q = rows[:m, n - 1:n - 1 - m:-1]  # q[s, t] = B.T[s, n-1-t] = B.T[n-1-s, t]
        even = np.empty((h, h))
        even[:m, :m] = 0.5 * (p + q)
        if h > m:  # odd n: middle impulse and middle output
            even[m, :m] = rows[m, :m]
            even[:m, m] = rows[:m, m]
            even[m, m] = rows[m, m]
        odd = np.ascontiguousarray(0.5 * (p - q))
        return even, odd


# --------------------------------------------------------------------------- build / load
def _impulse_responses(n: int, settings: STLSettings, impulses: np.ndarray):
    """Trend and seasonal responses (rows) of the kernel to unit impulses at ``impulses``."""
    trend = np.empty((impulses.size, n))
    season = np.empty((impulses.size, n))
    for start in range(0, impulses.size, BUILD_CHUNK):
        idx = impulses[start:start + BUILD_CHUNK]
        eye = np.zeros((idx.size, n))
        eye[np.arange(idx.size), idx] = 1.0
        t, s, _ = stl_direct(eye, settings)
        trend[start:start + idx.size] = t
        season[start:start + idx.size] = s
    return trend, season


def _build(n: int, settings: STLSettings) -> STLOperator:
    all_unit_jumps = settings.seasonal_jump == settings.trend_jump == settings.low_pass_jump == 1
    if all_unit_jumps:
        half = n - n // 2
        checks = np.unique(np.array([n - 1, n - 2, half, (half + n - 1) // 2], dtype=np.int64))
        checks = checks[checks >= half]
        trend, season = _impulse_responses(n, settings, np.concatenate([np.arange(half), checks]))
        t_half, s_half = trend[:half], season[:half]
        scale = max(np.abs(t_half).max(), np.abs(s_half).max(), 1.0)
        mirror_ok = all(
            np.abs(trend[half + i] - t_half[n - 1 - c, ::-1]).max() <= 1e-10 * scale
            and np.abs(season[half + i] - s_half[n - 1 - c, ::-1]).max() <= 1e-10 * scale
            for i, c in enumerate(checks)
        )
        if mirror_ok:
            return STLOperator(n, settings, np.ascontiguousarray(t_half), np.ascontiguousarray(s_half), True)
    trend, season = _impulse_responses(n, settings, np.arange(n))
    return STLOperator(n, settings, trend, season, False)


def _load(n: int, settings: STLSettings, key: str):
    paths = [_component_path(key, c) for c in ("trend", "seasonal")]
    if not all(p.is_file() for p in paths):
        return None
    try:
        trend, season = (np.load(p, allow_pickle=False) for p in paths)
    except (OSError, ValueError):
        return None  # unreadable: rebuild (and overwrite)
    half = n - n // 2
    if trend.shape != season.shape or trend.dtype != np.float64 or trend.shape not in ((half, n), (n, n)):
        return None
    return STLOperator(n, settings, trend, season, trend.shape == (half, n))


def _trim() -> None:
    """Drop least recently used operators past :data:`MEMORY_CACHE_BYTES` (keeps the newest). Hold ``_lock``."""
    while len(_memory) > 1 and sum(o.nbytes for o in _memory.values()) > MEMORY_CACHE_BYTES:
        _memory.popitem(last=False)


def _remember(key: str, op: STLOperator) -> None:
    _memory[key] = op
    _memory.move_to_end(key)
    _trim()


def linear_settings(period, settings_kwargs) -> STLSettings:
    """Resolved STL settings for ``period``; a ``ValueError`` unless they are the linear (non-robust) STL the
    operator exists for."""
    settings = stl_settings(period, **settings_kwargs)
    if not settings.is_linear:
        raise ValueError("the STL operator exists only for the linear (non-robust) STL, i.e. outer_iter == 0 "
                         f"(robust=False and outer_iter=None); got robust={settings.robust}, "
                         f"outer_iter={settings.outer_iter}")
    return settings


def _check_n(n, period: int) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 2 * period:
        raise ValueError(f"n must be an integer >= 2 * period = {2 * period}; got n={n!r}")
    return int(n)


def operator_for(n: int, settings: STLSettings) -> STLOperator:
    """:class:`STLOperator` for length ``n`` and resolved linear ``settings``: memory, disk, or built.

    Threads asking for the same operator at once wait for one build instead of each building it.
    """
    key = operator_key(n, settings)
    with _lock:
        op = _memory.get(key)
        if op is not None:
            _memory.move_to_end(key)
            _stats["memory_hits"] += 1
            return op
        build_lock = _build_locks.setdefault(key, threading.Lock())
    with build_lock:
        with _lock:
            op = _memory.get(key)
            if op is not None:  # built by another thread meanwhile
                _stats["memory_hits"] += 1
                return op
        op = _load(n, settings, key)
        if op is not None:
            with _lock:
                _stats["disk_hits"] += 1
        else:
            op = _build(n, settings)
            _save_atomic(_component_path(key, "trend"), op.trend_rows)
            _save_atomic(_component_path(key, "seasonal"), op.seasonal_rows)
            with _lock:
                _stats["builds"] += 1
        with _lock:
            _remember(key, op)
    return op


def get_stl_operator(n, period, **settings) -> STLOperator:
    """The :class:`STLOperator` for series of length ``n``: from memory, disk, or built (then cached).

    Parameters
    ----------
    n : int
        Series length, >= 2 * period.
    period : int
        Period of the seasonal component.
    **settings
        :func:`ihs_hpc.ops.stl_core.stl_settings` keywords; must give ``outer_iter == 0``.
    """
    resolved = linear_settings(period, settings)
    return operator_for(_check_n(n, resolved.period), resolved)


def ensure_stl_operator(n, period, **settings) -> None:
    """Build and save the operator for length ``n`` unless the disk cache already holds it, without loading it.

    What a driver calls before its workers each need the operator: they load it from the disk cache; the
    driver itself keeps no copy (loading one costs a few tenths of a second and ~200 MB for ten years).
    """
    resolved = linear_settings(period, settings)
    n = _check_n(n, resolved.period)
    key = operator_key(n, resolved)
    if all(_component_path(key, c).is_file() for c in ("trend", "seasonal")):
        return
    operator_for(n, resolved)


def stl_operators(n, period, **settings):
    """Dense trend and seasonal operators ``(T, S)``, each (n, n): ``trend = T @ x``, ``seasonal = S @ x``.

    For a batch ``X`` (n_series, n): ``trend = X @ T.T``. Settings as :func:`get_stl_operator`.
    """
    op = get_stl_operator(n, period, **settings)
    return op.matrix("trend"), op.matrix("seasonal")


def baseline_operator(n, period, **settings) -> np.ndarray:
    """Dense baseline operator ``B = T + S`` (n, n): ``baseline = B @ x`` (eq. 2 of seed 000).

    For a batch ``X`` (n_series, n) the stage-2 baseline is the single product ``X @ B.T``
    (:func:`apply_stl_operator` does the same in half the flops when ``B`` is centrosymmetric).
    """
    return get_stl_operator(n, period, **settings).matrix("baseline")


def operator_pays(n: int, n_series: int, settings: STLSettings) -> bool:
    """Whether ``method="auto"`` takes the operator path for ``n_series`` series of length ``n``.

    True when the STL is linear, ``n <= MAX_AUTO_N``, a product costs fewer
    multiply-adds per series than the kernel (``n / 2`` vs. about
    ``inner_iter * (trend + low_pass + 4 seasonal)`` per time step; BLAS being several
    times more efficient per multiply-add, the kernel side is weighted by 4), and the
    operator is cached (memory or disk) or the batch has at least ``n / 8`` series.
    """
    if not settings.is_linear or n > MAX_AUTO_N or n_series == 0:
        return False
    per_step_kernel = settings.inner_iter * (min(settings.trend, n) + min(settings.low_pass, n)
                                             + 4 * settings.seasonal)
    if n / 2 > 4 * per_step_kernel:
        return False
    key = operator_key(n, settings)
    with _lock:
        if key in _memory:
            return True
    if _component_path(key, "trend").is_file() and _component_path(key, "seasonal").is_file():
        return True
    return n_series >= n / 8
