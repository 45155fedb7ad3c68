"""What the xarray wrappers share: input checks and one ``apply_ufunc`` call that returns a Dataset.

Nothing here imports xarray at module import time: ``import ihs_hpc`` stays light, and
:func:`is_labelled` answers False without importing xarray when nobody has (an object cannot be an
xarray object if xarray was never imported).
"""
from __future__ import annotations

import functools
import sys
from typing import Callable, Mapping, Sequence

import numpy as np

#: Reference cited in the attributes of every result (seed 000 of the project).
PAPER_DOI = "doi:10.3390/atmos15010131"


def is_labelled(obj) -> bool:
    """Whether ``obj`` is an xarray object (without importing xarray when nothing has).

    Parameters
    ----------
    obj : object

    Returns
    -------
    bool
        True for an :class:`xarray.DataArray` or :class:`xarray.Dataset`.
    """
    xr = sys.modules.get("xarray")
    return xr is not None and isinstance(obj, (xr.DataArray, xr.Dataset))


def reject_dim_for_arrays(func_name: str, dim, name: str = "dim") -> None:
    """Refuse ``dim=`` for numpy input, which takes ``axis`` (or its series on the last axis).

    Parameters
    ----------
    func_name : str
        Public name, for the message.
    dim : str or None
        What the caller passed.
    name : str
        The keyword's name (``"dim"``, ``"dims"``).

    Raises
    ------
    TypeError
        ``dim`` is not None.
    """
    if dim is not None:
        raise TypeError(f"{func_name}: {name}={dim!r} applies to xarray input only; a numpy array takes its "
                        f"series along `axis` (see the numpy function ihs_hpc.ops / ihs_hpc.stats)")


def reject_axis_for_labelled(func_name: str, axis, default=-1) -> None:
    """Refuse a non-default ``axis`` for xarray input, which names its dimension with ``dim=``.

    Parameters
    ----------
    func_name : str
        Public name, for the message.
    axis : int
        What the caller passed.
    default : int
        The numpy function's default.

    Raises
    ------
    TypeError
        ``axis`` is not the default.
    """
    if axis != default:
        raise TypeError(f"{func_name}: axis={axis!r} applies to numpy input only; name the dimension of an "
                        f"xarray object with dim=")


def require_dataarray(func_name: str, obj, arg: str = "x"):
    """``obj`` itself when it is a DataArray.

    Parameters
    ----------
    func_name : str
        Public name, for the message.
    obj : object
    arg : str
        Argument name, for the message.

    Returns
    -------
    xarray.DataArray

    Raises
    ------
    TypeError
        ``obj`` is another type (a Dataset, say), named in the message.
    """
    import xarray as xr

    if not isinstance(obj, xr.DataArray):
        raise TypeError(f"{func_name}: {arg} must be an xarray.DataArray (or a numpy array), got "
                        f"{type(obj).__module__}.{type(obj).__name__}")
    return obj


def check_core_dims(func_name: str, obj, dims: Sequence[str], arg: str = "x") -> None:
    """Check that each of ``dims`` is a dimension of ``obj`` and, with dask data, lies in a single chunk.

    Parameters
    ----------
    func_name : str
        Public name, for the message.
    obj : xarray.DataArray or xarray.Dataset
    dims : sequence of str
        The function's core dimensions.
    arg : str
        Argument name, for the message.

    Raises
    ------
    ValueError
        Naming the function, the argument, the dimension and (for a split dimension) the chunks and
        the ``.chunk({dim: -1})`` call that fixes it.
    """
    for dim in dims:
        if dim not in obj.dims:
            raise ValueError(f"{func_name}: dim={dim!r} is not a dimension of {arg} (dims: {tuple(obj.dims)}); "
                             f"pass dim= with the name of its series dimension")
    if obj.chunks is None:
        return
    chunks = obj.chunksizes
    for dim in dims:
        sizes = chunks.get(dim, ())
        if len(sizes) > 1:
            shown = ", ".join(str(s) for s in sizes[:4]) + (", ..." if len(sizes) > 4 else "")
            raise ValueError(
                f"{func_name}: dimension {dim!r} of {arg} is split into {len(sizes)} dask chunks ({shown}); each "
                f"chunk must hold the whole of {dim!r}, a core dimension of {func_name}. Rechunk first, e.g. "
                f"{arg}.chunk({{{dim!r}: -1}}), and chunk the other dimensions instead (it is not rechunked for "
                f"you: that can multiply memory)")


