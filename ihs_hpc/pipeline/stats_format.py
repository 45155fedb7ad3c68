"""Number formatting shared by the statistics tables and ``stats.json``."""
from __future__ import annotations

import numpy as np


def fmt_number(value, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals, ``n/a`` for ``None``."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def finite_or_none(value):
    """``value`` as a float, ``None`` when not finite (for JSON)."""
    value = float(np.asarray(value, dtype=float))
    return value if np.isfinite(value) else None


def json_default(obj):
    """``json.dumps`` fallback for numpy scalars and arrays (non-finite floats as ``null``)."""
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return str(obj)
