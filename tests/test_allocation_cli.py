"""``allocate_command`` (registered as ``ihs allocate``): files written, numbers, error messages."""
from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ihs_hpc.allocation import (
    allocate,
    lorenz_curve,
    plot_lorenz_curves,
    read_index_csv,
    read_pm25_csv,
)
from ihs_hpc.allocation.cli import allocate_command

PM25_CSV = Path(__file__).parent / "data" / "allocation" / "pm25_2013.csv"
INDEX_NAMES = ["population", "industrial_output", "energy", "rnd"]


@pytest.fixture
def index_csv(tmp_path) -> Path:
    cities = pd.read_csv(PM25_CSV, comment="#")["city"]
    rng = np.random.default_rng(42)
    table = pd.DataFrame(rng.lognormal(3.0, 1.0, (len(cities), len(INDEX_NAMES))),
                         columns=INDEX_NAMES)
    table.insert(0, "city", cities)
    path = tmp_path / "indices.csv"
    table.to_csv(path, index=False)
    return path


def run(args):
    return CliRunner().invoke(allocate_command, [str(a) for a in args])


def test_cli_writes_plan_tables_and_figure_equal_to_the_api(tmp_path, index_csv):
    out = tmp_path / "out"
    result = run(["--pm25", PM25_CSV, "--index", index_csv, "--q", 0.4, "--p-min", 0.3,
                  "--p-max", 0.5, "--out", out, "--starts", 4, "--seed", 1])
    assert result.exit_code == 0, result.output
    names = ["plan.csv", "gini.csv", "contribution_initial.csv", "allocation.md",
             "lorenz_curves.png"]
    for name in names:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name

    table = pd.read_csv(PM25_CSV, comment="#")
    pm25 = pd.Series(table["pm25"].to_numpy(), index=table["city"])
    indices = pd.read_csv(index_csv).set_index("city")
    expected = allocate(pm25, indices, 0.4, 0.3, 0.5)

    plan = pd.read_csv(out / "plan.csv")
    assert list(plan["city"]) == list(expected.plan["city"])
    for column in ["pm25_initial", "reduction_rate", "reduction_amount", "pm25_target"]:
        np.testing.assert_array_equal(plan[column].to_numpy(), expected.plan[column].to_numpy())
    gini = pd.read_csv(out / "gini.csv")
    assert list(gini["index"]) == INDEX_NAMES
    for column in ["gini_initial", "gini_optimised", "gini_change"]:
        np.testing.assert_array_equal(gini[column].to_numpy(), expected.gini[column].to_numpy())

    contribution = pd.read_csv(out / "contribution_initial.csv").set_index("city")
    for name in INDEX_NAMES:  # eq. 2 by hand
        direct = (indices[name] / indices[name].sum()) / (pm25 / pm25.sum())
        np.testing.assert_allclose(contribution[name], direct[contribution.index], rtol=1e-13)

    markdown = (out / "allocation.md").read_text(encoding="utf-8")
    for city in pm25.index:
        assert f"| {city} | {pm25[city]:.2f} |" in markdown
    assert f"| Sum | {pm25.sum():.2f} | {0.4 * pm25.sum():.2f} | 40.00 |" in markdown

    image = matplotlib.image.imread(out / "lorenz_curves.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.05  # something was drawn
    assert f"{expected.objective:.6f}" in result.output


def test_cli_multistart_matches_the_api_with_the_same_seed(tmp_path, index_csv):
    result = run(["--pm25", PM25_CSV, "--index", index_csv, "--method", "multistart",
                  "--starts", 6, "--seed", 7, "--out", tmp_path / "out"])
    assert result.exit_code == 0, result.output
    assert "method multistart" in result.output
    plan = pd.read_csv(tmp_path / "out" / "plan.csv")
    expected = allocate(read_pm25_csv(PM25_CSV), read_index_csv(index_csv), 0.4, 0.3, 0.5,
                        method="multistart", starts=6, seed=7)
    assert expected.method == "multistart" and expected.info["starts"] == 6
    np.testing.assert_array_equal(plan["reduction_rate"], expected.plan["reduction_rate"])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "which, text, must_name",
    [
        ("pm25", "city,pm2.5\nA,1\nB,2\n", ["missing column 'pm25'"]),
        ("pm25", "city,pm25\nA,1\nB,high\n", ["column 'pm25'", "'high'", "city 'B'"]),
        ("pm25", "city,pm25\nA,1\nB,-3\n", ["column 'pm25'", "'-3'", "city 'B'"]),
        ("pm25", "city,pm25\nA,1\nA,2\n", ["column 'city'", "duplicate city names ['A']"]),
        ("index", "town,population\nA,1\nB,2\n", ["missing column 'city'"]),
        ("index", "city,population,energy\nA,1,2\nB,3,\n",
         ["column 'energy'", "missing value", "city 'B'"]),
        ("index", "city\nA\nB\n", ["no index columns"]),
    ],
)
def test_cli_bad_csv_fails_naming_file_and_column(tmp_path, which, text, must_name):
    good_pm25 = write(tmp_path / "pm25.csv", "city,pm25\nA,80\nB,120\n")
    good_index = write(tmp_path / "index.csv", "city,population\nA,5\nB,9\n")
    bad = write(tmp_path / f"bad_{which}.csv", text)
    pm25_path, index_path = (bad, good_index) if which == "pm25" else (good_pm25, bad)
    result = run(["--pm25", pm25_path, "--index", index_path, "--out", tmp_path / "out"])
    assert result.exit_code != 0
    assert str(bad) in result.output
    for fragment in must_name:
        assert fragment in result.output, (fragment, result.output)
    assert not (tmp_path / "out" / "plan.csv").exists()


