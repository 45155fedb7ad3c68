"""The statistics of seed 000, section 2.3.5, for labelled data.

Mann–Kendall and Sen's slope (trends), Mann–Whitney U (eq. 11), Pearson (eq. 12) and global Moran's I
(eq. 13) of seed 000 (DOI 10.3390/atmos15010131). The numbers come from :mod:`ihs_hpc.stats`, one
call per dask chunk; each result's fields become the variables of a Dataset.
"""
from __future__ import annotations

import numpy as np

from ihs_hpc import stats as np_stats
from ihs_hpc.xr.apply import (
    PAPER_DOI,
    apply_to_dataset,
    check_core_dims,
    describe,
    is_labelled,
    reject_axis_for_labelled,
    reject_dim_for_arrays,
    require_dataarray,
)

__all__ = ["mann_kendall", "sens_slope", "mann_whitney_u", "pearson", "morans_i"]

_F8 = np.dtype(np.float64)
#: dtype of each result field that is not float64
_DTYPES = {"trend": np.dtype("<U10"), "h": np.dtype(bool)}
#: (long_name, units) of each result field; ``None`` units: those of the input
_FIELDS = {
    "trend": ("Mann-Kendall trend: increasing, decreasing or no trend", None),
    "h": ("trend significant at level alpha", None),
    "p": ("two-sided p-value of the Mann-Kendall test", "1"),
    "z": ("normalised Mann-Kendall statistic", "1"),
    "tau": ("Kendall's tau", "1"),
    "s": ("Mann-Kendall score S", "1"),
    "var_s": ("tie-corrected variance of S", "1"),
    "slope": ("Sen's slope per step along the series dimension", None),
    "intercept": ("intercept of the Kendall-Theil line", "input"),
    "slope_low": ("lower limit of the confidence interval of Sen's slope", None),
    "slope_high": ("upper limit of the confidence interval of Sen's slope", None),
    "statistic": ("test statistic", "1"),
    "pvalue": ("p-value", "1"),
}


def _field_block(*values, func, fields, **kwargs):
    """Run ``func`` on numpy blocks and return its ``fields`` as arrays of the block's batch shape."""
    result = func(*values, axis=-1, **kwargs)
    return tuple(np.asarray(getattr(result, name), dtype=_DTYPES.get(name, _F8)) for name in fields)


def _result_dataset(func_name, func, args, dim, fields, kwargs, *, exclude=False, long_names=None):
    """The fields of ``func``'s result along ``dim`` of the DataArrays ``args``, as a Dataset."""
    dim = dim or "time"
    args = [require_dataarray(func_name, a, name) for a, name in zip(args, ("x", "y"))]
    func(*[np.zeros(2)] * len(args), axis=-1, **kwargs)  # the numpy function checks the options, before any graph
    for a, name in zip(args, ("x", "y")):
        check_core_dims(func_name, a, [dim], arg=name)
    ds = apply_to_dataset(_field_block, args, input_core_dims=[[dim]] * len(args),
                          outputs={f: ([], _DTYPES.get(f, _F8)) for f in fields},
                          kwargs=dict(func=func, fields=fields, **kwargs),
                          exclude_dims=frozenset({dim}) if exclude else frozenset(), template=args[0])
    units = args[0].attrs.get("units")
    for name in fields:
        long_name, field_units = _FIELDS[name]
        if long_names and name in long_names:
            long_name = long_names[name]
        if name.startswith("slope") and units:
            long_name += f" ({units} per step of {dim!r})"
        describe(ds[name], long_name, units if field_units == "input" else field_units)
    ds.attrs.update(references=PAPER_DOI, series_dim=dim,
                    **{k: int(v) if isinstance(v, bool) else v for k, v in kwargs.items()})
    return ds


