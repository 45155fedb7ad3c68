"""Honest evaluation of the stage-3 fill: the U-ConvLSTM and kriging on the same held-out holes.

Both methods get the same information — ``pm25_bl_tem`` of every day of the held-out year with the
year's IHS areas and the validation holes hidden (:mod:`ihs_hpc.ml.holes`) — and fill the hidden
pixels; both are scored on the same pixels (hidden, inside the validation blocks, outside every IHS
area) against the values that were hidden. Kriging is the pipeline's own
(:func:`ihs_hpc.pipeline.daily.fill_block`: per-day variogram, kriging from the ``k`` nearest visible
pixels — regression kriging on the ``stage3.drift`` covariates by default) with the run's ``stage3``
kriging settings; the model never saw a day of the held-out year or a target pixel of a validation
block while it was trained.

Scores over all scored pixel-days (µg m⁻³): ``rmse``, ``bias`` (mean of fill − truth) and Pearson
``r``; written to ``stats/stage3_validation.csv`` (columns ``method, rmse, bias, r``).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from .data import StageData
from .infer import predict_region

__all__ = ["validation_truth", "kriging_fill", "model_fill", "scores", "validation_table"]


def validation_truth(data: StageData) -> np.ndarray:
    """The hidden values ``(n_val_days, n_scored)`` the fills are scored against."""
    days = data.val_days
    block = np.asarray(data.scene.values[days[0]:days[-1] + 1], dtype=np.float64)[days - days[0]]
    return block[:, data.scored]


def kriging_fill(data: StageData, store: Path, variable: str = "pm25_bl_tem", *, model: str = "exponential",
                 k: int = 16, variogram: str = "global", variogram_cells: int = 8, drift=None, client=None,
                 n_blocks: int = 4) -> np.ndarray:
    """Kriged values ``(n_val_days, n_scored)`` of the validation holes (the pipeline's stage-3 kriging,
    regression kriging on ``drift`` when given)."""
    from ..pipeline.daily import DayBlock, fill_block

    days = data.val_days
    holes = data.scene.year_holes[data.val_year_index] | data.hidden
    edges = np.linspace(days[0], days[-1] + 1, max(1, int(n_blocks)) + 1).round().astype(int)
    blocks = [DayBlock(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
    func = partial(fill_block, store=Path(store), variable=variable, lat=data.scene.lat, lon=data.scene.lon,
                   holes=holes, fill_mask=data.scored, model=model, k=k, variogram=variogram,
                   variogram_cells=variogram_cells, drift=drift)
    from ..pipeline.executor import map_tiles

    results = []
    map_tiles(func, blocks, client, desc="validation kriging", unit="block",
              on_result=lambda _block, value: results.append(value))
    flat_scored = np.flatnonzero(data.scored.ravel())
    column = np.full(data.scored.size, -1, dtype=np.int64)
    column[flat_scored] = np.arange(flat_scored.size)
    out = np.full((days.size, flat_scored.size), np.nan)
    for r in results:
        keep = column[r["pixel"]] >= 0
        out[r["day"][keep] - days[0], column[r["pixel"][keep]]] = r["value"][keep]
    return out


def model_fill(predict, data: StageData, *, seq_len: int, window: int, overlap: int, multiple: int) -> np.ndarray:
    """The model's values ``(n_val_days, n_scored)`` of the validation holes (tiled, blended inference)."""
    days = data.val_days
    out = []
    hidden = data.hidden

    def make_inputs(t0, n, rows, cols):
        return data.inputs(t0, n, rows, cols, extra_holes=hidden[rows, cols])

    for t0 in range(int(days[0]), int(days[-1]) + 1, seq_len):
        n = min(seq_len, int(days[-1]) + 1 - t0)
        pred = predict_region(predict, make_inputs, data.scene.shape, t0, n, window=window, overlap=overlap,
                              multiple=multiple)
        out.append(data.denormalise(pred.astype(np.float64))[:, data.scored])
    return np.concatenate(out)


def scores(fill: np.ndarray, truth: np.ndarray) -> dict:
    """RMSE, bias (fill − truth) and Pearson r over the finite pairs, with their count."""
    fill, truth = np.asarray(fill, dtype=np.float64).ravel(), np.asarray(truth, dtype=np.float64).ravel()
    ok = np.isfinite(fill) & np.isfinite(truth)
    if ok.sum() < 2:
        raise ValueError("fewer than two scored pixel-days with both a fill and a truth")
    err = fill[ok] - truth[ok]
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "bias": float(err.mean()),
            "r": float(np.corrcoef(fill[ok], truth[ok])[0, 1]), "n": int(ok.sum())}


def validation_table(results: dict[str, dict]) -> pd.DataFrame:
    """``method, rmse, bias, r`` — one row per method, in the order given."""
    return pd.DataFrame([{"method": m, "rmse": s["rmse"], "bias": s["bias"], "r": s["r"]} for m, s in results.items()])
