"""``ihs bench --project china``: what all of China would cost, projected from measured figures.

Every number comes from a benchmark results file (``benchmarks/results/``), and every assumption that
turns them into a projection is printed next to the result:

* **per-unit costs** — each stage's CPU seconds (user + system, all processes) per unit of work, from the
  full-size BTH run (``bth_full.json``, :mod:`benchmarks.bench_bth_full`): pixel-days for ingest, prep,
  stage 3 (kriging) and stats; pixels for stage 1, stage 2 (one STL + regression per pixel series of the
  same record length) and the report. Work is assumed to scale linearly in pixels (and in days, except stage
  2, whose STL operator costs ∝ days² per series: the record length is kept at the measured one);
* **scaling** — the measured 1 → 2 worker speed-up ``s`` of stage 2 on the demo (``bench.json``, pipeline
  benchmark) gives a parallel efficiency ``E = s / 2`` that is assumed to hold for N × C workers, each stage
  using at most as many workers as it has tasks (tiles, blocks of days);
* **stage 3 with the U-ConvLSTM** — training samples/s and inference grid pixel-days/s from the
  U-ConvLSTM benchmark (``bench.json``), CPU and, when one was measured, GPU; training steps as configured;
* **GPUs** — only figures measured on a GPU are used; without them the G GPUs are reported as unused;
* **storage** — bytes per pixel-day of every store of the BTH run, scaled.

Wall time = Σ stages of core-seconds / (min(N × C, tasks) × E) + each stage's fixed start-up (the measured
command wall minus the stage's own seconds); core-hours = core-seconds / 3600; node-hours = wall × N.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import click

#: domains the projection knows by name: land pixels and days
DOMAINS = {"china": {"pixels": 1.0e7, "days": 3652, "what": "all of China at 0.01° (≈ 1e7 land pixels), 2012-2021"},
           "bth": {"pixels": 660 * 630, "days": 3653, "what": "the BTH box (660 × 630 px), 2012-2021"}}
#: unit of work of each stage's cost: "pixel_days" or "pixels"
UNITS = {"ingest": "pixel_days", "prep": "pixel_days", "stage1": "pixels", "stage2": "pixels",
         "stage3": "pixel_days", "stats": "pixel_days", "report": "pixels"}
TILE = 64


def results_dir(given: str | None = None) -> Path:
    """``given``, else ``./benchmarks/results``, else the source tree's ``benchmarks/results``."""
    if given:
        return Path(given)
    here = Path.cwd() / "benchmarks" / "results"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _load(directory: Path, *names: str) -> tuple[dict | None, Path | None]:
    for name in names:
        path = directory / name
        if path.is_file():
            return json.loads(path.read_text()), path
    return None, None


def _bench(directory: Path, name: str) -> tuple[dict | None, Path | None]:
    """One benchmark's result, from the combined ``bench.json`` or its own ``<name>.json``."""
    for file in ("bench.json", f"{name}.json"):
        doc, path = _load(directory, file)
        if doc and name in doc.get("benchmarks", {}) and "error" not in doc["benchmarks"][name]:
            return doc["benchmarks"][name], path
    return None, None


@dataclass
class Projection:
    """Inputs, assumptions and results of a projection (see the module docstring)."""

    domain: str
    pixels: float
    days: int
    nodes: int
    cores: int
    gpus: int
    stage3: str
    measured: list = field(default_factory=list)      # (what, value, source)
    assumptions: list = field(default_factory=list)
    stages: dict = field(default_factory=dict)        # name -> figures
    storage_gb: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


