"""Stage 3's learned filler (seed 000 §2.3.4, eqs. 5–10): the U-ConvLSTM, its data, training and inference.

Modules: :mod:`.convlstm` (the cell of eqs. 5–9), :mod:`.model` (the U-ConvLSTM), :mod:`.holes`
(held-out holes and the validation split; numpy only), :mod:`.data` (samples from ``stage2.zarr``),
:mod:`.distributed` (one process, torch DDP, Horovod), :mod:`.train`, :mod:`.infer` (tiled,
blended inference) and :mod:`.evaluate` (the U-ConvLSTM against kriging on the same holes).
Importing this package does not import torch; its modules do.

OpenMP threads that spin while they wait are ruinous when the cores are shared (a 2-core machine
running Dask workers beside the training: one training step measured 10x slower), so unless the
environment says otherwise the threads sleep instead (``OMP_WAIT_POLICY=PASSIVE``). This only works
when set before torch is first imported, hence here.
"""
import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
