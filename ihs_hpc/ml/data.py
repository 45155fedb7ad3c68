"""Training data of the stage-3 U-ConvLSTM: (day sequence × patch) samples of ``pm25_bl_tem`` with holes.

Seed 000 §2.3.4: the model learns, from background pixels only, how the PM2.5 of other
anthropogenic sources (``pm25_bl_tem`` after stage 2, eq. 4) looks inside an area it cannot see, and
fills the IHS radiation areas with it (``pm25_bl_oem``, eq. 10).

Inputs per frame (day) and pixel — :meth:`StageData.inputs`, shared by training, validation and
inference so the three see the same thing:

0. ``pm25_bl_tem``, normalised (``(v − mean) / std``), 0 where hidden;
1. the hole mask: 1 where hidden — the day's IHS areas (the year's radiation areas of sources
   operating that year; ``holes: union`` uses every area in every year), cut holes, missing values;
2. the DEM, normalised;
3. the context mean: each pixel's mean ``pm25_bl_tem`` over the training days on which it was
   background, normalised; 0 where hidden (so a hidden pixel's own long-term level never leaks in)
   or where the pixel never was background.

Samples (:class:`HolePatches`): a random run of ``seq_len`` training days and a random
``patch × patch`` window; 1 to ``max_holes`` shapes of real IHS areas are cut into it, the same on
every day of the sequence (real IHS areas do not move from day to day, so the model must never learn
to copy a hidden pixel from a neighbouring day). The loss weight is 1 on cut pixels that are
background (outside every IHS area, in every year) and outside the validation blocks, 0 elsewhere:
IHS pixels are never a target. Sample ``i`` is a pure function of ``(seed, i)``, so any sampler —
:class:`torch.utils.data.DistributedSampler` included — and any number of loader workers give the
same samples.

``pm25_bl_tem`` is read from ``stage2.zarr`` once into a time-major ``.npy`` (memory-mapped; one
tile of the store in memory at a time while it is written), because samples are short runs of days
over small windows while the store keeps whole series per chunk.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .holes import cluster_shapes, cut_holes, hole_shapes, validation_blocks, validation_holes

N_CHANNELS = 4
CHANNELS = ("pm25_bl_tem", "hole_mask", "dem", "context_mean")


@dataclass(frozen=True)
class Normalisation:
    """Statistics the inputs are normalised with (computed once, saved with the model)."""

    mean: float
    std: float
    dem_mean: float
    dem_std: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Scene:
    """The arrays of one run that stage 3 learns from and fills.

    Attributes
    ----------
    values : ndarray (n_days, ny, nx) float32
        ``pm25_bl_tem``, time-major (a memory map for real runs).
    day_year : ndarray (n_days,) int
        Index into ``years`` of every day.
    years : ndarray (n_years,) int
    year_holes : ndarray (n_years, ny, nx) bool
        The IHS areas hidden on each year's days.
    ihs_union : ndarray (ny, nx) bool
        Pixels of any IHS area in any year: never a training target or a scored pixel.
    dem : ndarray (ny, nx) float
    shapes : list of ndarray
        Shapes of holes to cut: the clusters of the IHS areas, largest first
        (:func:`ihs_hpc.ml.holes.cluster_shapes`), then the single areas (:func:`~ihs_hpc.ml.holes.hole_shapes`).
    lat, lon : ndarray
        Cell-centre coordinates (for kriging the same holes).
    """

    values: np.ndarray
    day_year: np.ndarray
    years: np.ndarray
    year_holes: np.ndarray
    ihs_union: np.ndarray
    dem: np.ndarray
    shapes: list
    lat: np.ndarray
    lon: np.ndarray

    def __post_init__(self):
        n_days, ny, nx = self.values.shape
        if self.day_year.shape != (n_days,):
            raise ValueError(f"day_year has shape {self.day_year.shape}, expected ({n_days},)")
        if self.year_holes.shape != (len(self.years), ny, nx):
            raise ValueError(f"year_holes has shape {self.year_holes.shape}, expected ({len(self.years)}, {ny}, {nx})")
        for name in ("ihs_union", "dem"):
            if getattr(self, name).shape != (ny, nx):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected ({ny}, {nx})")

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.values.shape[1:])

    @property
    def n_days(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class SplitSpec:
    """How the validation split is drawn (see :mod:`ihs_hpc.ml.holes`)."""

    seed: int = 0
    val_year: int | None = None
    block: int = 32
    fraction: float = 0.25
    holes_per_block: int = 2


class StageData:
    """A :class:`Scene` with its validation split, normalisation and context mean.

    Parameters
    ----------
    scene : Scene
    split : SplitSpec
    norm : Normalisation, optional
        Saved statistics (a trained model's); computed from the training days when omitted.
    """

    def __init__(self, scene: Scene, split: SplitSpec = SplitSpec(), norm: Normalisation | None = None):
        self.scene = scene
        self.split = split
        years = [int(y) for y in scene.years]
        val_year = years[-1] if split.val_year is None else int(split.val_year)
        if val_year not in years:
            raise ValueError(f"validation year {val_year} is not a year of the run ({years[0]}–{years[-1]})")
        if len(years) < 2:
            raise ValueError("the U-ConvLSTM needs at least two years: one to train on and one held out")
        self.val_year = val_year
        self.val_year_index = years.index(val_year)
        self.val_days = np.flatnonzero(scene.day_year == self.val_year_index)
        self.train_days = scene.day_year != self.val_year_index
        self.background = ~scene.ihs_union
        self.blocks = validation_blocks(scene.shape, split.block, split.fraction, split.seed)
        self.hidden, self.scored = validation_holes(scene.shapes, self.blocks, self.background, split.seed,
                                                    split.block, holes_per_block=split.holes_per_block)
        if not self.scored.any():
            raise ValueError("no validation hole landed on background; lower stage3.uconvlstm.val_block or raise "
                             "val_fraction")
        #: pixels that may be a training target: background, outside the validation blocks
        self.trainable = self.background & ~self.blocks
        ctx, stats = self._context_and_stats()
        self.context = ctx
        if norm is None:
            dem = np.asarray(scene.dem, dtype=np.float64)
            norm = Normalisation(mean=stats[0], std=stats[1], dem_mean=float(np.nanmean(dem)),
                                 dem_std=float(np.nanstd(dem)) or 1.0)
        self.norm = norm
        self._dem_n = ((np.nan_to_num(np.asarray(scene.dem, dtype=np.float64), nan=norm.dem_mean) - norm.dem_mean)
                       / norm.dem_std).astype(np.float32)
        self._ctx_n = np.where(np.isfinite(ctx), (ctx - norm.mean) / norm.std, 0.0).astype(np.float32)

    # ------------------------------------------------------------------ statistics
    def _context_and_stats(self, chunk_days: int = 64):
        """Context mean per pixel over training days it was background; mean/std of training background."""
        scene = self.scene
        ny, nx = scene.shape
        s = np.zeros((ny, nx))
        c = np.zeros((ny, nx))
        tot = np.zeros(3)  # count, sum, sum of squares over background pixel-days
        bg = self.background
        days = np.flatnonzero(self.train_days)
        for start in range(0, days.size, chunk_days):
            d = days[start:start + chunk_days]
            block = np.asarray(scene.values[d[0]:d[-1] + 1], dtype=np.float64)[d - d[0]]
            visible = np.isfinite(block) & ~scene.year_holes[scene.day_year[d]]
            vals = np.where(visible, block, 0.0)
            s += vals.sum(axis=0)
            c += visible.sum(axis=0)
            b = visible & bg[None]
            vb = np.where(b, block, 0.0)
            tot += (b.sum(), vb.sum(), (vb * vb).sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            ctx = np.where(c > 0, s / np.maximum(c, 1), np.nan)
        if tot[0] < 2:
            raise ValueError("no background pixel-day to learn from in the training years")
        mean = tot[1] / tot[0]
        std = float(np.sqrt(max(tot[2] / tot[0] - mean * mean, 0.0))) or 1.0
        return ctx, (float(mean), std)

    # ------------------------------------------------------------------ samples
    def inputs(self, t0: int, n_days: int, rows: slice, cols: slice, extra_holes=None) -> np.ndarray:
        """Model inputs ``(n_days, 4, h, w)`` float32 of days ``t0 .. t0+n_days-1`` on a window."""
        scene, norm = self.scene, self.norm
        vals = np.asarray(scene.values[t0:t0 + n_days, rows, cols], dtype=np.float32)
        hidden = scene.year_holes[scene.day_year[t0:t0 + n_days]][:, rows, cols] | ~np.isfinite(vals)
        if extra_holes is not None:
            hidden = hidden | np.asarray(extra_holes, dtype=bool)[None]
        out = np.empty((vals.shape[0], N_CHANNELS) + vals.shape[1:], dtype=np.float32)
        out[:, 0] = np.where(hidden, 0.0, (vals - norm.mean) / norm.std)
        out[:, 1] = hidden
        out[:, 2] = self._dem_n[rows, cols][None]
        out[:, 3] = np.where(hidden, 0.0, self._ctx_n[rows, cols][None])
        return out

    def targets(self, t0: int, n_days: int, rows: slice, cols: slice) -> np.ndarray:
        """Normalised ``pm25_bl_tem`` ``(n_days, h, w)``; NaN (no value) as 0 — give it weight 0."""
        vals = np.asarray(self.scene.values[t0:t0 + n_days, rows, cols], dtype=np.float32)
        return np.nan_to_num((vals - self.norm.mean) / self.norm.std, nan=0.0)

    def denormalise(self, values):
        return values * self.norm.std + self.norm.mean

    def train_starts(self, seq_len: int) -> np.ndarray:
        """First days of every run of ``seq_len`` consecutive training days."""
        ok = self.train_days.astype(np.int64)
        if ok.size < seq_len:
            return np.zeros(0, dtype=np.int64)
        window = np.convolve(ok, np.ones(seq_len, dtype=np.int64), mode="valid")
        return np.flatnonzero(window == seq_len)

    def patch_size(self, patch: int, multiple: int) -> tuple[int, int]:
        """The sample window: ``patch`` per side, or the grid's edge rounded down to ``multiple`` if smaller."""
        ny, nx = self.scene.shape
        out = []
        for n in (ny, nx):
            p = min(int(patch), n)
            if p >= multiple:
                p -= p % multiple
            out.append(p)
        return tuple(out)


class HolePatches:
    """Map-style dataset of training samples ``(x, y, w)``; see the module docstring.

    ``x``: ``(seq_len, 4, ph, pw)`` inputs; ``y``: ``(seq_len, ph, pw)`` normalised targets;
    ``w``: ``(ph, pw)`` loss weight (1 on held-out background pixels, 0 elsewhere).
    """

    def __init__(self, data: StageData, n_samples: int, seq_len: int, patch: tuple[int, int], seed: int,
                 max_holes: int = 4, attempts: int = 20):
        self.data, self.n_samples, self.seq_len = data, int(n_samples), int(seq_len)
        self.patch, self.seed, self.max_holes, self.attempts = tuple(patch), int(seed), int(max_holes), int(attempts)
        self.starts = data.train_starts(self.seq_len)
        if self.starts.size == 0:
            raise ValueError(f"no run of {self.seq_len} consecutive training days; lower stage3.uconvlstm.seq_len")
        if max_holes < 1:
            raise ValueError(f"max_holes must be >= 1, got {max_holes}")

    def __len__(self) -> int:
        return self.n_samples

    def sample_window(self, index: int):
        """``(t0, rows, cols, cut, weight)`` of sample ``index`` (numpy, no torch)."""
        if not 0 <= index < self.n_samples:
            raise IndexError(f"sample {index} out of range [0, {self.n_samples})")
        rng = np.random.default_rng([self.seed, 0x7EA1, int(index)])
        ny, nx = self.data.scene.shape
        ph, pw = self.patch
        cut = weight = None
        for _ in range(self.attempts):
            t0 = int(self.starts[rng.integers(self.starts.size)])
            r0, c0 = int(rng.integers(ny - ph + 1)), int(rng.integers(nx - pw + 1))
            rows, cols = slice(r0, r0 + ph), slice(c0, c0 + pw)
            cut = cut_holes(rng, self.data.scene.shapes, (ph, pw), int(rng.integers(1, self.max_holes + 1)))
            weight = cut & self.data.trainable[rows, cols]
            if weight.any():
                break
        return t0, rows, cols, cut, weight

    def __getitem__(self, index: int):
        import torch

        t0, rows, cols, cut, weight = self.sample_window(index)
        x = self.data.inputs(t0, self.seq_len, rows, cols, extra_holes=cut)
        vals = np.asarray(self.data.scene.values[t0:t0 + self.seq_len, rows, cols])
        w = weight & np.isfinite(vals).all(axis=0)
        y = self.data.targets(t0, self.seq_len, rows, cols)
        return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(w.astype(np.float32))


def validation_windows(data: StageData, n: int, seq_len: int, patch: tuple[int, int], seed: int) -> list:
    """Fixed ``(t0, rows, cols)`` windows of the held-out year that hold scored pixels (early stopping)."""
    rng = np.random.default_rng([int(seed), 0x7A1])
    days = data.val_days
    if days.size < seq_len:
        raise ValueError(f"the validation year {data.val_year} has {days.size} days, fewer than seq_len={seq_len}")
    ny, nx = data.scene.shape
    ph, pw = patch
    rr, cc = np.nonzero(data.scored)
    out = []
    for _ in range(int(n)):
        k = int(rng.integers(rr.size))
        r0 = int(np.clip(rr[k] - ph // 2, 0, ny - ph))
        c0 = int(np.clip(cc[k] - pw // 2, 0, nx - pw))
        t0 = int(days[0] + rng.integers(days.size - seq_len + 1))
        out.append((t0, slice(r0, r0 + ph), slice(c0, c0 + pw)))
    return out


def validation_batch(data: StageData, windows: list, seq_len: int):
    """Tensors ``(x, y, w)`` of the validation windows (holes: the validation holes; weight: scored pixels)."""
    import torch

    xs, ys, ws = [], [], []
    for t0, rows, cols in windows:
        xs.append(data.inputs(t0, seq_len, rows, cols, extra_holes=data.hidden[rows, cols]))
        ys.append(data.targets(t0, seq_len, rows, cols))
        vals = np.asarray(data.scene.values[t0:t0 + seq_len, rows, cols])
        ws.append((data.scored[rows, cols] & np.isfinite(vals).all(axis=0)).astype(np.float32))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)), torch.from_numpy(np.stack(ws))


def masked_mse(pred, target, weight):
    """Mean over samples of the weighted mean squared error over a sample's days and held-out pixels.

    ``pred``, ``target``: ``(B, T, H, W)``; ``weight``: ``(B, H, W)``. Pixels of weight 0 — IHS areas,
    visible background, the validation blocks — do not enter, whatever their target. Each sample
    counts equally (its error is normalised by its own weight), so the mean over ranks of per-rank
    losses equals the loss of the whole global batch, which makes data-parallel training equal to
    one process with the global batch.
    """
    import torch

    w = weight[:, None].expand_as(pred)
    sq = torch.where(w > 0, (pred - target) ** 2 * w, torch.zeros((), dtype=pred.dtype, device=pred.device))
    num = sq.sum(dim=(1, 2, 3))
    den = w.sum(dim=(1, 2, 3))
    return (num / den.clamp_min(1e-12)).mean()


# ---------------------------------------------------------------------------- loading from a run
def load_scene(stage1: Path, stage2: Path, cubes: Path, cache_dir: Path, *, source_id: str,
               holes: str = "year", variable: str = "pm25_bl_tem") -> Scene:
    """The :class:`Scene` of a run from its stores (``stage1.zarr``, ``stage2.zarr``, ``cubes.zarr``).

    ``source_id`` identifies the stage-2 store's content (its fingerprint); the time-major copy of
    ``variable`` in ``cache_dir`` is rebuilt when it differs.
    """
    import zarr

    from ..grid import Grid
    from ..io.cube import open_store

    if holes not in ("year", "union"):
        raise ValueError(f"stage3.uconvlstm.holes must be 'year' or 'union', got {holes!r}")
    s2 = open_store(stage2)
    if variable not in s2:
        raise ValueError(f"{stage2}: no variable {variable!r}; run stage 2 first")
    grid = Grid.from_dataset(s2)
    time = s2.time.values
    day_years = time.astype("datetime64[Y]").astype(int) + 1970
    s1 = zarr.open_group(Path(stage1), mode="r")
    for name in ("ihs_mask", "member_offset", "member_pixel"):
        if name not in s1:
            raise ValueError(f"{stage1}: stage 3 needs variable {name!r}, not found")
    union = np.asarray(s1["ihs_mask"][...]) > 0
    years = np.unique(day_years)
    if holes == "year" and "ihs_count_year" in s1:
        s1_years = [int(y) for y in np.asarray(s1["year"][...])]
        counts = np.asarray(s1["ihs_count_year"][...]) > 0
        year_holes = np.stack([counts[s1_years.index(int(y))] if int(y) in s1_years else union for y in years])
    else:
        year_holes = np.broadcast_to(union, (years.size,) + union.shape).copy()
    day_year = np.searchsorted(years, day_years).astype(np.int64)
    c = zarr.open_group(Path(cubes), mode="r")
    if "dem" not in c:
        raise ValueError(f"{cubes}: stage 3 needs variable 'dem', not found")
    dem = np.asarray(c["dem"][...], dtype=np.float64)
    shapes = cluster_shapes(union) + hole_shapes(np.asarray(s1["member_offset"][...]),
                                                 np.asarray(s1["member_pixel"][...]), grid.nx)
    values = time_major(stage2, variable, Path(cache_dir), source_id=source_id)
    return Scene(values=values, day_year=day_year, years=years, year_holes=year_holes, ihs_union=union, dem=dem,
                 shapes=shapes, lat=np.asarray(grid.lat), lon=np.asarray(grid.lon))


def time_major(store: Path, variable: str, cache_dir: Path, *, source_id: str) -> np.ndarray:
    """A read-only memory map ``(time, lat, lon)`` of ``variable``, built from the store tile by tile.

    The copy is written to a temporary file and renamed, with a JSON note of ``source_id``; a copy
    whose note differs (the store was rewritten) is rebuilt.
    """
    import zarr

    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{variable}.npy"
    note = cache_dir / f"{variable}.json"
    if path.is_file() and note.is_file():
        try:
            if json.loads(note.read_text()).get("source") == source_id:
                return np.load(path, mmap_mode="r")
        except (ValueError, OSError):
            pass
    array = zarr.open_group(Path(store), mode="r")[variable]
    n_t, ny, nx = array.shape
    tile = int(array.chunks[-1])
    tmp = cache_dir / f".{variable}.{os.getpid()}.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n_t, ny, nx))
    for r in range(0, ny, tile):
        for c in range(0, nx, tile):
            out[:, r:r + tile, c:c + tile] = array[:, r:r + tile, c:c + tile]
    out.flush()
    del out
    os.replace(tmp, path)
    note.write_text(json.dumps({"source": source_id, "variable": variable, "shape": [n_t, ny, nx]}))
    return np.load(path, mmap_mode="r")
