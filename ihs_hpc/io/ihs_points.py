"""Industrial heat sources (IHS): points from CSV, GeoJSON or Shapefile, with their operating years.

Input
-----
* CSV (``.csv``/``.txt``, UTF-8 with or without BOM, else GB18030): one row per IHS with an id, a
  longitude and a latitude column, optional name and category columns. Column names are configurable;
  by default the first present (case-insensitive) of

  - id: ``ihs_id, id, fid, objectid, code, 编号``
  - lon: ``lon, longitude, lng, long, x, 经度``;  lat: ``lat, latitude, y, 纬度``
  - name: ``ihs_name, name, 名称``;  category: ``ihs_category, category, type, class, industry, 类型``
* GeoJSON / Shapefile / GeoPackage (anything ``geopandas.read_file`` opens): the same attribute
  columns; the location is the point geometry (a polygon's centroid), reprojected to EPSG:4326.
  ``crs_offset="gcj02"`` moves GCJ-02 ("Mars") coordinates to WGS84 for either kind.

Operating status, one of
* start/end year columns in the points file (``start_year``/``end_year`` by default, aliases
  ``start, first_year, year_start, begin, 起始年`` / ``end, last_year, year_end, stop, 结束年``): the IHS
  operates in every year ``start ≤ y ≤ end``; an empty start means "since the first year", an empty
  end "still operating";
* a long table (CSV) ``ihs_id, year, operating`` (``operating`` 1/0, true/false, yes/no; a row without
  that column means operating): every (IHS, year) pair not listed is *not operating*, with a warning
  naming the IHS and years (``missing_years="error"`` raises instead, ``"operating"`` assumes on);
* neither: every IHS operates every year (with a warning).

Output: an xarray Dataset on dim ``ihs`` with ``ihs_id`` (str), ``ihs_name`` (str), ``ihs_category``
(str), ``ihs_lat``, ``ihs_lon`` (float64, WGS84), ``ihs_row``, ``ihs_col`` (int32, cell on the
analysis grid) and ``ihs_operating (ihs, year)`` bool with a ``year`` coordinate.

Checks (each names the IHS id): an id appearing twice; a missing or non-numeric coordinate; a point
outside the grid — and if swapping lon and lat would put it inside, the error says so; a point on a DEM
nodata cell (warning, when a DEM is given); status rows for unknown ids; missing years (above).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from ..grid import Grid
from .errors import IngestError, IngestWarning

ID_ALIASES = ("ihs_id", "id", "fid", "objectid", "code", "编号")
LON_ALIASES = ("lon", "longitude", "lng", "long", "x", "经度")
LAT_ALIASES = ("lat", "latitude", "y", "纬度")
NAME_ALIASES = ("ihs_name", "name", "名称")
CATEGORY_ALIASES = ("ihs_category", "category", "type", "class", "industry", "类型")
START_ALIASES = ("start_year", "start", "first_year", "year_start", "begin", "起始年")
END_ALIASES = ("end_year", "end", "last_year", "year_end", "stop", "结束年")
OPERATING_ALIASES = ("operating", "status", "in_operation", "active", "运行")
YEAR_ALIASES = ("year", "yr", "年份")

_VECTOR_SUFFIXES = (".geojson", ".json", ".shp", ".gpkg", ".zip", ".kml", ".fgb")


def _read_csv(path):
    import pandas as pd

    last = None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return pd.read_csv(path, encoding=encoding, dtype=str, keep_default_na=False, skipinitialspace=True)
        except UnicodeDecodeError as exc:
            last = exc
        except Exception as exc:
            raise IngestError(f"cannot be read as CSV: {exc}", path=path) from None
    raise IngestError(f"cannot be decoded as UTF-8 or GB18030: {last}", path=path)


def _column(columns: Sequence[str], wanted: str | None, aliases: Sequence[str], *, what: str, path, required: bool):
    if wanted is not None:
        if wanted in columns:
            return wanted
        lowered = {c.lower(): c for c in columns}
        if wanted.lower() in lowered:
            return lowered[wanted.lower()]
        raise IngestError(f"no {what} column {wanted!r}; the columns are {list(columns)}", path=path)
    lowered = {str(c).strip().lower(): c for c in columns}
    for alias in aliases:
        if alias.lower() in lowered:
            return lowered[alias.lower()]
    if required:
        raise IngestError(f"no {what} column (looked for {list(aliases)}); the columns are {list(columns)} "
                          f"(set the column name in the configuration)", path=path)
    return None


def _ids(values) -> np.ndarray:
    out = []
    for v in values:
        text = str(v).strip()
        if text.endswith(".0") and text[:-2].lstrip("-").isdigit():  # 12.0 from a float column -> "12"
            text = text[:-2]
        out.append(text)
    return np.array(out, dtype=object)


def _numbers(values, *, what, ids, path):
    import pandas as pd

    num = pd.to_numeric(pd.Series(list(values)).astype(str).str.strip().replace({"": None}), errors="coerce").to_numpy(dtype=np.float64)
    return num


def _truthy(values, *, ids, path) -> np.ndarray:
    out = []
    for i, v in zip(ids, values):
        t = str(v).strip().lower()
        if t in ("1", "1.0", "true", "t", "yes", "y", "on", "operating", "是", "运行"):
            out.append(True)
        elif t in ("0", "0.0", "false", "f", "no", "n", "off", "closed", "stopped", "否", "停产", "停止"):
            out.append(False)
        else:
            raise IngestError(f"operating value {v!r} is not a yes/no value", path=path, ihs_id=i)
    return np.array(out, dtype=bool)


def read_ihs_table(path, *, id_col=None, lon_col=None, lat_col=None, name_col=None, category_col=None,
                   layer=None, crs_offset: str | None = None):
    """The raw IHS table: a pandas DataFrame with columns ``ihs_id, lon, lat, name, category`` plus the
    file's other columns (for status), lon/lat in WGS84."""
    import pandas as pd

    path = Path(os.path.expanduser(os.fspath(path)))
    if not path.exists():
        raise IngestError("no such file", path=path)
    if path.suffix.lower() in (".csv", ".txt", ".tsv"):
        df = _read_csv(path)
        columns = list(df.columns)
        idc = _column(columns, id_col, ID_ALIASES, what="IHS id", path=path, required=True)
        lonc = _column(columns, lon_col, LON_ALIASES, what="longitude", path=path, required=True)
        latc = _column(columns, lat_col, LAT_ALIASES, what="latitude", path=path, required=True)
        ids = _ids(df[idc])
        lon = _numbers(df[lonc], what="longitude", ids=ids, path=path)
        lat = _numbers(df[latc], what="latitude", ids=ids, path=path)
        used = {idc, lonc, latc}
    elif path.suffix.lower() in _VECTOR_SUFFIXES:
        import geopandas as gpd

        try:
            gdf = gpd.read_file(path, layer=layer) if layer is not None else gpd.read_file(path)
        except Exception as exc:
            raise IngestError(f"cannot be read as a vector file: {exc}", path=path) from None
        columns = [c for c in gdf.columns if c != gdf.geometry.name]
        idc = _column(columns, id_col, ID_ALIASES, what="IHS id", path=path, required=True)
        ids = _ids(gdf[idc])
        if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
            gdf = gdf.to_crs("EPSG:4326")
        geom = gdf.geometry
        empty = geom.is_empty | geom.isna()
        if empty.any():
            raise IngestError("has an empty geometry", path=path, ihs_id=ids[int(np.flatnonzero(empty.to_numpy())[0])])
        if not (geom.geom_type == "Point").all():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # geographic centroid of a few-hundred-metre polygon is fine
                geom = geom.centroid
        lon, lat = geom.x.to_numpy(dtype=np.float64), geom.y.to_numpy(dtype=np.float64)
        df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).astype(str)
        used = {idc}
    else:
        raise IngestError(f"unknown IHS file type {path.suffix!r}; use CSV, GeoJSON or Shapefile", path=path)
    bad = ~np.isfinite(lon) | ~np.isfinite(lat)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise IngestError(f"missing or non-numeric coordinate (lon={lon[i]}, lat={lat[i]})", path=path, ihs_id=ids[i])
    if crs_offset not in (None, "none", "wgs84"):
        if crs_offset != "gcj02":
            raise IngestError(f"crs_offset must be None or 'gcj02', got {crs_offset!r}")
        from .gcj02 import gcj02_to_wgs84

        lon, lat = gcj02_to_wgs84(lon, lat)
    namec = _column(list(df.columns), name_col, NAME_ALIASES, what="name", path=path, required=name_col is not None)
    catc = _column(list(df.columns), category_col, CATEGORY_ALIASES, what="category", path=path, required=category_col is not None)
    out = df.copy()
    out["ihs_id"] = ids
    out["lon"] = lon
    out["lat"] = lat
    out["name"] = df[namec].astype(str).to_numpy() if namec is not None and namec not in used else ids
    out["category"] = df[catc].astype(str).to_numpy() if catc is not None and catc not in used else ""
    out.attrs["path"] = str(path)
    return out


