"""Variogram models and their automatic fit for ordinary kriging (seed 000 §2.3.1), PyKrige's conventions.

* :func:`variogram_model_values` — γ(d) of the exponential, spherical, gaussian and linear models;
* :func:`experimental_variogram` — PyKrige's binned semivariogram (``nlags`` bins);
* :func:`fit_variogram` — PyKrige-style automatic fit (robust ``soft_l1`` least squares) on a seeded subsample.

Parameters use PyKrige's names and meaning: ``{"psill", "range", "nugget"}`` (or ``"sill"`` instead of
``"psill"``) for exponential / spherical / gaussian, ``{"slope", "nugget"}`` for linear; a list is read
like PyKrige reads it (``[sill, range, nugget]`` or ``[slope, nugget]``). Kriging with them:
:mod:`ihs_hpc.ops.gapfill`.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from ihs_hpc.kernels.kriging import LINEAR, MODEL_CODES, binned_semivariance, pair_distance_range

__all__ = ["VARIOGRAM_MODELS", "VariogramFitError", "experimental_variogram", "variogram_model_values",
           "fit_variogram", "model_code", "parameter_vector", "parameter_dict"]

#: variogram models supported (PyKrige names)
VARIOGRAM_MODELS = tuple(MODEL_CODES)

class VariogramFitError(ValueError):
    """The automatic variogram fit gave no usable model.

    Raised when the data have fewer than two points, all pair distances are equal (no lag
    bins), the semivariances are all zero (constant field), :func:`scipy.optimize.least_squares`
    fails, or the fitted parameters are not finite or degenerate (zero range, or zero sill and
    zero nugget, which makes the kriging system singular).
    """


# --------------------------------------------------------------------------- variogram models
def model_code(model):
    """The kernel's integer code of a variogram ``model`` name (:data:`VARIOGRAM_MODELS`)."""
    if model not in MODEL_CODES:
        raise ValueError(f"model must be one of {VARIOGRAM_MODELS}, got {model!r}")
    return MODEL_CODES[model]


def _require_keys(model, params, keys):
    missing = [key for key in keys if key not in params]
    if missing:
        raise ValueError(
            f"variogram_parameters for model {model!r} lacks {missing}; give {keys}"
        )


def parameter_vector(model, variogram_parameters):
    """PyKrige-style parameters → kernel ``[psill, range, nugget]`` or ``[slope, nugget, 0]``."""
    code = model_code(model)
    p = variogram_parameters
    if isinstance(p, dict):
        if code == LINEAR:
            _require_keys(model, p, ["slope", "nugget"])
            vec = [p["slope"], p["nugget"], 0.0]
        else:
            _require_keys(model, p, ["range", "nugget"])
            if "psill" in p:
                psill = p["psill"]
            elif "sill" in p:
                psill = p["sill"] - p["nugget"]
            else:
                raise ValueError(
                    f"variogram_parameters for model {model!r} needs 'psill' or 'sill'"
                )
            vec = [psill, p["range"], p["nugget"]]
    elif isinstance(p, (list, tuple, np.ndarray)):
        p = [float(v) for v in p]
        if code == LINEAR:
            if len(p) != 2:
                raise ValueError(f"variogram_parameters for 'linear' is [slope, nugget], got {p}")
            vec = [p[0], p[1], 0.0]
        else:
            if len(p) != 3:
                raise ValueError(
                    f"variogram_parameters for {model!r} is [sill, range, nugget], got {p}"
                )
            vec = [p[0] - p[2], p[1], p[2]]
    else:
        raise ValueError(
            f"variogram_parameters must be a dict, a list or None, got {type(p).__name__}"
        )
    vec = np.asarray(vec, dtype=np.float64)
    names = ("slope", "nugget") if code == LINEAR else ("psill", "range", "nugget")
    for name, value in zip(names, vec):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"variogram parameter {name!r} must be finite and >= 0, got {value}")
    if code != LINEAR and vec[1] <= 0:
        raise ValueError(f"variogram parameter 'range' must be > 0, got {vec[1]}")
    return vec


