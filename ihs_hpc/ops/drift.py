"""Regression kriging's drift: a day's field as a linear function of static covariates.

Stage 3 fills IHS areas from the background around them. Ordinary kriging assumes the background
inside an area is like the background at its edge; where the area holds something the edge does not
— a town next to the plant, a valley floor below the rim — the fill is biased (issue 16: on the
``tiny`` scenes, towns sitting where the sources are made ``pm25_ihs`` 6–15 % too high). Regression
kriging (Hengl et al. 2007, *Computers & Geosciences* 33:1301) removes a least-squares trend on
covariates known everywhere, kriges the residual and adds the trend back:

``z(s) = β₀ + Σ_j β_j x_j(s) + ε(s)``, ``β`` by ordinary least squares over the pixels with data,
``ẑ(s₀) = x(s₀)ᵀβ + ε̂(s₀)`` with ``ε̂`` the ordinary kriging of the residuals.

Covariates are standardised once per run (:func:`standardise`), so the fit is well conditioned and a
covariate that is NaN somewhere (no elevation over the sea) contributes its mean there.
"""
from __future__ import annotations

import numpy as np

__all__ = ["standardise", "drift_trend"]


def standardise(covariates) -> np.ndarray:
    """Covariate maps ``(p, ny, nx)`` as z-scores (NaN → 0, the mean); a constant map is dropped.

    Returns float64 ``(q, ny, nx)`` with ``q ≤ p``.
    """
    out = []
    for x in np.asarray(covariates, dtype=np.float64).reshape(-1, *np.shape(covariates)[-2:]):
        finite = np.isfinite(x)
        if finite.sum() < 2:
            continue
        mean, std = float(x[finite].mean()), float(x[finite].std())
        if not std > 0:
            continue
        out.append(np.where(finite, (x - mean) / std, 0.0))
    return np.stack(out) if out else np.zeros((0,) + np.shape(covariates)[-2:])


def drift_trend(field, covariates, *, min_points_per_term: int = 10):
    """Least-squares trend of ``field`` on ``[1, covariates]`` over its finite pixels.

    Parameters
    ----------
    field : ndarray (ny, nx)
        One day; NaN where unknown (gaps and holes), which the fit leaves out.
    covariates : ndarray (p, ny, nx)
        Finite everywhere (see :func:`standardise`).
    min_points_per_term : int
        Below ``min_points_per_term × (p + 1)`` finite pixels no trend is fitted.

    Returns
    -------
    trend : ndarray (ny, nx) or None
        ``x(s)ᵀβ`` at every pixel; None when there is no covariate or too few pixels.
    beta : ndarray (p + 1,) or None
        Intercept first.
    """
    covariates = np.asarray(covariates, dtype=np.float64)
    p = covariates.shape[0]
    valid = np.isfinite(field)
    if p == 0 or valid.sum() < min_points_per_term * (p + 1):
        return None, None
    design = np.concatenate([np.ones((1, int(valid.sum()))), covariates[:, valid]]).T
    beta, *_ = np.linalg.lstsq(design, np.asarray(field, dtype=np.float64)[valid], rcond=None)
    trend = beta[0] + np.tensordot(beta[1:], covariates, axes=1)
    return trend, beta
