"""The allocation stage (seed 003): city reduction targets from the run's city PM2.5 and an index table.

Runs when ``allocation.index`` names an index CSV (column ``city`` plus numeric index columns). The
city PM2.5 is ``allocation.pm25`` when given, else the run's own ``RUN/stats/city_pm25.csv``.
Writes ``RUN/allocation/`` (plan, Gini table, Markdown, Lorenz curves), which the report then shows.
"""
from __future__ import annotations

from pathlib import Path

from ..allocation import allocate, read_index_csv, read_pm25_csv, write_allocation_outputs
from ..config import RunConfig


def run_allocation(config: RunConfig, client, echo) -> dict:
    """The allocation stage: city reduction targets by minimised Gini (seed 003) into ``RUN/allocation/``; skipped
    without ``allocation.index``."""
    index_csv = config["allocation.index"]
    if not index_csv:
        echo("  no index table configured (allocation.index) — skipped")
        return {"skipped": "allocation.index not set"}
    base = Path(config.source).resolve().parent if config.source.endswith((".yaml", ".yml")) else Path.cwd()
    index_path = (base / index_csv) if not Path(index_csv).is_absolute() else Path(index_csv)
    pm25_csv = config["allocation.pm25"]
    pm25_path = (base / pm25_csv) if pm25_csv else config.run_dir / "stats" / "city_pm25.csv"
    if not pm25_path.is_file():
        raise ValueError(f"{pm25_path}: city PM2.5 table not found; run the stats stage or set allocation.pm25")
    pm25 = read_pm25_csv(pm25_path)
    indices = read_index_csv(index_path)
    result = allocate(pm25, indices, q=config["allocation.q"], p_min=config["allocation.p_min"],
                      p_max=config["allocation.p_max"])
    from .plan import begin_output_dir, finish_output_dir

    out = begin_output_dir(config, "allocate")
    write_allocation_outputs(result, out)
    finish_output_dir(config, "allocate")
    echo(f"  {len(pm25)} cities, {indices.shape[1]} indices: ΣGini {result.objective_initial:.4f} → "
         f"{result.objective:.4f}; plan in {out / 'plan.csv'}")
    return {"dir": str(out), "gini_sum_initial": float(result.objective_initial), "gini_sum": float(result.objective)}
