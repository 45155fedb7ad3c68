"""Score matrix: the whole pipeline against known truth over scene variants × seeds × modes.

For every scene variant of :data:`ihs_hpc.validate.VARIANTS` and every seed, a ``tiny`` scene is
generated once; the pipeline (input → prep → stage 1 → stage 2 → stage 3 → stats) then runs on it in
each combination of ``stage2.met_fit`` (background | pixel) and ``prep.outliers`` (residual | iqr),
with ``stage3.drift: covariates``, and once more in the default modes with ``stage3.drift: none``
(ordinary kriging), in this process (no cluster). Each run's ``stats/truth_scores.csv`` gives one row of the matrix
(:func:`ihs_hpc.validate.matrix_row`), judged against :data:`ihs_hpc.validate.BOUNDS`.

Writes ``truth_matrix.csv`` (one row per variant, seed, met_fit, outliers, drift; appended as runs finish, so
an interrupted matrix resumes) and ``truth_matrix.md`` (summary and one table per mode combination)
to ``--out`` (default ``benchmarks/results``).

    python benchmarks/bench_truth_matrix.py                     # 11 variants x 3 seeds x 4 modes (hours)
    python benchmarks/bench_truth_matrix.py --variants base,spikes --seeds 0 --modes background/residual/covariates
"""
from __future__ import annotations

import argparse
import math
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ihs_hpc.validate import BOUNDS, COLUMNS, SEASONAL_CYCLE_MIN_PCT, VARIANTS, bounds_text, failures, matrix_row

MODES = (("background", "residual", "covariates"), ("background", "residual", "none"),
         ("pixel", "residual", "covariates"), ("background", "iqr", "covariates"), ("pixel", "iqr", "covariates"))
DEFAULT_MODE = ("background", "residual", "covariates")
STAGES = ("input", "prep", "stage1", "stage2", "stage3", "stats")
KEYS = ("variant", "seed", "met_fit", "outliers", "drift")