def parameter_dict(model, vec):
    """A parameter vector of ``model`` as PyKrige's dict (``psill, range, nugget`` or ``slope, nugget``)."""
    if model_code(model) == LINEAR:
        return {"slope": float(vec[0]), "nugget": float(vec[1])}
    return {"psill": float(vec[0]), "range": float(vec[1]), "nugget": float(vec[2])}


def variogram_model_values(model, params, d):
    """Vectorised semivariance of ``model`` (PyKrige's formulas) at lags ``d``.

    Parameters
    ----------
    model : str
        One of :data:`VARIOGRAM_MODELS`.
    params : sequence of float
        ``[psill, range, nugget]`` or, for linear, ``[slope, nugget]``.
    d : ndarray
        Lags.
    """
    code = model_code(model)
    d = np.asarray(d, dtype=np.float64)
    if code == LINEAR:
        return params[0] * d + params[1]
    psill, range_, nugget = (float(v) for v in params[:3])
    if code == MODEL_CODES["exponential"]:
        return psill * (1.0 - np.exp(-d / (range_ / 3.0))) + nugget
    if code == MODEL_CODES["spherical"]:
        inside = psill * ((3.0 * d) / (2.0 * range_) - (d**3.0) / (2.0 * range_**3.0)) + nugget
        return np.where(d <= range_, inside, psill + nugget)
    return psill * (1.0 - np.exp(-(d**2.0) / (range_ * 4.0 / 7.0) ** 2.0)) + nugget


