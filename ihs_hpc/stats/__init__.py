"""Statistics of seed 000, section 2.3.5: Mann–Whitney U (eq. 11), Pearson (eq. 12),
Mann–Kendall with Sen's slope, and global Moran's I (eq. 13), each with the semantics of its
reference implementation (scipy, pymannkendall, esda) and batched over leading axes."""
from ihs_hpc.stats.correlation import PearsonResult, pearson
from ihs_hpc.stats.mann_whitney import MannWhitneyUResult, mann_whitney_u
from ihs_hpc.stats.spatial_autocorrelation import MoranResult, morans_i, morans_i_weights
from ihs_hpc.stats.trend import MannKendallResult, SensSlopeResult, mann_kendall, sens_slope

__all__ = [
    "MannKendallResult",
    "MannWhitneyUResult",
    "MoranResult",
    "PearsonResult",
    "SensSlopeResult",
    "mann_kendall",
    "mann_whitney_u",
    "morans_i",
    "morans_i_weights",
    "pearson",
    "sens_slope",
]
