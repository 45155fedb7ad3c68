"""Synthetic scenes with known truth: an observing-system simulation for the whole pipeline.

:func:`generate_scene` writes a scene — terrain, ERA5-like meteorology, industrial heat sources with
operating years and daily emissions, their plumes over downhill radiation areas, urban and regional
PM2.5, noise — as the run's input store (or as raw files for the ingest path), together with the
injected truth (``pm25_ihs_true`` and annual tables) to score the pipeline against.
"""
from .presets import GENERATOR_VERSION, PRESETS, Preset, get_preset
from .scene import Scene, build_scene, generate_scene
from .scene_store import scene_summary, write_scene

__all__ = ["GENERATOR_VERSION", "PRESETS", "Preset", "Scene", "build_scene", "generate_scene", "get_preset",
           "scene_summary", "write_scene"]
