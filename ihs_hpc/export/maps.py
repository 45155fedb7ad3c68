"""The map products of a run: which statistics-store variable each exported map file holds.

Every product is a variable of ``stats/maps.zarr`` (period and annual means, written by
:mod:`ihs_hpc.pipeline.stats`) or ``stats/trend_maps.zarr`` (per-pixel Mann–Kendall test and Sen's
slope of the annual means). The definitions are the statistics stage's: period and annual means are
pooled over every valid pixel-day (``pm25_ihs`` over the pixel-days where it and total PM2.5 are
both finite, with the synthetic truth too when there is one); the share is Σ IHS / Σ total over the
same pixel-days; IHS-related PM2.5 (eq. 10 of DOI 10.3390/atmos15010131) exists only inside the IHS
radiation areas.
"""
from __future__ import annotations

from dataclasses import dataclass

#: CF standard name of total PM2.5 (the only quantity here that has one: the source-attributed parts
#: are described by ``long_name``).
PM25_STANDARD_NAME = "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"


@dataclass(frozen=True)
class MapProduct:
    """One exported map.

    Parameters
    ----------
    name : str
        File stem (``pm25_ihs_mean`` → ``pm25_ihs_mean.tif``) and NetCDF variable name.
    store, variable : str
        Where it comes from: ``"maps"`` or ``"trend_maps"`` and the variable in that store.
    long_name, units : str
        CF description; ``units`` in UDUNITS syntax.
    kind : str
        ``"mean"`` (period mean), ``"annual"`` (one band / time step per year) or ``"trend"``.
    standard_name : str, optional
        CF standard name, where one exists.
    colormap : str
        Matplotlib colormap of the interactive map layer.
    label : str
        Short name of the interactive map layer.
    """

    name: str
    store: str
    variable: str
    long_name: str
    units: str
    kind: str
    standard_name: str | None = None
    colormap: str = "viridis"
    label: str = ""


MAP_PRODUCTS: tuple[MapProduct, ...] = (
    MapProduct("pm25_mean", "maps", "mean_pm25", "period-mean total PM2.5", "ug m-3", "mean",
               PM25_STANDARD_NAME, label="Total PM2.5, period mean"),
    MapProduct("pm25_ihs_mean", "maps", "mean_pm25_ihs",
               "period-mean IHS-related PM2.5 (eq. 10), inside IHS radiation areas", "ug m-3", "mean",
               colormap="YlOrRd", label="IHS-related PM2.5, period mean"),
    MapProduct("pm25_ihs_share_mean", "maps", "share_pct",
               "period share of IHS-related PM2.5 in total PM2.5 (sum IHS / sum total), inside IHS radiation areas",
               "percent", "mean", colormap="magma_r", label="IHS share of total PM2.5 (%)"),
    MapProduct("pm25_background_mean", "maps", "mean_pm25_bl_oem",
               "period-mean PM2.5 from other sources with meteorology removed (pm25_bl_oem, background "
               "filled into IHS areas)", "ug m-3", "mean", label="Other sources (background), period mean"),
    MapProduct("pm25_ihs_true_mean", "maps", "mean_pm25_ihs_true",
               "period-mean true IHS-related PM2.5 of the synthetic scene", "ug m-3", "mean", colormap="YlOrRd",
               label="True IHS-related PM2.5 (synthetic), period mean"),
    MapProduct("pm25_annual_mean", "maps", "annual_pm25", "annual-mean total PM2.5", "ug m-3", "annual",
               PM25_STANDARD_NAME, label="Total PM2.5"),
    MapProduct("pm25_ihs_annual_mean", "maps", "annual_pm25_ihs",
               "annual-mean IHS-related PM2.5 (eq. 10), inside IHS radiation areas", "ug m-3", "annual",
               colormap="YlOrRd", label="IHS-related PM2.5"),
    MapProduct("pm25_trend_sen_slope", "trend_maps", "pm25_sen_slope", "Sen's slope of annual-mean total PM2.5",
               "ug m-3 yr-1", "trend", colormap="RdBu_r", label="Total PM2.5 trend: Sen's slope"),
    MapProduct("pm25_trend_mk_z", "trend_maps", "pm25_mk_z", "Mann-Kendall z of annual-mean total PM2.5",
               "1", "trend", colormap="RdBu_r", label="Total PM2.5 trend: Mann-Kendall z"),
    MapProduct("pm25_trend_mk_p", "trend_maps", "pm25_mk_p",
               "Mann-Kendall two-sided p-value of annual-mean total PM2.5", "1", "trend", colormap="cividis",
               label="Total PM2.5 trend: Mann-Kendall p"),
    MapProduct("pm25_trend_significant", "trend_maps", "pm25_trend",
               "significant trend of annual-mean total PM2.5 (Mann-Kendall, alpha 0.05)", "1", "trend",
               colormap="RdBu_r", label="Total PM2.5 trend: significance"),
    MapProduct("pm25_ihs_trend_sen_slope", "trend_maps", "pm25_ihs_sen_slope",
               "Sen's slope of annual-mean IHS-related PM2.5, inside IHS radiation areas", "ug m-3 yr-1", "trend",
               colormap="RdBu_r", label="IHS-related PM2.5 trend: Sen's slope"),
    MapProduct("pm25_ihs_trend_mk_z", "trend_maps", "pm25_ihs_mk_z",
               "Mann-Kendall z of annual-mean IHS-related PM2.5", "1", "trend", colormap="RdBu_r",
               label="IHS-related PM2.5 trend: Mann-Kendall z"),
    MapProduct("pm25_ihs_trend_mk_p", "trend_maps", "pm25_ihs_mk_p",
               "Mann-Kendall two-sided p-value of annual-mean IHS-related PM2.5", "1", "trend", colormap="cividis",
               label="IHS-related PM2.5 trend: Mann-Kendall p"),
    MapProduct("pm25_ihs_trend_significant", "trend_maps", "pm25_ihs_trend",
               "significant trend of annual-mean IHS-related PM2.5 (Mann-Kendall, alpha 0.05)", "1", "trend",
               colormap="RdBu_r", label="IHS-related PM2.5 trend: significance"),
)

#: Values of the ``*_trend_significant`` maps (CF flags).
TREND_FLAGS = {"flag_values": [-1, 0, 1], "flag_meanings": "significant_decrease no_significant_trend "
                                                          "significant_increase"}


def is_flag(product: MapProduct) -> bool:
    """Whether ``product`` is a flag map (significant-trend sign: -1, 0, 1) rather than a continuous one."""
    return product.name.endswith("_significant")


def available_products(outputs) -> list[tuple[MapProduct, "object"]]:
    """The products a run has, each with its ``xarray.DataArray`` (lazy) from the statistics stores.

    Trend-significance maps get NaN where their pixel has no trend estimate (the store holds 0 there,
    the same value as "no significant trend"), so exported files tell the two apart.
    """
    out = []
    for product in MAP_PRODUCTS:
        ds = outputs.store(product.store, what=f"exporting {product.name}")
        if product.variable not in ds:
            continue
        data = ds[product.variable]
        if is_flag(product):
            slope = ds[product.variable.replace("_trend", "_sen_slope")]
            data = data.where(slope.notnull())
        out.append((product, data))
    return out