def _status_from_years(table, years, *, start_col, end_col, path):
    columns = [c for c in table.columns if c not in ("ihs_id", "lon", "lat", "name", "category")]
    sc = _column(columns, start_col, START_ALIASES, what="start year", path=path, required=start_col is not None)
    ec = _column(columns, end_col, END_ALIASES, what="end year", path=path, required=end_col is not None)
    if sc is None and ec is None:
        return None
    ids = table["ihs_id"].to_numpy()
    start = _numbers(table[sc], what="start", ids=ids, path=path) if sc is not None else np.full(len(ids), np.nan)
    end = _numbers(table[ec], what="end", ids=ids, path=path) if ec is not None else np.full(len(ids), np.nan)
    for col, values, raw in ((sc, start, table[sc] if sc else None), (ec, end, table[ec] if ec else None)):
        if raw is None:
            continue
        bad = np.isnan(values) & (raw.astype(str).str.strip() != "").to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise IngestError(f"{col} value {raw.iloc[i]!r} is not a year", path=path, ihs_id=ids[i])
    s = np.where(np.isnan(start), -np.inf, start)
    e = np.where(np.isnan(end), np.inf, end)
    wrong = e < s
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise IngestError(f"end year {e[i]:g} is before start year {s[i]:g}", path=path, ihs_id=ids[i])
    y = np.asarray(years)[None, :]
    return (y >= s[:, None]) & (y <= e[:, None])


