"""The xarray/dask layer of the public API: labelled, lazy versions of the numpy functions.

The xskillscore pattern: the numpy functions of :mod:`ihs_hpc.ops` and :mod:`ihs_hpc.stats` stay the
core, and each function here is a thin ``xarray.apply_ufunc(..., dask="parallelized")`` wrapper
around one of them. The public names of the package (``ihs_hpc.stl``, ``ihs_hpc.mann_kendall``, ...)
are the functions of these modules: they take an :class:`xarray.DataArray` with ``dim=`` (default
``"time"``) and return DataArrays or Datasets with the input's coordinates and CF attributes, lazy
when the input is dask-backed; given numpy arrays they return exactly what the numpy functions
return.

Modules, one per area (seed 000, DOI 10.3390/atmos15010131):

* :mod:`.decomposition` — :func:`~.decomposition.stl` (eq. 1), :func:`~.decomposition.stl_baseline`
  (eq. 2);
* :mod:`.regression` — :func:`~.regression.mlr` (eq. 3), :func:`~.regression.remove_met` (eq. 4);
* :mod:`.outliers` — :func:`~.outliers.iqr_outliers` (section 2.3.1);
* :mod:`.statistics` — :func:`~.statistics.mann_kendall`, :func:`~.statistics.sens_slope`,
  :func:`~.statistics.mann_whitney_u` (eq. 11), :func:`~.statistics.pearson` (eq. 12),
  :func:`~.statistics.morans_i` (eq. 13);
* :mod:`.apply` — what the wrappers share: dimension and chunk checks, ``apply_ufunc`` into a Dataset.

Dask input must hold each series whole: the core dimension (``dim``; ``lat``/``lon`` for Moran's I)
in one chunk, the other dimensions chunked as wished. A core dimension split into several chunks is
an error that says how to rechunk (it is not rechunked silently: that can multiply memory).
"""
