"""The report's interactive map (``report/map.html``): one self-contained Leaflet page that opens with no network.

Leaflet's JavaScript and CSS come from the installed ``XStatic-Leaflet`` package and are written into
the page itself (the CSS's images as ``data:`` URIs), so the page loads nothing from anywhere — it
works from ``file://`` on a login node or a laptop offline. The map uses Leaflet's plate-carrée CRS
(EPSG:4326), the grid's own, so every raster layer is the grid's pixels placed on their cell edges,
drawn as PNG ``data:`` URIs with a legend; there is no base map (tiles would need the network).

Layers: every map product of :mod:`ihs_hpc.export.maps` (period means, each year's annual means, trend
slopes, z, p and significance) as exclusive base layers; the IHS radiation areas (with a pop-up of
each source's statistics), the IHS points and the city boundaries as overlays (:mod:`ihs_hpc.export.vector`).
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

import numpy as np

_SOURCE_MAP = re.compile(r"^\s*//# sourceMappingURL=.*$", re.MULTILINE)
_CSS_URL = re.compile(r"url\((?P<q>['\"]?)images/(?P<name>[\w.-]+\.png)(?P=q)\)")


class LeafletError(RuntimeError):
    """Leaflet cannot be taken from the installed XStatic-Leaflet package."""


def leaflet_assets() -> tuple[str, str, str]:
    """``(version, leaflet.js, leaflet.css)`` from XStatic-Leaflet, with the CSS's images inlined as
    ``data:`` URIs and the source-map comment removed (so nothing is fetched)."""
    try:
        import xstatic.pkg.leaflet as xleaflet
    except ImportError as err:  # pragma: no cover - installed with ihs_hpc
        raise LeafletError("the interactive map needs the XStatic-Leaflet package "
                             "(pip install XStatic-Leaflet); it ships Leaflet's JavaScript and CSS") from err
    base = Path(xleaflet.BASE_DIR)
    js = _SOURCE_MAP.sub("", (base / "leaflet.js").read_text(encoding="utf-8"))
    if "</script" in js.lower():  # pragma: no cover - would end the inline <script> early
        raise LeafletError(f"{base / 'leaflet.js'} contains '</script' and cannot be inlined")

    def inline(match):
        data = base64.b64encode((base / "images" / match["name"]).read_bytes()).decode("ascii")
        return f'url("data:image/png;base64,{data}")'

    css = _CSS_URL.sub(inline, (base / "leaflet.css").read_text(encoding="utf-8"))
    return str(xleaflet.VERSION), js, css


def _png_data_uri(rgba: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _hex(rgba) -> str:
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in rgba[:3])


def raster_layer(title: str, values: np.ndarray, *, units: str, colormap: str, categories=None) -> dict | None:
    """A raster layer: the values coloured into a PNG (NaN transparent) and its legend.

    Continuous layers span the 2nd–98th percentile (symmetric about 0 for diverging colour maps);
    ``categories`` (``{value: label}``) draws each value in its own colour. ``None`` when every value is NaN.
    """
    import matplotlib

    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return None
    cmap = matplotlib.colormaps[colormap]
    rgba = np.zeros(values.shape + (4,), dtype=np.uint8)
    if categories:
        keys = sorted(categories)
        colours = {k: cmap(i / max(len(keys) - 1, 1)) for i, k in enumerate(keys)}
        for k, colour in colours.items():
            rgba[finite & (values == k)] = (np.array(colour) * 255).astype(np.uint8)
        legend = {"kind": "categories", "items": [[_hex(colours[k]), categories[k]] for k in keys]}
    else:
        lo, hi = np.percentile(values[finite], [2, 98])
        if colormap.startswith(("RdBu", "coolwarm", "bwr", "seismic")):
            hi = max(abs(lo), abs(hi)) or 1.0
            lo = -hi
        if hi <= lo:
            hi = lo + 1.0
        scaled = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
        rgba[finite] = (cmap(scaled[finite]) * 255).astype(np.uint8)
        legend = {"kind": "ramp", "stops": [_hex(cmap(x)) for x in np.linspace(0, 1, 11)],
                  "min": float(lo), "max": float(hi), "units": units}
    rgba[~finite, 3] = 0
    return {"title": title, "png": _png_data_uri(rgba), "legend": legend}


def _geojson(frame, keep: list[str]) -> dict | None:
    if frame is None or frame.empty:
        return None
    frame = frame[[c for c in keep if c in frame.columns] + ["geometry"]]
    frame = frame[frame.geometry.notna()]
    return json.loads(frame.to_json(na="null", drop_id=True))


def _script_json(value) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` can close it early)."""
    return json.dumps(value, allow_nan=False).replace("<", "\\u003c")