def experimental_variogram(x, y, z, nlags=6):
    """Binned empirical semivariogram exactly as PyKrige builds it.

    All pair distances are split into ``nlags`` equal bins from the smallest to the largest
    (the last bin's upper edge is the largest distance plus 0.001); each non-empty bin gives the
    mean distance and the mean of ``0.5 (z_i - z_j)²``.

    Parameters
    ----------
    x, y, z : array_like, shape (n,), n >= 2
        Coordinates and values.
    nlags : int, default 6
        Number of bins.

    Returns
    -------
    lags, semivariance : ndarray
        One entry per non-empty bin.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    z = np.ascontiguousarray(z, dtype=np.float64)
    nlags = int(nlags)
    dmin, dmax = pair_distance_range(x, y)
    dd = (dmax - dmin) / nlags
    bins = np.array([dmin + n * dd for n in range(nlags)] + [dmax + 0.001])
    counts = np.zeros(nlags, dtype=np.int64)
    sum_lag = np.zeros(nlags)
    sum_gamma = np.zeros(nlags)
    binned_semivariance(x, y, z, bins, counts, sum_lag, sum_gamma)
    filled = counts > 0
    return sum_lag[filled] / counts[filled], sum_gamma[filled] / counts[filled]


def fit_variogram(x, y, z, model="exponential", nlags=6, max_points=2000, seed=0):
    """Fit a variogram model like PyKrige's automatic fit, on a seeded random subsample.

    Up to ``max_points`` data points are drawn without replacement with
    ``numpy.random.default_rng(seed)`` (all of them when there are fewer); the empirical
    semivariogram is :func:`experimental_variogram` (PyKrige's binning); the model minimises
    PyKrige's objective, ``sum(soft_l1((γ_model(lag) - γ)²))`` (``least_squares`` with
    ``loss="soft_l1"``, ``f_scale=1``), from PyKrige's start values within its bounds (psill in
    [0, 10 max γ], range in [0, max lag], nugget in [0, max γ]; linear: slope >= 0, nugget in
    [0, max γ]).  Unlike PyKrige, the solver works on parameters and residuals divided by
    ``max γ`` and ``max lag`` (the same objective up to a constant factor); it converges in
    fewer evaluations and reaches an objective at least as low where PyKrige's run stops at its
    evaluation limit, so the parameters agree with PyKrige's
    ``OrdinaryKriging(x, y, z, variogram_model=model, nlags=nlags).variogram_model_parameters``
    to the solver tolerance when PyKrige converges, not bit for bit.

    Parameters
    ----------
    x, y, z : array_like, shape (n,)
        Coordinates (lon, lat in degrees for gap filling) and values; all finite.
    model : str, default "exponential"
        One of :data:`VARIOGRAM_MODELS`.
    nlags : int, default 6
        Number of lag bins.
    max_points : int, default 2000
        Subsample size cap (the pair count grows as its square).
    seed : int or sequence of int, default 0
        Seed of the subsample.

    Returns
    -------
    dict
        PyKrige-named parameters (``psill, range, nugget`` or ``slope, nugget``).

    Raises
    ------
    VariogramFitError
        When no usable model results (see the class doc).
    """
    code = model_code(model)
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    z = np.asarray(z, dtype=np.float64).ravel()
    if not (x.shape == y.shape == z.shape):
        raise ValueError(f"x, y and z must have equal lengths, got {x.size}, {y.size}, {z.size}")
    if int(nlags) < 1:
        raise ValueError(f"nlags must be >= 1, got {nlags}")
    if int(max_points) < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    n = z.size
    if n < 2:
        raise VariogramFitError(f"a variogram needs at least 2 points, got {n}")
    if n > max_points:
        pick = np.sort(np.random.default_rng(seed).choice(n, size=int(max_points), replace=False))
        x, y, z = x[pick], y[pick], z[pick]
    lags, semivariance = experimental_variogram(x, y, z, int(nlags))
    if lags.size == 0 or np.amax(lags) <= 0 or np.amax(semivariance) <= 0:
        raise VariogramFitError(
            "no usable empirical variogram (all points coincide or all values are equal)"
        )
    gamma_max = float(np.amax(semivariance))
    lag_max = float(np.amax(lags))
    if code == LINEAR:
        span = lag_max - np.amin(lags)
        x0 = [(gamma_max - np.amin(semivariance)) / span if span > 0 else 0.0,
              np.amin(semivariance)]
        bounds = ([0.0, 0.0], [np.inf, gamma_max])
        scale = np.array([gamma_max / lag_max, gamma_max])
    else:
        x0 = [gamma_max - np.amin(semivariance), 0.25 * lag_max, np.amin(semivariance)]
        bounds = ([0.0, 0.0, 0.0], [10.0 * gamma_max, lag_max, gamma_max])
        scale = np.array([gamma_max, lag_max, gamma_max])

    # PyKrige's objective, sum soft_l1(residual²) with f_scale = 1, solved in parameters and
    # residuals divided by their natural scales (f_scale divided alike, so the objective is
    # the same up to a constant factor): far fewer evaluations and no stalls at max_nfev.
    def residuals(unit_params):
        return (variogram_model_values(model, unit_params * scale, lags) - semivariance) / gamma_max

    try:
        result = least_squares(residuals, np.asarray(x0) / scale,
                               bounds=(np.asarray(bounds[0]) / scale,
                                       np.asarray(bounds[1]) / scale),
                               loss="soft_l1", f_scale=1.0 / gamma_max)
    except Exception as exc:  # scipy raises ValueError for infeasible x0 / bounds
        raise VariogramFitError(f"least_squares failed: {exc}") from exc
    vec = np.clip(np.asarray(result.x, dtype=np.float64) * scale, bounds[0], bounds[1])
    if not np.all(np.isfinite(vec)):
        raise VariogramFitError(f"fitted parameters are not finite: {vec}")
    if code == LINEAR:
        if vec[0] <= 0 and vec[1] <= 0:
            raise VariogramFitError(f"degenerate linear fit (slope and nugget zero): {vec}")
    elif vec[1] <= 0 or (vec[0] <= 0 and vec[2] <= 0):
        raise VariogramFitError(f"degenerate {model} fit (zero range or zero sill): {vec}")
    return parameter_dict(model, vec)
