"""The report stage on the small fake run of test_stats_tables: PNGs at their fixed pixel sizes, an
index.html that references every PNG, a report.md, and the optional Lorenz curves."""
from __future__ import annotations

import json
import re

import pytest

from test_stats_tables import shared_run  # the fake run of the stats tests, built once per session


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from ihs_hpc.pipeline.report import run_report

    config, _, _, stats_dir = shared_run(tmp_path_factory)
    root = config.run_dir
    # an allocation output beside the stats: its Lorenz curves are copied into the report
    from matplotlib.figure import Figure

    (root / "allocation").mkdir()
    fig = Figure(figsize=(4, 3), dpi=50)
    fig.add_subplot().plot([0, 1], [0, 1])
    fig.savefig(root / "allocation" / "lorenz_curves.png")
    result = run_report(config, None, lambda *a: None)
    return config, root / "report", result


def test_png_sizes(report):
    import matplotlib.image as mpimg

    from ihs_hpc.report.figures import pixel_size

    _, out, result = report
    manifest = json.loads((out / "figures.json").read_text())
    expected = {"map_mean_pm25.png", "map_mean_pm25_ihs.png", "map_share.png", "map_background.png",
                "series_annual.png", "series_seasonal.png", "series_daily.png", "map_trend_pm25_ihs.png",
                "map_trend_pm25.png", "city_annual.png", "city_boxplots.png", "correlation_operating.png",
                "case_ihs.png", "truth.png", "attribution_case.png"}
    assert expected <= set(manifest)
    for name, spec in manifest.items():
        image = mpimg.imread(out / "figures" / name)
        assert image.shape[:2] == pixel_size(spec["kind"]) == (spec["height_px"], spec["width_px"]), name
        assert image.std() > 0.01, f"{name} looks blank"
    assert result["figures"] == len(manifest) + 1


def test_index_references_every_png(report):
    _, out, _ = report
    html = (out / "index.html").read_text()
    md = (out / "report.md").read_text()
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "lorenz_curves.png" in pngs
    referenced = set(re.findall(r'<img src="figures/([^"]+\.png)"', html))
    assert referenced == set(pngs)
    assert set(re.findall(r"\]\(figures/([^)]+\.png)\)", md)) == set(pngs)
    for needle in ("Alpha City", "Beta City", "Table 2", "Table 3", "Table 4", "µg m⁻³", "Mann–Whitney", "DJF"):
        assert needle in html, needle


def test_report_disabled(tmp_path):
    from ihs_hpc.config import RunConfig, validate_settings
    from ihs_hpc.pipeline.report import run_report

    config = RunConfig(settings=validate_settings({"report": {"enabled": False}}), source="t", run_dir=tmp_path)
    assert run_report(config, None, lambda *a: None) == {"enabled": False}
    assert not (tmp_path / "report").exists()


def test_report_needs_stats(tmp_path):
    from ihs_hpc.config import RunConfig, validate_settings
    from ihs_hpc.pipeline.report import run_report

    config = RunConfig(settings=validate_settings({}), source="t", run_dir=tmp_path)
    with pytest.raises(ValueError, match="stats"):
        run_report(config, None, lambda *a: None)



def test_report_shows_the_runs_matrix_row_the_modes_and_the_counts(report):
    import pandas as pd

    from ihs_hpc.validate import failures, matrix_row

    config, out, _ = report
    html = (out / "index.html").read_text()
    md = (out / "report.md").read_text()
    assert "row of the score matrix" in html and "stage2.met_fit: background" in html
    assert "prep.outliers: residual" in md
    scores = pd.read_csv(config.run_dir / "stats" / "truth_scores.csv").set_index("metric")["value"].to_dict()
    row = matrix_row(scores)
    verdict = "yes" if not failures(row) else "no: " + ", ".join(failures(row))
    assert verdict in md
    head = json.loads((config.run_dir / "stats" / "stats.json").read_text())["headline"]
    assert head["negative_pixel_days"] > 0  # the fake estimate has noise around small true values
    assert "negative IHS-related estimate" in md and f"{head['negative_pixel_days']}" in md
    assert "contribution above 100 %" in md


def _md_tables(md: str, section: str) -> dict:
    """The Markdown tables of one ``## section`` of report.md: caption -> (header, rows of cells)."""
    text = md.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    tables = {}
    for block in text.split("### ")[1:]:
        caption, _, body = block.partition("\n")
        lines = [line for line in body.splitlines() if line.startswith("|")]
        cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
        tables[caption.strip()] = (cells[0], cells[2:])
    return tables


def _number(cell: str) -> float:
    return float("nan") if cell == "–" else float(cell)


def test_attribution_section_matches_the_csv(report):
    """The per-source section: the case study is the shared area where a source starts (IHS001 from 2013),
    its figure is in both pages, and every number of its tables is the CSV's (read here with pandas),
    the area total the mean of the fake estimate over the union of the two areas."""
    import numpy as np
    import pandas as pd

    from test_stats_tables import IHS_RC, YEARS, shared_run

    config, out, _ = report
    _, arrays, _, stats_dir = shared_run(None)
    csv = pd.read_csv(stats_dir / "ihs_attribution.csv", dtype={"ihs_id": str})
    html = (out / "index.html").read_text()
    md = (out / "report.md").read_text()
    assert "Per-source attribution" in html and '<img src="figures/attribution_case.png"' in html
    assert "](figures/attribution_case.png)" in md
    tables = _md_tables(md, "Per-source attribution")
    case = sorted(c for c in tables if c.startswith("Case study:") and c.endswith("year by year"))
    assert [c.split("(")[-1].split(")")[0] for c in case] == ["IHS000", "IHS001"]  # not IHS002: alone

    def check(header, rows, expected: pd.DataFrame, keys):
        assert len(rows) == len(expected)
        for row in rows:
            cell = dict(zip(header, row))
            key = tuple(int(cell[k]) if k == "year" else cell[k] for k in keys)
            want = expected.loc[key if len(key) > 1 else key[0]]
            for col in ("pm25_ihs_own", "pm25_ihs_own_lower", "pm25_ihs_own_upper", "share_of_area_pct",
                        "pm25_ihs_area", "pm25_ihs_area_lower", "pm25_ihs_area_upper", "ihs_true_annual_mean"):
                assert _number(cell[col]) == pytest.approx(float(want[col]), abs=0.0051), (cell, col)
            assert cell["method"] == want["method"]
            assert cell["operating"] == ("yes" if bool(want["operating"]) else "no")

    indexed = csv.set_index(["ihs_id", "year"])
    for caption in case:
        ihs_id = caption.split("(")[-1].split(")")[0]
        header, rows = tables[caption]
        check(header, rows, indexed.loc[ihs_id], ["year"])
    header, rows = tables["Every source, year by year"]
    check(header, rows, indexed, ["ihs_id", "year"])
    assert len(rows) == len(IHS_RC) * len(YEARS)

    # the shared area's total: annual mean of the fake estimate over the union of the first two areas
    header, rows = next(v for k, v in tables.items() if k.startswith("Case study: the shared area's total"))
    union = np.union1d(arrays["members"][0], arrays["members"][1])
    years = pd.DatetimeIndex(arrays["time"]).year
    est = arrays["est"].reshape(len(years), -1)[:, union]
    ok = np.isfinite(arrays["pm25"].reshape(len(years), -1)[:, union]) & np.isfinite(est)
    for row in rows:
        sel = years == int(row[0])
        pixel_means = np.where(ok[sel], est[sel], 0).sum(0) / ok[sel].sum(0)
        assert _number(row[1]) == pytest.approx(pixel_means.mean(), abs=0.0051)