def write_map_page(path, *, title: str, bounds: tuple[float, float, float, float], rasters: list[dict],
                   areas: dict | None, points: dict | None, cities: dict | None, back_link: str | None = None) -> Path:
    """Write the self-contained Leaflet page.

    Parameters
    ----------
    path : path-like
        Output ``.html``.
    title : str
        Page heading.
    bounds : (west, south, east, north)
        The grid's outer edges in degrees.
    rasters : list of dict
        From :func:`raster_layer`; the first is shown on opening.
    areas, points, cities : GeoJSON dicts or None
        Radiation areas (their properties shown in a pop-up), IHS points, city boundaries.
    back_link : str, optional
        Relative link back to the report (``index.html``).
    """
    version, js, css = leaflet_assets()
    west, south, east, north = bounds
    data = {"bounds": [[south, west], [north, east]], "rasters": rasters, "areas": areas, "points": points,
            "cities": cities}
    back = f'<a href="{html.escape(back_link)}">&larr; report</a> · ' if back_link else ""
    page = _TEMPLATE.format(
        title=html.escape(title), leaflet_css=css, leaflet_js=js, version=html.escape(version), back=back,
        page_css=_PAGE_CSS, data=_script_json(data), app=_APP_JS)
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


def write_run_map(run_dir, path, *, cubes=None, title: str = "IHS-related PM2.5: interactive map") -> Path:
    """The interactive map of a finished run: every map product, the radiation areas, IHS points, cities.
    ``cubes`` is the run's input store when it is not ``RUN/cubes.zarr``."""
    from ..export.maps import TREND_FLAGS, available_products, is_flag
    from ..export.sources import RunOutputs
    from ..export.vector import AREAS_LAYER, CITIES_LAYER, POINTS_LAYER, vector_layers

    outputs = RunOutputs(run_dir, cubes=cubes)
    years = outputs.store("maps")["year"].values.astype(int)
    flag_labels = dict(zip(TREND_FLAGS["flag_values"], ["significant decrease", "no significant trend",
                                                         "significant increase"]))
    rasters = []
    for product, data in available_products(outputs):
        values = np.asarray(data.values, dtype=np.float64)
        label = product.label or product.name
        if product.kind == "annual":
            layers = [raster_layer(f"{label}, {y}", values[i], units=product.units, colormap=product.colormap)
                      for i, y in enumerate(years)]
        else:
            layers = [raster_layer(label, values, units=product.units, colormap=product.colormap,
                                   categories=flag_labels if is_flag(product) else None)]
        rasters += [layer for layer in layers if layer is not None]
    layers = vector_layers(outputs)
    area_keys = ["ihs_id", "name", "category", "city", "operating_years", "area_km2", "n_pixels", "pm25_ihs_mean",
                 "share_pct", "pm25_mean", "pm25_ihs_sen_slope", "pm25_ihs_mk_p"]
    return write_map_page(path, title=title, bounds=outputs.grid.bounds, rasters=rasters,
                          areas=_geojson(layers[AREAS_LAYER], area_keys),
                          points=_geojson(layers[POINTS_LAYER], ["ihs_id", "name", "category"]),
                          cities=_geojson(layers.get(CITIES_LAYER), ["city", "area_km2"]),
                          back_link="index.html")


_PAGE_CSS = """
html, body { height: 100%; margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
#top { padding: .4em .8em; border-bottom: 2px solid #b2182b; font-size: .95em; white-space: nowrap;
       overflow: hidden; text-overflow: ellipsis; height: 1.6em; }
#top h1 { font-size: 1.15em; display: inline; margin: 0 .6em 0 0; }
#map { position: absolute; top: 2.6em; bottom: 0; left: 0; right: 0; background: #f4f4f4; }
.leaflet-image-layer { image-rendering: pixelated; image-rendering: crisp-edges; }
.legend { background: rgba(255,255,255,.92); padding: .4em .6em; border-radius: 4px; font-size: 12px;
          max-width: 280px; box-shadow: 0 1px 4px rgba(0,0,0,.3); }
.legend .ramp { height: 12px; margin: .3em 0 .1em 0; border: 1px solid #999; }
.legend .ends { display: flex; justify-content: space-between; }
.legend .swatch { display: inline-block; width: 12px; height: 12px; margin-right: .4em; border: 1px solid #999;
                  vertical-align: middle; }
.popup table { border-collapse: collapse; font-size: 12px; }
.popup td { padding: 1px 6px 1px 0; }
"""

