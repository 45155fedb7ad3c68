"""Where the project's shared data files are: an explicit setting, never a path guessed from the source tree.

The shared data (a coarse DEM of China, the Beijing–Tianjin–Hebei city polygons, reference fixtures)
does not ship with the package. Library code finds it only through the environment variable
:data:`ENV_VAR` (``IHS_SHARED_DATA``), the folder holding ``dem/``, ``bth_boundaries/``, ... (e.g.
``/work/shared/data``). A file asked for while the variable is unset, or missing from that folder,
is a :class:`SharedDataError` that says which file, what needs it and what to set.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

__all__ = ["ENV_VAR", "SharedDataError", "shared_data_dir", "shared_data_file", "optional_shared_data_file"]

#: Environment variable naming the shared data folder.
ENV_VAR = "IHS_SHARED_DATA"


class SharedDataError(ConfigError):
    """A shared data file is needed but the setting is missing or the file is not where it says."""


def shared_data_dir() -> Path | None:
    """The shared data folder.

    Returns
    -------
    pathlib.Path or None
        The folder ``$IHS_SHARED_DATA`` names; None when the variable is unset or empty.
    """
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser() if value else None


def _located(relative: str, needed_for: str, root: Path) -> Path:
    path = root / relative
    if not path.is_file():
        raise SharedDataError(f"{path}: not found — {needed_for} needs the shared data file {relative!r}, and "
                              f"{ENV_VAR}={root} does not hold it; set {ENV_VAR} to the folder holding "
                              f"{relative.split('/')[0]}/ (e.g. /work/shared/data)")
    return path


def shared_data_file(relative: str, *, needed_for: str) -> Path:
    """Path of a shared data file that is required.

    Parameters
    ----------
    relative : str
        Path inside the shared data folder (``"bth_boundaries/bth_13_cities_cnmaps.geojson"``).
    needed_for : str
        What needs it, for the error message (``"the 'bth' city layout"``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    SharedDataError
        ``IHS_SHARED_DATA`` is unset, or the file is not in the folder it names.
    """
    root = shared_data_dir()
    if root is None:
        raise SharedDataError(f"{needed_for} needs the shared data file {relative!r}: set {ENV_VAR} to the folder "
                              f"holding {relative.split('/')[0]}/ (e.g. export {ENV_VAR}=/work/shared/data)")
    return _located(relative, needed_for, root)


def optional_shared_data_file(relative: str, *, needed_for: str) -> Path | None:
    """Path of a shared data file that has a documented stand-in (the analytic terrain, say).

    Parameters
    ----------
    relative, needed_for : str
        As :func:`shared_data_file`.

    Returns
    -------
    pathlib.Path or None
        None when ``IHS_SHARED_DATA`` is unset.

    Raises
    ------
    SharedDataError
        ``IHS_SHARED_DATA`` is set but the file is not in that folder (a wrong setting is not
        silently replaced by the stand-in).
    """
    root = shared_data_dir()
    return None if root is None else _located(relative, needed_for, root)
