"""PNG figures of a run, in the shapes of the seed paper's Figures 6–12, one module per report section.

This module gathers their public names: the canvas (:mod:`.canvas`: sizes, resolution, labels), maps
(:mod:`.maps`), time series (:mod:`.series_figures`), cities and correlation (:mod:`.city_figures`),
the single-IHS case study and the truth (:mod:`.case_figures`) and the per-source attribution
(:mod:`.attribution_figures`).
"""
from __future__ import annotations

from .attribution_figures import plot_source_cluster
from .canvas import DPI, PM_LABEL, SIZES, UNITS, color_limits, new_figure, pixel_size, save_figure
from .case_figures import plot_case_ihs, plot_truth
from .city_figures import plot_city_annual, plot_city_boxes, plot_correlation
from .maps import MapFrame, plot_map, plot_trend_maps
from .series_figures import plot_annual, plot_daily, plot_seasonal

__all__ = ["DPI", "PM_LABEL", "SIZES", "UNITS", "color_limits", "new_figure", "pixel_size", "save_figure",
           "MapFrame", "plot_map", "plot_trend_maps", "plot_annual", "plot_daily", "plot_seasonal",
           "plot_city_annual", "plot_city_boxes", "plot_correlation", "plot_case_ihs", "plot_truth",
           "plot_source_cluster"]
