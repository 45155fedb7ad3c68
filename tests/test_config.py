import dask.config
import pytest

from ihs_hpc.config import ConfigError, defaults, load_config, validate_settings


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_registered_with_dask_config():
    assert dask.config.get("ihs.stage2.stl.period") == 365
    assert dask.config.get("ihs.cluster.kind") == "local"
    with dask.config.set({"ihs.cluster.n_workers": 7}):
        assert defaults()["cluster"]["n_workers"] == 7


def test_user_values_override_and_run_dir_defaults_beside_the_file(tmp_path):
    cfg = load_config(write(tmp_path, "stage2:\n  stl:\n    seasonal: 9\n"))
    assert cfg["stage2.stl.seasonal"] == 9
    assert cfg["stage2.stl.period"] == 365  # untouched default kept
    assert cfg.run_dir == tmp_path / "run"
    wrapped = load_config(write(tmp_path, "ihs:\n  run_dir: out\n", "w.yaml"))
    assert wrapped.run_dir == tmp_path / "out"


@pytest.mark.parametrize("text, key", [
    ("stage2:\n  stl:\n    perod: 365\n", "stage2.stl.perod"),
    ("clustr:\n  kind: local\n", "clustr"),
    ("input:\n  synthetic:\n    preset: tiny\n    sed: 3\n", "input.synthetic.sed"),
])
def test_unknown_key_names_key_and_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert repr(key) in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("text, key, fragment", [
    ("cluster:\n  n_workers: two\n", "cluster.n_workers", "must be int"),
    ("stage2:\n  stl:\n    robust: 1\n", "stage2.stl.robust", "must be bool"),
    ("stage1:\n  max_km: yes\n", "stage1.max_km", "must be int or float"),
    ("cluster: 4\n", "cluster", "must be a mapping"),
    ("input:\n  synthetic:\n    preset: huge\n", "input.synthetic.preset", "must be one of"),
    ("stage2:\n  stl:\n    trend: 1.5\n", "stage2.stl.trend", "must be int"),
    ("stage2:\n  level_window: month\n", "stage2.level_window", "must be one of"),
    ("prep:\n  neighbour_share: 1.5\n", "prep.neighbour_share", "must be in [0.0, 1.0], got 1.5"),
    ("prep:\n  neighbour_share: half\n", "prep.neighbour_share", "must be int or float"),
])
def test_wrong_type_names_key_and_file(tmp_path, text, key, fragment):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert repr(key) in message and str(path) in message and fragment in message


@pytest.mark.parametrize("text, fragment", [
    ("stats:\n  intervals:\n    idle_min_days: 0\n", "'idle_min_days': 0"),
    ("stats:\n  intervals:\n    idle_margin_days: -1\n", "'idle_margin_days': -1"),
    ("stats:\n  intervals:\n    level: 1.5\n", "'level': 1.5"),
    ("stats:\n  intervals:\n    scale_by_contrast: maybe\n", "'scale_by_contrast': 'maybe'"),
])
def test_interval_settings_out_of_range_are_refused_when_the_file_is_read(tmp_path, text, fragment):
    """Refused by load_config (before any stage writes), naming the file, the section and the value."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and "stats.intervals" in message and fragment in message


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_nullable_keys_accept_their_types():
    merged = validate_settings({"stage2": {"stl": {"trend": 1095}}, "cluster": {"memory_limit": "4GiB"},
                                "prep": {"neighbour_share": None}})
    assert merged["stage2"]["stl"]["trend"] == 1095 and merged["cluster"]["memory_limit"] == "4GiB"
    assert merged["prep"]["neighbour_share"] is None  # each pixel judged alone