_APP_JS = r"""
(function () {
  var D = JSON.parse(document.getElementById("ihs-data").textContent);
  var map = L.map("map", {crs: L.CRS.EPSG4326, zoomSnap: 0.25});
  map.fitBounds(D.bounds);
  var base = {}, overlays = {}, first = null;
  D.rasters.forEach(function (r) {
    var layer = L.imageOverlay(r.png, D.bounds, {opacity: 0.85});
    layer.legend = r.legend; layer.title = r.title;
    base[r.title] = layer;
    if (first === null) { first = layer; }
  });
  var legend = L.control({position: "bottomright"});
  legend.onAdd = function () { this._div = L.DomUtil.create("div", "legend"); return this._div; };
  legend.show = function (layer) {
    var g = layer.legend, h = "<b>" + escapeHtml(layer.title) + "</b>";
    if (g.kind === "ramp") {
      h += '<div class="ramp" style="background: linear-gradient(to right, ' + g.stops.join(", ") + ')"></div>' +
           '<div class="ends"><span>' + fmt(g.min) + "</span><span>" + escapeHtml(g.units) + "</span><span>" +
           fmt(g.max) + "</span></div>";
    } else {
      g.items.forEach(function (it) {
        h += '<div><span class="swatch" style="background:' + it[0] + '"></span>' + escapeHtml(it[1]) + "</div>";
      });
    }
    this._div.innerHTML = h;
  };
  legend.addTo(map);
  if (first !== null) { first.addTo(map); legend.show(first); }
  map.on("baselayerchange", function (e) { legend.show(e.layer); });
  if (D.cities) {
    overlays["City boundaries"] = L.geoJSON(D.cities, {
      style: {color: "#444", weight: 1.2, dashArray: "4 3", fill: false},
      onEachFeature: function (f, l) { l.bindTooltip(escapeHtml(String(f.properties.city))); }
    }).addTo(map);
  }
  if (D.areas) {
    overlays["IHS radiation areas"] = L.geoJSON(D.areas, {
      style: {color: "#b2182b", weight: 1.5, fillOpacity: 0.05},
      onEachFeature: function (f, l) { l.bindPopup(popup(f.properties)); }
    }).addTo(map);
  }
  if (D.points) {
    overlays["IHS sources"] = L.geoJSON(D.points, {
      pointToLayer: function (f, ll) {
        return L.circleMarker(ll, {radius: 4, color: "#000", weight: 1, fillColor: "#fff", fillOpacity: 1});
      },
      onEachFeature: function (f, l) { l.bindTooltip(escapeHtml(f.properties.name || f.properties.ihs_id)); }
    }).addTo(map);
  }
  L.control.layers(base, overlays, {collapsed: true}).addTo(map);
  L.control.scale({imperial: false}).addTo(map);
  window.ihsMapReady = true;

  function popup(p) {
    var labels = {ihs_id: "IHS id", name: "name", category: "category", city: "city",
                  operating_years: "operating years", area_km2: "area (km²)", n_pixels: "pixels",
                  pm25_ihs_mean: "mean IHS-related PM2.5 (µg m⁻³)", share_pct: "share of total PM2.5 (%)",
                  pm25_mean: "mean total PM2.5 (µg m⁻³)", pm25_ihs_sen_slope: "Sen slope (µg m⁻³ yr⁻¹)",
                  pm25_ihs_mk_p: "Mann–Kendall p"};
    var rows = Object.keys(labels).filter(function (k) { return k in p; }).map(function (k) {
      var v = p[k];
      return "<tr><td>" + labels[k] + "</td><td><b>" + (typeof v === "number" ? fmt(v) : escapeHtml(v === null ? "–" : String(v))) + "</b></td></tr>";
    });
    return '<div class="popup"><table>' + rows.join("") + "</table></div>";
  }
  function fmt(v) {
    if (v === null || !isFinite(v)) { return "–"; }
    var a = Math.abs(v);
    return a !== 0 && (a < 0.01 || a >= 1e5) ? v.toExponential(2) : (Math.round(v * 100) / 100).toString();
  }
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
})();
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>/* Leaflet {version}, BSD-2-Clause, https://leafletjs.com (inlined: this page loads nothing) */
{leaflet_css}</style>
<style>{page_css}</style>
</head><body>
<div id="top">{back}<h1>{title}</h1><span>Pick a map with the layers button (top right); click an IHS radiation area for its
statistics.</span></div>
<div id="map"></div>
<script>{leaflet_js}</script>
<script type="application/json" id="ihs-data">{data}</script>
<script>{app}</script>
</body></html>
"""