def mann_kendall(x, alpha=0.05, axis=-1, *, dim=None):
    """Mann–Kendall trend test with Sen's slope (seed 000, section 2.3.5), numpy or xarray.

    As ``pymannkendall.original_test`` for every series (seed 000, DOI 10.3390/atmos15010131), with
    :func:`ihs_hpc.stats.mann_kendall`.

    Parameters
    ----------
    x : numpy.ndarray or xarray.DataArray
        numpy: exactly :func:`ihs_hpc.stats.mann_kendall` (series along ``axis``). DataArray: series
        along ``dim``; dask-backed data stays lazy (``dim`` in one chunk). NaN = missing.
    alpha : float, default 0.05
        Significance level.
    axis : int, default -1
        numpy only.
    dim : str, optional
        DataArray only: the series dimension (default ``"time"``).

    Returns
    -------
    MannKendallResult or xarray.Dataset
        xarray input: a Dataset with ``trend`` (string), ``h`` (bool), ``p``, ``z``, ``tau``, ``s``,
        ``var_s``, ``slope``, ``intercept`` over the other dimensions of ``x``.

    Raises
    ------
    ValueError
        Bad ``alpha``, +-inf, or ``dim`` missing or split into several dask chunks.
    TypeError
        ``dim`` with numpy input, ``axis`` with xarray input.
    """
    if not is_labelled(x):
        reject_dim_for_arrays("mann_kendall", dim)
        return np_stats.mann_kendall(x, alpha=alpha, axis=axis)
    reject_axis_for_labelled("mann_kendall", axis)
    return _result_dataset("mann_kendall", np_stats.mann_kendall, [x], dim,
                           np_stats.MannKendallResult._fields, {"alpha": alpha})


def sens_slope(x, alpha=0.05, axis=-1, *, dim=None):
    """Sen's slope, Kendall–Theil intercept and the slope's confidence interval, numpy or xarray.

    As ``pymannkendall.sens_slope`` and ``scipy.stats.theilslopes`` for every series (seed 000,
    DOI 10.3390/atmos15010131, section 2.3.5), with :func:`ihs_hpc.stats.sens_slope`.

    Parameters
    ----------
    x, axis, dim
        As :func:`mann_kendall`.
    alpha : float, default 0.05
        1 - confidence level of the interval.

    Returns
    -------
    SensSlopeResult or xarray.Dataset
        xarray input: ``slope``, ``intercept``, ``slope_low``, ``slope_high``.

    Raises
    ------
    ValueError, TypeError
        As :func:`mann_kendall`.
    """
    if not is_labelled(x):
        reject_dim_for_arrays("sens_slope", dim)
        return np_stats.sens_slope(x, alpha=alpha, axis=axis)
    reject_axis_for_labelled("sens_slope", axis)
    return _result_dataset("sens_slope", np_stats.sens_slope, [x], dim, np_stats.SensSlopeResult._fields,
                           {"alpha": alpha})


def mann_whitney_u(x, y, alternative="two-sided", use_continuity=True, axis=-1, *, dim=None):
    """Mann–Whitney U rank test of two samples (seed 000, eq. 11), numpy or xarray.

    As ``scipy.stats.mannwhitneyu(x, y, method="asymptotic")`` (seed 000,
    DOI 10.3390/atmos15010131, eq. 11), with :func:`ihs_hpc.stats.mann_whitney_u`.

    Parameters
    ----------
    x, y : numpy.ndarray or xarray.DataArray
        The samples along ``axis`` (numpy) or ``dim`` (xarray; the two may have different lengths
        and coordinates along ``dim``, which are not aligned; the other dimensions broadcast).
    alternative : {"two-sided", "less", "greater"}
    use_continuity : bool, default True
    axis : int, default -1
        numpy only.
    dim : str, optional
        xarray only: the sample dimension (default ``"time"``).

    Returns
    -------
    MannWhitneyUResult or xarray.Dataset
        xarray input: ``statistic`` (U of ``x``) and ``pvalue``.

    Raises
    ------
    ValueError, TypeError
        As :func:`ihs_hpc.stats.mann_whitney_u`; ``dim`` missing or split into dask chunks.
    """
    if not is_labelled(x) and not is_labelled(y):
        reject_dim_for_arrays("mann_whitney_u", dim)
        return np_stats.mann_whitney_u(x, y, alternative=alternative, use_continuity=use_continuity, axis=axis)
    reject_axis_for_labelled("mann_whitney_u", axis)
    return _result_dataset("mann_whitney_u", np_stats.mann_whitney_u, [x, y], dim, ("statistic", "pvalue"),
                           {"alternative": alternative, "use_continuity": use_continuity}, exclude=True,
                           long_names={"statistic": "Mann-Whitney U of the first sample (eq. 11)"})