def scene_store(work: Path, variant: str, seed: int, preset: str) -> Path:
    """Generate (once) the scene of a variant and seed."""
    from ihs_hpc.io.cube import is_complete
    from ihs_hpc.synth import generate_scene

    path = work / "scenes" / f"{preset}-{variant}-s{seed}.zarr"
    if not is_complete(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        generate_scene(preset, path, seed=seed, tile_size=32, progress=False, overwrite=True,
                       options=VARIANTS[variant])
    return path


def removed_mass(run_dir: Path) -> dict:
    """Mean PM2.5 the outlier step took away (input minus prep's filled output) in IHS areas and background."""
    import xarray as xr

    cubes = xr.open_zarr(run_dir / "cubes.zarr") if (run_dir / "cubes.zarr").exists() else None
    if cubes is None:
        import yaml as _yaml

        cubes = xr.open_zarr(_yaml.safe_load((run_dir / "config.yaml").read_text())["ihs"]["input"]["store"])
    prep = xr.open_zarr(run_dir / "prep.zarr")
    inside = xr.open_zarr(run_dir / "stage1.zarr").ihs_mask.values.astype(bool)
    diff = (cubes.pm25 - prep.pm25).mean("time").values
    return {"removed_mass_ihs": float(np.nanmean(diff[inside])), "removed_mass_background": float(np.nanmean(diff[~inside]))}


def run_combo(work: Path, store: Path, variant: str, seed: int, met_fit: str, outliers: str, drift: str,
              preset: str) -> dict:
    """One pipeline run; returns its matrix row (plus seconds)."""
    from ihs_hpc.config import load_config
    from ihs_hpc.pipeline.run import run_pipeline

    base = work / "runs" / f"{preset}-{variant}-s{seed}"
    run_dir = base / f"{outliers}-{met_fit}-{drift}"
    base.mkdir(parents=True, exist_ok=True)
    settings = {"run_dir": str(run_dir), "input": {"kind": "store", "store": str(store)},
                "grid": {"tile_size": 32}, "cluster": {"kind": "none"}, "report": {"enabled": False},
                "prep": {"outliers": outliers}, "stage2": {"met_fit": met_fit}, "stage3": {"drift": drift}}
    path = base / f"{outliers}-{met_fit}-{drift}.yaml"
    path.write_text(yaml.safe_dump(settings))
    config = load_config(path)
    # another run with the same outlier rule shares prep and stage 1 (and stage 2 with the same met mode):
    # same fingerprints, kept
    for sibling in (base / f"{outliers}-{m}-{d}" for m in ("background", "pixel") for d in ("covariates", "none")
                    if (m, d) != (met_fit, drift)):
        for name in ("prep.zarr", "stage1.zarr") + (("stage2.zarr",) if f"-{met_fit}-" in sibling.name else ()):
            if (sibling / name / "zarr.json").is_file() and not (run_dir / name).exists():
                run_dir.mkdir(parents=True, exist_ok=True)
                shutil.copytree(sibling / name, run_dir / name)
    log = (base / f"{outliers}-{met_fit}-{drift}.log").open("a")
    start = time.perf_counter()
    try:
        run_pipeline(config, None, stages=STAGES, echo=lambda m: print(m, file=log, flush=True))
    finally:
        log.close()
    seconds = time.perf_counter() - start
    scores = pd.read_csv(run_dir / "stats" / "truth_scores.csv").set_index("metric")["value"].to_dict()
    row = {"variant": variant, "seed": seed, "met_fit": met_fit, "outliers": outliers, "drift": drift,
           **matrix_row(scores)}
    for season in ("DJF", "MAM", "JJA", "SON"):
        row[f"bias_pct_{season}"] = float(scores.get(f"bias_pct_{season}", math.nan))
    row.update(removed_mass(run_dir))
    row["failed"] = ";".join(failures(row))
    row["seconds"] = round(seconds, 1)
    return row


# ---------------------------------------------------------------------------------------------- tables
def _select(df: pd.DataFrame, mode) -> pd.Series:
    m, o, d = mode
    return (df["met_fit"] == m) & (df["outliers"] == o) & (df["drift"] == d)


def _fmt(value, column: str, failed: str) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "–"
    digits = 3 if column.endswith("_r") or column == "negative_fraction" else 1
    text = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return f"**{text}** ✗" if column in failed.split(";") else text


def markdown(df: pd.DataFrame, command: str) -> str:
    cols = list(COLUMNS)
    lines = ["# Score matrix against known truth", "",
             f"Scene variants × seeds × modes on the `tiny` preset (48 × 64 px, 2019–2021), whole pipeline "
             f"(`{command}`; {platform.node()}, a shared 2-core machine; {time.strftime('%Y-%m-%d')}).", "",
             f"Bounds (every cell of the default modes, `stage2.met_fit: background`, `prep.outliers: residual`, "
             f"`stage3.drift: covariates`): "
             f"{bounds_text()}. A failing cell is **bold** with ✗. month_profile_r is judged only where the truth's "
             f"month-of-year amplitude is at least {SEASONAL_CYCLE_MIN_PCT:g} %.", "",
             "Variants (`input.synthetic` options): " + "; ".join(
                 f"`{name}` {opts or '(preset)'}" for name, opts in VARIANTS.items()), "",
             "## Cells within all bounds, per variant and mode", ""]
    present = {tuple(r) for r in df[["met_fit", "outliers", "drift"]].itertuples(index=False)}
    order = {m: i for i, m in enumerate(MODES)}
    modes = sorted(present, key=lambda m: (order.get(m, len(order)), m[2] != "covariates", m))
    head = "| variant | " + " | ".join("/".join(m) for m in modes) + " |"
    lines += [head, "|:---|" + "---:|" * len(modes)]
    for variant in dict.fromkeys(df["variant"]):
        cells = []
        for mode in modes:
            sub = df[(df["variant"] == variant) & _select(df, mode)]
            ok = int((sub["failed"].fillna("") == "").sum())
            bad = sorted({f for fs in sub["failed"].fillna("") for f in fs.split(";") if f})
            cells.append(f"{ok}/{len(sub)}" + (f" ({', '.join(bad)})" if bad else ""))
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += ["", "## Mean over seeds, modes side by side", ""]
    key = ["bias_pct", "daily_r", "month_profile_r", "share_error_pp"]
    head = "| variant | " + " | ".join(f"{c} {'/'.join(m)}" for c in key for m in modes) + " |"
    lines += [head, "|:---|" + "---:|" * (len(key) * len(modes))]
    for variant in dict.fromkeys(df["variant"]):
        cells = []
        for c in key:
            for mode in modes:
                sub = df[(df["variant"] == variant) & _select(df, mode)]
                cells.append(_fmt(float(sub[c].mean()), c, ""))
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    if "removed_mass_ihs" in df:
        lines += ["", "## Outlier step: mean PM2.5 removed (µg m⁻³; input minus prep output), IHS areas vs background",
                  "", "Mean over seeds and met modes; a rule that takes more from IHS areas lowers the estimate. Only the "
                  "`spikes` and `multiplicative_noise` scenes carry retrieval artefacts (x3-6 spikes, a log-normal factor on "
                  "the observed PM2.5): there, larger where the level is higher, removing more from IHS areas is right.", "",
                  "| variant | " + " | ".join(f"{o}: IHS areas | {o}: background" for o in ("iqr", "residual")) + " |",
                  "|:---|" + "---:|" * 4]
        for variant in dict.fromkeys(df["variant"]):
            cells = []
            for o in ("iqr", "residual"):
                sub = df[(df["variant"] == variant) & (df["outliers"] == o)]
                cells += [f"{sub['removed_mass_ihs'].mean():.4f}", f"{sub['removed_mass_background'].mean():.4f}"]
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    for m, o, d in modes:
        sub = df[_select(df, (m, o, d))]
        lines += ["", f"## met_fit: {m}, outliers: {o}, drift: {d}", "",
                  "| variant | seed | " + " | ".join(cols) + " | seconds |",
                  "|:---|---:|" + "---:|" * (len(cols) + 1)]
        for _, r in sub.iterrows():
            failed = r["failed"] if isinstance(r["failed"], str) else ""
            lines.append(f"| {r['variant']} | {r['seed']} | " + " | ".join(_fmt(float(r[c]), c, failed) for c in cols)
                         + f" | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--modes", default=",".join("/".join(m) for m in MODES),
                        help="met_fit/outliers/drift triples, comma-separated")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ihs_truth_matrix"))
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--name", default="truth_matrix")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s != ""]
    modes = [tuple((m.split("/") + ["covariates"])[:3]) for m in args.modes.split(",") if m]
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / f"{args.name}.csv"
    done = pd.read_csv(csv) if csv.is_file() else pd.DataFrame(columns=list(KEYS))
    if "drift" not in done:
        done["drift"] = "none"  # rows from before stage3.drift: ordinary kriging
    have = {tuple(r) for r in done[list(KEYS)].astype(str).itertuples(index=False)}
    command = "python benchmarks/bench_truth_matrix.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for variant in variants:
        for seed in seeds:
            store = None
            for met_fit, outliers, drift in sorted(modes, key=lambda m: (m[1], m[0], m[2])):
                if (variant, str(seed), met_fit, outliers, drift) in have:
                    continue
                store = store or scene_store(work, variant, seed, args.preset)
                row = run_combo(work, store, variant, seed, met_fit, outliers, drift, args.preset)
                print(f"{variant:22s} seed {seed} {met_fit:10s} {outliers:8s} {drift:10s} "
                      + " ".join(f"{c}={row[c]:.3f}" for c in BOUNDS) + f"  failed: {row['failed'] or '-'} "
                      f"({row['seconds']:.0f} s)", flush=True)
                done = pd.concat([done, pd.DataFrame([row])], ignore_index=True)
                done.to_csv(csv, index=False)
    if done.empty:
        return 0
    done["seed"] = done["seed"].astype(int)
    order = {v: i for i, v in enumerate(VARIANTS)}
    done = done.sort_values(["variant", "seed"], key=lambda c: c.map(order) if c.name == "variant" else c)
    done.to_csv(csv, index=False)
    (out / f"{args.name}.md").write_text(markdown(done, command))
    default = done[_select(done, DEFAULT_MODE)]
    bad = default[default["failed"].fillna("") != ""]
    print(f"default modes: {len(default) - len(bad)}/{len(default)} cells within bounds; tables in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