def read_status_table(path, ids: np.ndarray, years, *, id_col=None, year_col=None, operating_col=None,
                      missing_years: str = "not_operating") -> np.ndarray:
    """``(len(ids), len(years))`` bool from a long table ``ihs_id, year[, operating]``."""
    if missing_years not in ("not_operating", "operating", "error"):
        raise IngestError(f"missing_years must be 'not_operating', 'operating' or 'error', got {missing_years!r}")
    path = Path(os.path.expanduser(os.fspath(path)))
    if not path.exists():
        raise IngestError("no such file", path=path)
    df = _read_csv(path)
    columns = list(df.columns)
    idc = _column(columns, id_col, ID_ALIASES, what="IHS id", path=path, required=True)
    yc = _column(columns, year_col, YEAR_ALIASES, what="year", path=path, required=True)
    oc = _column(columns, operating_col, OPERATING_ALIASES, what="operating", path=path, required=operating_col is not None)
    sid = _ids(df[idc])
    year = _numbers(df[yc], what="year", ids=sid, path=path)
    if np.isnan(year).any():
        i = int(np.flatnonzero(np.isnan(year))[0])
        raise IngestError(f"year {df[yc].iloc[i]!r} is not a number", path=path, ihs_id=sid[i])
    op = _truthy(df[oc], ids=sid, path=path) if oc is not None else np.ones(len(sid), dtype=bool)
    index = {v: i for i, v in enumerate(ids)}
    unknown = sorted({s for s in sid if s not in index})
    if unknown:
        raise IngestError(f"status rows for {len(unknown)} IHS id(s) not in the IHS file: {unknown[:10]}", path=path, ihs_id=unknown[0])
    years = np.asarray(years)
    ycol = {int(y): j for j, y in enumerate(years)}
    seen = np.zeros((len(ids), len(years)), dtype=bool)
    status = np.zeros((len(ids), len(years)), dtype=bool)
    for s, y, o in zip(sid, year.astype(int), op):
        j = ycol.get(int(y))
        if j is None:
            continue
        i = index[s]
        if seen[i, j] and status[i, j] != o:
            raise IngestError(f"contradictory status rows for year {y}", path=path, ihs_id=s)
        seen[i, j] = True
        status[i, j] = o
    if not seen.all():
        rows = np.flatnonzero(~seen.all(axis=1))
        detail = "; ".join(f"{ids[i]}: {', '.join(str(years[j]) for j in np.flatnonzero(~seen[i]))}" for i in rows[:5])
        message = (f"{len(rows)} IHS have years without a status row ({detail}{' ...' if len(rows) > 5 else ''})")
        if missing_years == "error":
            raise IngestError(message, path=path, ihs_id=ids[rows[0]])
        fill = missing_years == "operating"
        status[~seen] = fill
        warnings.warn(f"{path}: {message}; taken as {'operating' if fill else 'not operating'}", IngestWarning, stacklevel=3)
    return status


