"""ihs_hpc: PM2.5 from industrial heat sources, pixel by pixel and day by day, at HPC scale.

The public API below imports no torch; the U-ConvLSTM lives in :mod:`ihs_hpc.ml`.
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("ihs_hpc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["__version__"]