def float_dtype(obj) -> np.dtype:
    """The float dtype the numpy functions return for ``obj``.

    Parameters
    ----------
    obj : array-like with a ``dtype``

    Returns
    -------
    numpy.dtype
        ``obj.dtype`` when float32 or float64, else float64.
    """
    return obj.dtype if obj.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def transpose_like(result, template):
    """Put the dimensions ``result`` shares with ``template`` in ``template``'s order (others after).

    Parameters
    ----------
    result, template : xarray.DataArray or xarray.Dataset

    Returns
    -------
    Same type as ``result``
    """
    order = [d for d in template.dims if d in result.dims]
    return result.transpose(*order, ...)


def apply_to_dataset(func: Callable, args: Sequence, *, input_core_dims: Sequence[Sequence[str]],
                     outputs: Mapping[str, tuple[Sequence[str], np.dtype]], kwargs: Mapping | None = None,
                     exclude_dims: frozenset = frozenset(), output_sizes: Mapping[str, int] | None = None,
                     join: str = "inner", template=None):
    """One ``xarray.apply_ufunc(..., dask="parallelized")`` call whose outputs become a Dataset.

    Parameters
    ----------
    func : callable
        Takes numpy blocks (core dimensions last) and returns a tuple of arrays, one per output, in
        the order of ``outputs``.
    args : sequence of xarray.DataArray
        Inputs.
    input_core_dims : sequence of sequence of str
        Core dimensions of each input.
    outputs : mapping
        ``name -> (core dims, dtype)`` of each output, in the order ``func`` returns them.
    kwargs : mapping, optional
        Keyword arguments of ``func``.
    exclude_dims : frozenset of str
        Core dimensions that may differ in size between inputs (not aligned).
    output_sizes : mapping, optional
        Sizes of output core dimensions that no input has.
    join : str
        How the inputs' indexes are aligned (xarray's ``join``).
    template : xarray.DataArray, optional
        Outputs are transposed to its dimension order.

    Returns
    -------
    xarray.Dataset
        One variable per output, lazy when an input is dask-backed.
    """
    import xarray as xr

    names = list(outputs)
    if len(names) == 1:  # apply_ufunc wants the array itself, not a 1-tuple
        func = functools.partial(_only_output, func)
    result = xr.apply_ufunc(
        func, *args, kwargs=dict(kwargs or {}), input_core_dims=[list(d) for d in input_core_dims],
        output_core_dims=[list(outputs[n][0]) for n in names], exclude_dims=set(exclude_dims),
        dask="parallelized", output_dtypes=[outputs[n][1] for n in names],
        dask_gufunc_kwargs={"output_sizes": dict(output_sizes)} if output_sizes else None,
        join=join, keep_attrs=False)
    if len(names) == 1:
        result = (result,)
    dataset = xr.Dataset(dict(zip(names, result)))
    return transpose_like(dataset, template) if template is not None else dataset


def _only_output(func, *args, **kwargs):
    (value,) = func(*args, **kwargs)
    return value


def describe(variable, long_name: str, units: str | None = None, **extra):
    """Set CF ``long_name``, ``units`` (when given) and other attributes on ``variable``.

    Parameters
    ----------
    variable : xarray.DataArray
    long_name : str
    units : str, optional
    **extra
        Further attributes.

    Returns
    -------
    xarray.DataArray
        ``variable`` itself (attributes updated in place).
    """
    variable.attrs.update({"long_name": long_name, **({"units": units} if units is not None else {}), **extra})
    return variable
