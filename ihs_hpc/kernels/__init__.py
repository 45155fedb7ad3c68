"""numba kernels: plain loops over one pixel's 1-D series (or one day's points) writing into ``out``; no I/O."""
