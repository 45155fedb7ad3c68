"""The report section of gaps, fills and implausible values recorded by ingest, prep, stage 2 and stats."""
from __future__ import annotations

import json

import pandas as pd

from ...config import RunConfig
from ...report.html import Section
from ..inputs import input_store


def data_quality(config: RunConfig) -> pd.DataFrame | None:
    """Counts of gaps, fills and implausible values recorded by ingest, prep and stage 2 (None: no stores)."""
    import zarr

    from ..run import store_path

    rows = []

    def attrs(path):
        try:
            return dict(zarr.open_group(path, mode="r").attrs)
        except Exception:  # noqa: BLE001 - a missing store just has nothing to report
            return {}

    cubes = attrs(input_store(config))
    for var, n in json.loads(cubes.get("ihs_gap_days", "{}")).items():
        rows.append(("input", f"days without {var} data (tolerated gaps)", n))
    for var, e in json.loads(cubes.get("ihs_plausibility", "{}")).items():
        rows.append(("input", f"implausible {var} values set to missing (outside {e['range'][0]:g}..{e['range'][1]:g} "
                              f"{e['units']}; {e['files']} files)", e["values"]))
    if config["prep.enabled"]:
        for key, n in json.loads(attrs(store_path(config, "prep")).get("ihs_fills", "{}")).items():
            rows.append(("prep", key.replace("_", " "), n))
    fills = json.loads(attrs(store_path(config, "stage2")).get("ihs_fills", "{}"))
    for var, n in fills.get("met_time_filled_values", {}).items():
        rows.append(("stage2", f"{var} values filled along time", n))
    stats_json = config.run_dir / "stats" / "stats.json"
    if stats_json.is_file():
        head = json.loads(stats_json.read_text()).get("headline", {})
        if head.get("negative_pixel_days") is not None:
            rows.append(("stats", f"IHS-area pixel-days with a negative IHS-related estimate, kept as they are "
                                  f"({head.get('negative_pct') or 0:.2f} %)", head["negative_pixel_days"]))
        if head.get("ihs_days_share_over_100") is not None:
            rows.append(("stats", "single-IHS-area days with a contribution above 100 % (ihs_summary.csv)",
                         head["ihs_days_share_over_100"]))
    if not rows:
        return None
    return pd.DataFrame(rows, columns=["stage", "what", "count"]).set_index(["stage", "what"])


def quality_section(config: RunConfig) -> Section | None:
    """The counts of :func:`data_quality` with how each was handled (None when nothing was recorded)."""
    quality = data_quality(config)
    if quality is None:
        return None
    s = Section("Gaps, fills and implausible values",
                "What the inputs lacked and how it was filled: kriging per day (prep), along time per pixel where "
                "a day had no data at all, meteorology along time (stage 2); implausible input values were set "
                "to missing first. Pixels with no data on any day are masked out of every figure and table. "
                "Negative IHS-related values and daily contributions above 100 % are estimation noise around "
                "small true values: counted here, never clipped or hidden.")
    s.tables.append(("Counts", quality))
    return s