def read_ihs(path, grid: Grid, years, *, id_col=None, lon_col=None, lat_col=None, name_col=None, category_col=None,
             start_col=None, end_col=None, status=None, status_id_col=None, status_year_col=None,
             status_operating_col=None, missing_years: str = "not_operating", outside: str = "error",
             dem: np.ndarray | None = None, layer=None, crs_offset: str | None = None):
    """IHS points and operating years as the ``ihs``-dim Dataset of the input store (see module doc).

    Parameters
    ----------
    path : CSV, GeoJSON, Shapefile …
    grid : Grid
    years : sequence of int
        Years of the ``year`` axis (the years of the ingest's date range).
    status : path, optional
        Long status table ``ihs_id, year, operating``; without it, start/end year columns are used.
    outside : {"error", "drop"}
        What to do with points outside the grid (``drop`` warns, naming them).
    dem : ndarray, optional
        Elevation on ``grid``; IHS on a NaN cell are named in a warning.
    """
    import xarray as xr

    if outside not in ("error", "drop"):
        raise IngestError(f"outside must be 'error' or 'drop', got {outside!r}")
    years = np.asarray(list(years), dtype=np.int64)
    table = read_ihs_table(path, id_col=id_col, lon_col=lon_col, lat_col=lat_col, name_col=name_col,
                           category_col=category_col, layer=layer, crs_offset=crs_offset)
    path = table.attrs["path"]
    ids = table["ihs_id"].to_numpy()
    empty = [i for i, v in enumerate(ids) if v == "" or v.lower() == "nan"]
    if empty:
        raise IngestError(f"row {empty[0] + 1} has no IHS id", path=path)
    uniq, counts = np.unique(ids.astype(str), return_counts=True)
    if np.any(counts > 1):
        dups = uniq[counts > 1].tolist()
        raise IngestError(f"duplicate IHS id(s) {dups[:10]}", path=path, ihs_id=dups[0])
    lon, lat = table["lon"].to_numpy(), table["lat"].to_numpy()
    inside = grid.contains(lat, lon)
    if not inside.all():
        bad = np.flatnonzero(~inside)
        swapped = grid.contains(lon[bad], lat[bad])
        extent = f"grid {grid.south}..{grid.north} °N, {grid.west}..{grid.east} °E"
        if swapped.any():
            i = int(bad[np.flatnonzero(swapped)[0]])
            raise IngestError(
                f"lon={lon[i]}, lat={lat[i]} lies outside the {extent}, but swapped (lon={lat[i]}, lat={lon[i]}) it "
                f"lies inside: longitude and latitude look exchanged ({int(swapped.sum())} such IHS); check the "
                f"lon/lat column names", path=path, ihs_id=ids[i],
            )
        names = ", ".join(repr(ids[i]) for i in bad[:10])
        if outside == "error":
            i = int(bad[0])
            raise IngestError(f"lon={lon[i]}, lat={lat[i]} lies outside the {extent} ({len(bad)} IHS outside: {names}); "
                              f"set outside='drop' to leave them out", path=path, ihs_id=ids[i])
        warnings.warn(f"{path}: {len(bad)} IHS outside the {extent} are left out: {names}", IngestWarning, stacklevel=2)
        table = table[inside].reset_index(drop=True)
        ids, lon, lat = table["ihs_id"].to_numpy(), table["lon"].to_numpy(), table["lat"].to_numpy()
    rows, cols = grid.index_of(lat, lon) if len(ids) else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if status is not None:
        operating = read_status_table(status, ids, years, id_col=status_id_col, year_col=status_year_col,
                                      operating_col=status_operating_col, missing_years=missing_years)
    else:
        operating = _status_from_years(table, years, start_col=start_col, end_col=end_col, path=path)
        if operating is None:
            warnings.warn(f"{path}: no operating status (no start/end year columns, no status table); every IHS is "
                          f"taken as operating in every year", IngestWarning, stacklevel=2)
            operating = np.ones((len(ids), len(years)), dtype=bool)
    if dem is not None and len(ids):
        dem = np.asarray(dem)
        if dem.shape != grid.shape:
            raise IngestError(f"dem has shape {dem.shape}, expected the grid's {grid.shape}")
        on_nodata = ~np.isfinite(dem[rows, cols])
        if on_nodata.any():
            names = ", ".join(repr(ids[i]) for i in np.flatnonzero(on_nodata)[:10])
            warnings.warn(f"{path}: {int(on_nodata.sum())} IHS lie on DEM nodata cells ({names}); their radiation areas "
                          f"cannot grow", IngestWarning, stacklevel=2)
    ds = xr.Dataset(
        {
            "ihs_id": ("ihs", ids.astype(str).astype(object), {"long_name": "IHS identifier"}),
            "ihs_name": ("ihs", table["name"].astype(str).to_numpy(dtype=object), {"long_name": "IHS name"}),
            "ihs_category": ("ihs", table["category"].astype(str).to_numpy(dtype=object), {"long_name": "IHS category"}),
            "ihs_lat": ("ihs", lat.astype(np.float64), {"units": "degrees_north", "long_name": "IHS latitude (WGS84)"}),
            "ihs_lon": ("ihs", lon.astype(np.float64), {"units": "degrees_east", "long_name": "IHS longitude (WGS84)"}),
            "ihs_row": ("ihs", np.asarray(rows, dtype=np.int32), {"long_name": "row of the IHS cell on the analysis grid"}),
            "ihs_col": ("ihs", np.asarray(cols, dtype=np.int32), {"long_name": "column of the IHS cell on the analysis grid"}),
            "ihs_operating": (("ihs", "year"), operating, {"long_name": "IHS in operation during the year"}),
        },
        coords={"year": ("year", years, {"long_name": "calendar year"})},
    )
    return ds
