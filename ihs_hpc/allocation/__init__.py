"""Fair allocation of PM2.5 reduction targets over cities (seed 003, Xie et al. 2018).

* :func:`gini`, :func:`lorenz_curve` — Gini coefficient of PM2.5 against an index (eq. 1);
* :func:`contribution_coefficient` — per-city contribution coefficient (eq. 2);
* :func:`allocate` — minimised-Gini reduction plan (eqs. 3–6), exact by linear programming;
* :func:`read_pm25_csv`, :func:`read_index_csv`, :func:`write_allocation_outputs`,
  :func:`plot_lorenz_curves` — files; :data:`~ihs_hpc.allocation.cli.allocate_command` — CLI.
"""
from ihs_hpc.allocation.gini import contribution_coefficient, gini, lorenz_curve
from ihs_hpc.allocation.io import read_index_csv, read_pm25_csv, write_allocation_outputs
from ihs_hpc.allocation.plan import AllocationResult, allocate
from ihs_hpc.allocation.plots import plot_lorenz_curves

__all__ = [
    "AllocationResult",
    "allocate",
    "contribution_coefficient",
    "gini",
    "lorenz_curve",
    "plot_lorenz_curves",
    "read_index_csv",
    "read_pm25_csv",
    "write_allocation_outputs",
]
