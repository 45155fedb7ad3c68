"""Scene variants of the synthetic generator: each option does what it says, unset options change nothing,
and the options are validated and fingerprinted as configuration keys."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ihs_hpc.synth.pm25 import compute_tile
from ihs_hpc.synth.scene import build_scene
from ihs_hpc.synth.variants import SceneOptions

ALL = (slice(0, 48), slice(0, 64))


@pytest.fixture(scope="module")
def base():
    scene = build_scene("tiny", 0)
    pm25, truth, _ = compute_tile(scene.model, *ALL)
    return scene, pm25, truth


def _month_profile(scene, truth):
    inside = scene.areas.count > 0
    daily = truth[:, inside].mean(1)
    month = pd.DatetimeIndex(scene.time).month.to_numpy()
    return np.array([daily[month == m].mean() for m in range(1, 13)])


def test_unset_options_are_the_preset_scene(base):
    scene, pm25, truth = base
    again = build_scene("tiny", 0, SceneOptions())
    p2, t2, _ = compute_tile(again.model, *ALL)
    np.testing.assert_array_equal(p2, pm25)
    np.testing.assert_array_equal(t2, truth)
    np.testing.assert_array_equal(again.emission, scene.emission)


def test_seasonal_phase_of_the_emission(base):
    scene, _, _ = base
    month = pd.DatetimeIndex(scene.time).month.to_numpy()
    winter, summer = np.isin(month, (12, 1, 2)), np.isin(month, (6, 7, 8))
    ratio = {}
    for phase in ("winter", "summer", "none"):
        s = build_scene("tiny", 0, {"ihs_season": phase})
        e = s.emission[s.emission.sum(1) > 0]
        ratio[phase] = e[:, winter].mean() / e[:, summer].mean()
    assert ratio["winter"] > 1.3 and ratio["summer"] < 0.8 and 0.85 < ratio["none"] < 1.2
    # the default shape is the winter phase
    w = build_scene("tiny", 0, {"ihs_season": "winter"})
    np.testing.assert_allclose(w.emission, scene.emission, rtol=1e-12)
    # the truth follows: its month profile peaks in summer for summer-peaking sources
    s = build_scene("tiny", 0, {"ihs_season": "summer", "ihs_season_amplitude": 0.6})
    _, truth, _ = compute_tile(s.model, *ALL)
    assert np.argmax(_month_profile(s, truth)) + 1 in (5, 6, 7, 8, 9)


def test_emission_jitter_and_strength_spread(base):
    scene, _, _ = base
    def day_to_day(s):
        e = s.emission[:, 400:700]
        on = (e > 0).all(1)
        return np.std(np.diff(np.log(e[on]), axis=1))
    assert day_to_day(build_scene("tiny", 0, {"emission_jitter": 0.5})) > 2 * day_to_day(scene)
    wide = build_scene("demo", 0, {"strength_spread": 1.2})
    narrow = build_scene("demo", 0)
    assert np.std(np.log(wide.sources.strength)) > 2 * np.std(np.log(narrow.sources.strength))


def test_multiplicative_noise_and_spikes_change_the_observation_not_the_truth(base):
    scene, pm25, truth = base
    s = build_scene("tiny", 0, {"noise": "multiplicative", "noise_sigma": 0.2})
    p2, t2, _ = compute_tile(s.model, *ALL)
    np.testing.assert_array_equal(t2, truth)
    log_ratio = np.log(p2 / pm25)
    assert abs(np.std(log_ratio) - 0.2) < 0.01 and abs(np.mean(log_ratio) + 0.02) < 0.01
    s = build_scene("tiny", 0, {"spikes": 0.01})
    p3, t3, _ = compute_tile(s.model, *ALL)
    np.testing.assert_array_equal(t3, truth)
    ratio = p3 / pm25
    spiked = ratio > 1.0 + 1e-6
    assert abs(spiked.mean() - 0.01) < 0.002
    assert ratio[spiked].min() >= 3.0 - 1e-4 and ratio[spiked].max() <= 6.0 + 1e-4
    np.testing.assert_array_equal(p3[~spiked], pm25[~spiked])


def test_towns_next_to_sources_terrain_edge_dense_clusters_start_stop(base):
    from ihs_hpc.grid import haversine_km

    scene, _, _ = base
    towns = build_scene("tiny", 0, {"towns_near_ihs": 3})
    extra = towns.model.blobs[len(scene.model.blobs):]
    assert len(extra) == 3
    for blob in extra:
        d = haversine_km(blob.lat, blob.lon, towns.sources.lat, towns.sources.lon).min()
        assert 1.9 <= d <= 6.1
    edge = build_scene("tiny", 0, {"terrain_edge": 0.5})
    ratio = edge.model.bg_map / scene.model.bg_map
    assert np.allclose(ratio[scene.dem < 150], 1.0, atol=0.01) and np.allclose(ratio[scene.dem > 500], 0.5, atol=0.01)
    dense = build_scene("demo", 0, {"dense_clusters": True})
    plain = build_scene("demo", 0)
    # overlapping areas: a larger share of the covered pixels lie in more than one area, and in more areas each
    def overlap(areas):
        covered = areas.count > 0
        return (areas.count > 1).sum() / covered.sum(), areas.count[covered].mean()

    (share_dense, mean_dense), (share_plain, mean_plain) = overlap(dense.areas), overlap(plain.areas)
    assert share_dense > 1.5 * share_plain and mean_dense > 2 * mean_plain
    churn = build_scene("demo", 0, {"start_stop_fraction": 0.9})
    def changing(s):
        y0, y1 = int(s.years[0]), int(s.years[-1])
        return ((s.sources.start_year > y0) | (s.sources.end_year < y1)).mean()
    assert changing(churn) > 0.8 > 0.4 > changing(plain)


def test_ihs_share_option(base):
    scene, _, _ = base
    weak = build_scene("tiny", 0, {"ihs_share": 0.1})
    assert weak.emission_scale < 0.5 * scene.emission_scale


def test_options_are_validated_config_keys(tmp_path):
    from ihs_hpc.config import load_config
    from ihs_hpc.errors import ConfigError
    from ihs_hpc.pipeline.plan import fingerprint_of

    def cfg(text):
        path = tmp_path / "run.yaml"
        path.write_text("input: {kind: synthetic, synthetic: {preset: tiny, seed: 0" + text + "}}\n")
        return load_config(path)

    with pytest.raises(ConfigError, match="input.synthetic.ihs_season"):
        cfg(", ihs_season: autumn")
    with pytest.raises(ConfigError, match="input.synthetic.spikes"):
        cfg(", spikes: many")
    with pytest.raises(ConfigError, match="spikes must be in"):
        cfg(", spikes: 0.9")
    with pytest.raises(ConfigError, match="unknown key 'input.synthetic.spike'"):
        cfg(", spike: 0.01")
    plain, variant = cfg(""), cfg(", ihs_season: summer")
    assert fingerprint_of(plain, "input").digest != fingerprint_of(variant, "input").digest
    assert "input.synthetic.ihs_season" not in fingerprint_of(plain, "input").inputs  # unset: as before the option
    assert fingerprint_of(variant, "input").inputs["input.synthetic.ihs_season"] == "summer"
    with pytest.raises(ValueError, match="noise must be one of"):
        SceneOptions(noise="pink")