def pearson(x, y, alternative="two-sided", axis=-1, *, dim=None):
    """Pearson's correlation coefficient and its p-value (seed 000, eq. 12), numpy or xarray.

    As ``scipy.stats.pearsonr`` with NaN pairs dropped (seed 000, DOI 10.3390/atmos15010131,
    eq. 12), with :func:`ihs_hpc.stats.pearson`.

    Parameters
    ----------
    x, y : numpy.ndarray or xarray.DataArray
        Series along ``axis`` (numpy) or ``dim`` (xarray: aligned on their coordinates like
        :func:`xarray.corr`, i.e. an inner join; other dimensions broadcast).
    alternative : {"two-sided", "less", "greater"}
    axis : int, default -1
        numpy only.
    dim : str, optional
        xarray only: the series dimension (default ``"time"``).

    Returns
    -------
    PearsonResult or xarray.Dataset
        xarray input: ``statistic`` (r) and ``pvalue``.

    Raises
    ------
    ValueError, TypeError
        As :func:`ihs_hpc.stats.pearson`; ``dim`` missing or split into dask chunks.
    """
    if not is_labelled(x) and not is_labelled(y):
        reject_dim_for_arrays("pearson", dim)
        return np_stats.pearson(x, y, alternative=alternative, axis=axis)
    reject_axis_for_labelled("pearson", axis)
    return _result_dataset("pearson", np_stats.pearson, [x, y], dim, ("statistic", "pvalue"),
                           {"alternative": alternative}, long_names={"statistic": "Pearson's r (eq. 12)"})


def _moran_block(values, **kwargs):
    result = np_stats.morans_i(values, **kwargs)
    return tuple(np.asarray(getattr(result, name), dtype=_F8) for name in _MORAN_FIELDS)


_MORAN_FIELDS = ("I", "EI", "VI_norm", "seI_norm", "z_norm", "p_norm", "VI_rand", "seI_rand", "z_rand", "p_rand",
                 "n", "n_islands", "s0", "s1", "s2")


def morans_i(raster, contiguity="queen", transform="r", two_tailed=True, *, dims=None):
    """Global Moran's I of a raster or a stack of rasters (seed 000, eq. 13), numpy or xarray.

    As ``esda.Moran(values, lat2W(...), transformation, permutations=0)`` over the non-NaN cells
    (seed 000, DOI 10.3390/atmos15010131, eq. 13), with :func:`ihs_hpc.stats.morans_i`.

    Parameters
    ----------
    raster : numpy.ndarray or xarray.DataArray
        numpy: maps on the last two axes. DataArray: maps over ``dims``, one result per index of
        the other dimensions (e.g. per day); dask-backed data stays lazy (``dims`` in one chunk).
    contiguity : {"queen", "rook"}
    transform : {"r", "b"}
    two_tailed : bool, default True
    dims : tuple of str, optional
        DataArray only: the (row, column) dimensions of a map (default ``("lat", "lon")``).

    Returns
    -------
    MoranResult or xarray.Dataset
        xarray input: ``I``, ``EI``, ``VI_norm``, ``seI_norm``, ``z_norm``, ``p_norm``, ``VI_rand``,
        ``seI_rand``, ``z_rand``, ``p_rand``, ``n``, ``n_islands``, ``s0``, ``s1``, ``s2``.

    Raises
    ------
    ValueError, TypeError
        As :func:`ihs_hpc.stats.morans_i`; ``dims`` missing or split into dask chunks.
    """
    if not is_labelled(raster):
        reject_dim_for_arrays("morans_i", dims, "dims")
        return np_stats.morans_i(raster, contiguity=contiguity, transform=transform, two_tailed=two_tailed)
    raster = require_dataarray("morans_i", raster, "raster")
    dims = tuple(dims or ("lat", "lon"))
    if len(dims) != 2:
        raise ValueError(f"morans_i: dims must name the two map dimensions (rows, columns), got {dims!r}")
    check_core_dims("morans_i", raster, dims, arg="raster")
    kwargs = dict(contiguity=contiguity, transform=transform, two_tailed=bool(two_tailed))
    np_stats.morans_i(np.zeros((2, 2)), **kwargs)  # the numpy function checks the options, before any graph
    ds = apply_to_dataset(_moran_block, [raster], input_core_dims=[list(dims)], kwargs=kwargs, template=raster,
                          outputs={name: ([], _F8) for name in _MORAN_FIELDS})
    describe(ds["I"], "global Moran's I (eq. 13)", "1")
    ds.attrs.update(references=f"{PAPER_DOI} (eq. 13); esda.Moran", map_dims=list(dims), **kwargs)
    ds.attrs["two_tailed"] = int(ds.attrs["two_tailed"])
    return ds