def project(domain: str = "china", *, nodes: int = 16, cores: int = 32, gpus: int = 0, stage3: str = "kriging",
            pixels: float | None = None, days: int | None = None, results: str | None = None,
            train_steps: int | None = None) -> Projection:
    """Project wall time, core-hours, node-hours and storage of a run over ``domain`` (see module docstring)."""
    from .config import defaults

    spec = DOMAINS[domain]
    pixels = float(pixels or spec["pixels"])
    days = int(days or spec["days"])
    p = Projection(domain, pixels, days, int(nodes), int(cores), int(gpus), stage3)
    directory = results_dir(results)
    bth, bth_path = _load(directory, "bth_full.json")
    if bth is None:
        raise click.ClickException(f"no {directory / 'bth_full.json'}: run benchmarks/bench_bth_full.py first "
                                   f"(the per-unit costs come from the full-size BTH run)")
    m_px, m_days = bth["grid"]["pixels"], bth["grid"]["days"]
    label = f"{bth_path} ({bth.get('label')}, {bth['machine'].get('cpu_model', '?')}, {bth['workers']} workers)"
    p.measured.append(("full-size BTH run", f"{m_px} px × {m_days} days, stage 3 {bth['stage3_method']}", label))

    pipeline, pipe_path = _bench(directory, "pipeline")
    speedup = None
    if pipeline and "stage2_1_worker" in pipeline.get("details", {}):
        d = pipeline["details"]
        speedup = d["stage2_1_worker"]["seconds"] / d["stage2_2_workers"]["seconds"]
        p.measured.append(("stage 2, 1 → 2 workers (demo)", f"{d['stage2_1_worker']['seconds']:.1f} s → "
                           f"{d['stage2_2_workers']['seconds']:.1f} s = {speedup:.2f}×", str(pipe_path)))
    efficiency = min(1.0, speedup / 2) if speedup else 0.8
    p.assumptions.append(f"parallel efficiency E = {efficiency:.2f} on N × C workers "
                         + (f"(measured 1 → 2 worker speed-up {speedup:.2f} / 2; assumed to hold at any size)"
                            if speedup else "(NOT measured: no pipeline benchmark with workers found; 0.8 assumed)"))
    p.assumptions.append("work scales linearly with pixels (and days, except stage 2: its STL operator costs "
                         "∝ days² per series, so stage 2 is scaled by (days / measured days)²)")
    p.assumptions.append(f"tiles of {TILE} × {TILE} px are the tasks of tile stages; prep/stage-3 kriging runs one "
                         "task per block of days over the whole domain (≥ 1 day each)")
    workers = p.nodes * p.cores
    tiles = math.ceil(pixels / TILE**2)
    block = max(1, min(366, 20_000_000 // int(pixels)))
    blocks = math.ceil(days / block)
    tasks = {"ingest": tiles, "prep": min(tiles, blocks) if blocks else tiles, "stage1": 1, "stage2": tiles,
             "stage3": blocks, "stats": tiles, "report": 1}
    if blocks * tiles > 1_000_000:
        p.warnings.append(f"kriging's day-major scratch copy would hold {blocks} × {tiles} = {blocks * tiles:.3g} chunk "
                          f"files per array ({block}-day blocks of the whole domain): raise the block budget "
                          f"(pipeline.daily.block_days) or krige regions apart before a run of this size")
    for name, record in bth["stages"].items():
        stage = {"ingest": "ingest"}.get(name, name)
        if stage not in UNITS:
            continue
        cpu = record["cpu_user_s"] + record["cpu_sys_s"]
        fixed = max(0.0, record["wall_s"] - (record.get("stage_s") or record["wall_s"]))
        unit = UNITS[stage]
        m_units = m_px * m_days if unit == "pixel_days" else m_px
        units = pixels * days if unit == "pixel_days" else pixels
        scale = units / m_units * ((days / m_days) ** 2 if stage == "stage2" else 1.0)
        core_s = cpu * scale
        p.measured.append((f"{name}: CPU per {unit.replace('_', '-')[:-1]}", f"{cpu / m_units:.3g} core-s "
                           f"({cpu:.0f} core-s over {m_units:.3g})", "bth_full.json"))
        p.stages[name] = {"core_s": core_s, "tasks": tasks[stage], "fixed_s": fixed, "how": "CPU"}
    if stage3 == "uconvlstm":
        _uconvlstm(p, directory, pixels, days, train_steps or defaults()["stage3"]["uconvlstm"]["steps"],
                   defaults()["stage3"]["uconvlstm"]["batch"])
    elif bth["stage3_method"] != "kriging":
        p.warnings.append("the BTH run's stage 3 was not kriging: its stage-3 cost is used as is")
    for name, s in p.stages.items():
        used = min(workers, max(1, s["tasks"]))
        if s["how"] == "CPU":  # a single task (in-process stages) has no parallel loss
            s["wall_s"] = s["core_s"] / (used * (efficiency if used > 1 else 1.0)) + s["fixed_s"]
        s["workers_used"] = used
    if p.gpus:
        _gpu_stage2(p, directory, pixels, days, m_days)
    p.assumptions.append("each stage's fixed start-up (process, cluster, store creation) as measured on BTH")
    # storage: bytes per pixel-day (cubes) of every store of the BTH run
    for name, gb in bth.get("outputs_gb", {}).items():
        p.storage_gb[name] = gb * pixels * days / (m_px * m_days)
    p.assumptions.append("storage ∝ pixel-days (cubes dominate; Blosc-LZ4 ratios as measured on the synthetic BTH)")
    return p


def _uconvlstm(p: Projection, directory: Path, pixels, days, steps, batch):
    bench, path = _bench(directory, "uconvlstm")
    if bench is None:
        p.warnings.append("stage 3 U-ConvLSTM: no uconvlstm benchmark found; kriging's cost kept")
        return
    runs = {r["device"].split(":")[0]: r for r in bench["details"]["runs"]}
    cpu = runs["cpu"]
    threads = cpu["torch_threads"]
    infer_core_s = pixels * days / cpu["infer_grid_pixel_days_per_s"] * threads
    train_core_s = steps * batch / cpu["train_samples_per_s"] * threads
    p.measured.append(("U-ConvLSTM on CPU", f"training {cpu['train_samples_per_s']:.3g} samples/s, inference "
                       f"{cpu['infer_grid_pixel_days_per_s']:.3g} grid px-days/s ({threads} torch threads)", str(path)))
    p.stages["stage3"] = {"core_s": infer_core_s + train_core_s, "tasks": math.ceil(pixels / 256**2) * days // 4,
                          "fixed_s": 0.0, "how": "CPU"}
    p.assumptions.append(f"stage 3 U-ConvLSTM: {steps} training steps of {batch} samples (as configured; training "
                         "does not grow with the domain), inference over every grid pixel-day, both on CPU cores")
    if p.gpus and "cuda" in runs:
        g = runs["cuda"]
        wall = steps * batch / g["train_samples_per_s"] + pixels * days / (g["infer_grid_pixel_days_per_s"] * p.gpus)
        p.stages["stage3"].update(how="GPU", wall_s=wall, core_s=0.0)
        p.measured.append((f"U-ConvLSTM on {g.get('gpu', 'GPU')}", f"training {g['train_samples_per_s']:.3g} samples/s, "
                           f"inference {g['infer_grid_pixel_days_per_s']:.3g} grid px-days/s", str(path)))
    elif p.gpus:
        p.warnings.append("G GPUs for training and stage 3: no GPU figure was measured (the benchmarks ran without "
                          "a GPU), so training and inference are projected on CPU cores")


def _gpu_stage2(p: Projection, directory: Path, pixels, days, m_days):
    stl, path = _bench(directory, "stl")
    rows = {r["name"]: r for r in (stl or {}).get("rows", [])}
    gpu = rows.get("d-torch-cuda-float64")
    if gpu is None:
        p.warnings.append("G GPUs for stage 2: no GPU figure was measured (the benchmarks ran without a GPU), so "
                          "stage 2 is projected on CPU cores only")
        return
    cpu_stl = rows["a"]["ours"]  # s per series, one core, operator path
    s = p.stages["stage2"]
    stl_core_s = pixels * cpu_stl * (days / m_days) ** 2
    rest = max(0.0, s["core_s"] - stl_core_s)
    gpu_s = pixels * gpu["ours"] * (days / m_days) ** 2 / p.gpus
    s.update(how="GPU+CPU", wall_s=max(gpu_s, rest / (p.nodes * p.cores)) + s["fixed_s"], core_s=rest)
    p.measured.append(("STL baseline on GPU", f"{gpu['ours'] * 1e3:.3g} ms/series ({rows['d-torch-cuda-float64'].get('what')})",
                       str(path)))


def render(p: Projection) -> str:
    """The projection ``p`` as text: measured inputs, assumptions, per-stage wall time, core- and node-hours,
    storage."""
    spec = DOMAINS.get(p.domain, {})
    total_wall = sum(s["wall_s"] for s in p.stages.values())
    core_h = sum(s["core_s"] for s in p.stages.values()) / 3600
    lines = [f"Projection: {spec.get('what', p.domain)} — {p.pixels:.3g} pixels × {p.days} days",
             f"on N = {p.nodes} Slurm nodes × C = {p.cores} cores ({p.nodes * p.cores} workers)"
             + (f" and G = {p.gpus} GPUs" if p.gpus else ""), "", "Measured inputs:"]
    lines += [f"  - {what}: {value}   [{src}]" for what, value, src in p.measured]
    lines += ["", "Assumptions:"] + [f"  - {a}" for a in p.assumptions]
    lines += ["", f"  {'stage':8} {'core-hours':>11} {'tasks':>8} {'workers':>8} {'wall h':>8}  on"]
    for name, s in p.stages.items():
        lines.append(f"  {name:8} {s['core_s'] / 3600:11.1f} {s['tasks']:8d} {s['workers_used']:8d} "
                     f"{s['wall_s'] / 3600:8.2f}  {s['how']}")
    dominant = max(p.stages, key=lambda n: p.stages[n]["wall_s"])
    lines += [f"  {'total':8} {core_h:11.1f} {'':8} {'':8} {total_wall / 3600:8.2f}", "",
              f"Wall time: {total_wall / 3600:.2f} h; core-hours: {core_h:.0f}; node-hours: "
              f"{total_wall / 3600 * p.nodes:.1f} (N × wall, nodes held for the whole run)",
              f"Dominant stage: {dominant} ({100 * p.stages[dominant]['wall_s'] / total_wall:.0f} % of the wall time)",
              "", "Storage per store (GB): " + ", ".join(f"{k} {v:.0f}" for k, v in p.storage_gb.items())
              + f"; total {sum(p.storage_gb.values()):.0f} GB"]
    if p.warnings:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in p.warnings]
    return "\n".join(lines)


@click.command("bench")
@click.option("--project", "domain", type=click.Choice(sorted(DOMAINS)), default="china", show_default=True,
              help="Domain to project (bth: the measured one, a check of the model).")
@click.option("--nodes", "-N", type=int, default=16, show_default=True, help="Slurm nodes.")
@click.option("--cores", "-C", type=int, default=32, show_default=True, help="Cores per node (one worker each).")
@click.option("--gpus", "-G", type=int, default=0, show_default=True, help="GPUs for stage 2 and training.")
@click.option("--stage3", type=click.Choice(["kriging", "uconvlstm"]), default="kriging", show_default=True)
@click.option("--pixels", type=float, default=None, help="Override the domain's pixel count.")
@click.option("--days", type=int, default=None, help="Override the domain's number of days.")
@click.option("--results", type=click.Path(file_okay=False), default=None,
              help="Benchmark results directory (default: ./benchmarks/results or the source tree's).")
@click.option("--json", "as_json", is_flag=True, help="Print the projection as JSON.")
def bench_command(domain, nodes, cores, gpus, stage3, pixels, days, results, as_json):
    """Project wall time, core-hours, node-hours and storage of a run from measured benchmark figures."""
    p = project(domain, nodes=nodes, cores=cores, gpus=gpus, stage3=stage3, pixels=pixels, days=days, results=results)
    if as_json:
        from dataclasses import asdict

        click.echo(json.dumps(asdict(p), indent=2, default=str))
    else:
        click.echo(render(p))
