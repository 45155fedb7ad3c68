"""Task order of :func:`ihs_hpc.pipeline.executor.map_tiles` on a cluster: largest tiles first, stable."""
from hypothesis import given, settings, strategies as st

from ihs_hpc.grid import Grid
from ihs_hpc.pipeline.executor import largest_first


@settings(deadline=None)
@given(ny=st.integers(1, 120), nx=st.integers(1, 120), size=st.integers(2, 64))
def test_largest_first_is_a_stable_sort_by_cell_count(ny, nx, size):
    tiles = Grid(0.0, ny * 0.01, 0.0, nx * 0.01, 0.01).tiles(size)
    ordered = largest_first(tiles)
    assert sorted(t.name for t in ordered) == sorted(t.name for t in tiles)  # every tile once
    cells = [t.shape[0] * t.shape[1] for t in ordered]
    assert cells == sorted(cells, reverse=True)
    for a, b in zip(ordered, ordered[1:]):  # equals keep their row-major order
        if a.shape[0] * a.shape[1] == b.shape[0] * b.shape[1]:
            assert a.id < b.id


def test_demo_tiles_alternating_full_and_edge_run_full_ones_first():
    tiles = Grid(0.0, 1.28, 0.0, 1.60, 0.01).tiles(64)  # 128 x 160: 64 x 64, 64 x 64, 64 x 32 per row
    assert [t.shape for t in largest_first(tiles)] == [(64, 64)] * 4 + [(64, 32)] * 2