def test_cli_mismatched_cities_and_infeasible_q_fail(tmp_path):
    pm25_path = write(tmp_path / "pm25.csv", "city,pm25\nA,80\nB,120\nC,60\n")
    index_path = write(tmp_path / "index.csv", "city,population\nA,5\nB,9\nD,4\n")
    mismatch = run(["--pm25", pm25_path, "--index", index_path, "--out", tmp_path / "o1"])
    assert mismatch.exit_code != 0
    assert "only in pm25: ['C']; only in index: ['D']" in mismatch.output
    assert str(pm25_path) in mismatch.output and str(index_path) in mismatch.output

    index_path = write(tmp_path / "index.csv", "city,population\nA,5\nB,9\nC,4\n")
    infeasible = run(["--pm25", pm25_path, "--index", index_path, "--q", 0.6,
                      "--out", tmp_path / "o2"])
    assert infeasible.exit_code != 0
    assert "infeasible: q=0.6" in infeasible.output


def test_lorenz_figure_has_one_labelled_panel_per_index(index_csv):
    pm25 = read_pm25_csv(PM25_CSV)
    indices = read_index_csv(index_csv)[["population", "energy", "rnd"]]
    result = allocate(pm25, indices, 0.4, 0.3, 0.5)
    figure = plot_lorenz_curves(result)
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert len(panels) == 3
    targets = pd.Series(result.plan["pm25_target"].to_numpy(), index=result.plan["city"])
    for ax, name in zip(panels, indices.columns):
        assert name in ax.get_title() and name in ax.get_xlabel()
        assert "PM2.5" in ax.get_ylabel()
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert len(labels) == 3 and labels[2].startswith("Target")
        drawn = ax.get_lines()[2]  # equality line, initial, target
        expected = lorenz_curve(targets, indices[name])
        np.testing.assert_allclose(drawn.get_xdata(), expected["cum_index_share"], rtol=1e-14)
        np.testing.assert_allclose(drawn.get_ydata(), expected["cum_pm25_share"], rtol=1e-14)
