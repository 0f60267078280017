import json
import os

import numpy as np
import pytest

from discomkd_keras.data import synthetic_rgbd as srgbd
from discomkd_keras.data.multimodal_dataset import SPLITS, DataError

N, SIZE = 8, 32  # tiny on purpose: the whole file runs in seconds
LABELS = np.repeat(np.arange(len(srgbd.CLASS_NAMES)), 3)


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """One small set, loaded through a fresh cache directory."""
    cache_dir = tmp_path_factory.mktemp("cache")
    return srgbd.load_synthetic_rgbd(n_per_class=N, size=SIZE, seed=5, cache_dir=str(cache_dir)), cache_dir


def cache_file(cache_dir, n=N, size=SIZE, seed=5):
    return cache_dir / f"synthetic-rgbd-v{srgbd.FORMAT_VERSION}-n{n}-s{size}-seed{seed}.npz"


def assert_same_data(a, b):
    for m in ("rgb", "depth"):
        np.testing.assert_array_equal(a.inputs[m], b.inputs[m])
        np.testing.assert_array_equal(a.labels[m], b.labels[m])
        for s in SPLITS:
            np.testing.assert_array_equal(a.splits[m][s], b.splits[m][s])


def test_class_names_and_constants():
    assert srgbd.CLASS_NAMES == ("sphere", "cube", "cylinder", "cone", "torus", "pyramid")
    assert isinstance(srgbd.MAX_DEPTH_M, float) and srgbd.MAX_DEPTH_M > 0


def test_render_is_deterministic_per_seed():
    rgb_a, depth_a = srgbd.render_rgbd(LABELS, seed=3, size=SIZE)
    rgb_b, depth_b = srgbd.render_rgbd(LABELS, seed=3, size=SIZE)
    np.testing.assert_array_equal(rgb_a, rgb_b)
    np.testing.assert_array_equal(depth_a, depth_b)
    rgb_c, depth_c = srgbd.render_rgbd(LABELS, seed=4, size=SIZE)
    assert not np.array_equal(rgb_a, rgb_c)
    assert not np.array_equal(depth_a, depth_c)
    # Every sample differs from every other (no repeated streams).
    flat = rgb_a.reshape(len(LABELS), -1)
    assert len(np.unique(flat, axis=0)) == len(LABELS)


def test_render_raw_outputs():
    rgb, depth = srgbd.render_rgbd(LABELS, seed=0, size=24)
    assert rgb.shape == (len(LABELS), 24, 24, 3) and rgb.dtype == np.uint8
    assert depth.shape == (len(LABELS), 24, 24) and depth.dtype == np.uint16
    assert depth.max() <= 1000 * srgbd.MAX_DEPTH_M
    valid = depth[depth > 0]
    assert valid.min() > 500  # nothing is closer than ~0.6 m to the camera


@pytest.mark.parametrize("labels, size", [([0, 6], 32), ([[0, 1]], 32), ([0, -1], 32), ([0, 1], 4)])
def test_render_rejects_bad_arguments(labels, size):
    with pytest.raises(ValueError):
        srgbd.render_rgbd(labels, seed=0, size=size)


def test_load_shapes_dtypes_ranges_and_balance(cached):
    data, _ = cached
    n_total = N * len(srgbd.CLASS_NAMES)
    assert data.name == "synthetic-rgbd"
    assert data.class_names == list(srgbd.CLASS_NAMES)
    assert data.kinds == {"rgb": "image", "depth": "image"}
    assert data.inputs["rgb"].shape == (n_total, SIZE, SIZE, 3)
    assert data.inputs["depth"].shape == (n_total, SIZE, SIZE, 1)
    for m in ("rgb", "depth"):
        x = data.inputs[m]
        assert x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert data.labels[m].dtype == np.int64
    # Paired: both modalities share rows, labels and splits.
    np.testing.assert_array_equal(data.labels["rgb"], data.labels["depth"])
    assert np.bincount(data.labels["rgb"], minlength=6).tolist() == [N] * 6
    data.validate()


def test_depth_has_missing_pixels(cached):
    depth = cached[0].inputs["depth"][..., 0]
    missing = (depth == 0).mean(axis=(1, 2))
    assert missing.mean() > 0.01  # holes, dropout and edges
    assert missing.mean() < 0.5  # ...but most of the scene is measured
    assert (missing > 0).mean() > 0.9  # nearly every frame has some


def test_depth_noise_grows_with_distance():
    noisy = srgbd.render_rgbd(LABELS, seed=1, size=SIZE)[1].astype(np.float64)
    # The same scenes from a noise-free sensor (same draws, so same holes).
    clean = srgbd.render_rgbd(LABELS, seed=1, size=SIZE,
                              knobs={"depth_noise_a": 0.0, "depth_noise_b": [0.0, 0.0]})[1]
    clean = clean.astype(np.float64)
    both = (noisy > 0) & (clean > 0) & (clean < 1000 * srgbd.MAX_DEPTH_M - 300)
    err = np.abs(noisy - clean)[both]
    assert np.median(err) >= 3  # millimetres
    near, far = clean[both] < 1800, clean[both] > 2800
    assert err[far].mean() > 1.5 * err[near].mean()


def test_knobs_are_checked_and_change_the_scenes_and_the_cache_file(tmp_path):
    with pytest.raises(DataError, match="Unknown scene knob 'fog'"):
        srgbd.load_synthetic_rgbd(n_per_class=6, size=16, cache_dir=str(tmp_path), knobs={"fog": 1})
    with pytest.raises(DataError, match="'rgb_noise' is a range"):
        srgbd.load_synthetic_rgbd(n_per_class=6, size=16, cache_dir=str(tmp_path),
                                  knobs={"rgb_noise": 0.1})
    with pytest.raises(DataError, match="'p_camouflage' takes one number >= 0"):
        srgbd.load_synthetic_rgbd(n_per_class=6, size=16, cache_dir=str(tmp_path),
                                  knobs={"p_camouflage": [0, 1]})
    plain = srgbd.load_synthetic_rgbd(n_per_class=6, size=16, cache_dir=str(tmp_path))
    same = srgbd.load_synthetic_rgbd(n_per_class=6, size=16, cache_dir=str(tmp_path),
                                     knobs={"p_camouflage": srgbd.SCENE_DEFAULTS["p_camouflage"]})
    camouflaged = srgbd.load_synthetic_rgbd(n_per_class=6, size=16, cache_dir=str(tmp_path),
                                            knobs={"p_camouflage": 1.0})
    np.testing.assert_array_equal(same.inputs["rgb"], plain.inputs["rgb"])  # defaults: one file
    assert not np.array_equal(camouflaged.inputs["rgb"], plain.inputs["rgb"])
    names = sorted(p.name for p in tmp_path.iterdir())
    stem = f"synthetic-rgbd-v{srgbd.FORMAT_VERSION}-n6-s16-seed0"
    assert names[0].startswith(stem + "-knobs")
    assert names[1:] == [stem + ".npz"]


def test_split_is_stratified_and_shared(cached):
    data, _ = cached
    y = data.labels["rgb"]
    split = data.splits["rgb"]
    for s in SPLITS:
        np.testing.assert_array_equal(split[s], data.splits["depth"][s])
    rows = np.concatenate([split[s] for s in SPLITS])
    np.testing.assert_array_equal(np.sort(rows), np.arange(len(y)))  # a partition
    expected = {"train": round(0.7 * N), "valid": round(0.1 * N)}
    expected["test"] = N - expected["train"] - expected["valid"]
    for s in SPLITS:
        assert np.bincount(y[split[s]], minlength=6).tolist() == [expected[s]] * 6


def test_load_is_deterministic_and_seed_dependent(tmp_path):
    a = srgbd.load_synthetic_rgbd(n_per_class=6, size=16, seed=2, cache_dir=str(tmp_path / "a"))
    b = srgbd.load_synthetic_rgbd(n_per_class=6, size=16, seed=2, cache_dir=str(tmp_path / "b"))
    assert_same_data(a, b)
    c = srgbd.load_synthetic_rgbd(n_per_class=6, size=16, seed=3, cache_dir=str(tmp_path / "a"))
    assert not np.array_equal(a.inputs["rgb"], c.inputs["rgb"])
    assert not np.array_equal(a.labels["rgb"], c.labels["rgb"])


def test_cache_round_trip_does_not_render_again(cached, monkeypatch):
    first, cache_dir = cached
    path = cache_file(cache_dir)
    assert path.exists()
    assert not [p for p in os.listdir(cache_dir) if p.startswith(".tmp")]  # no temp file left

    def fail(*args, **kwargs):
        raise AssertionError("re-rendered instead of reading the cache")

    monkeypatch.setattr(srgbd, "render_rgbd", fail)
    second = srgbd.load_synthetic_rgbd(n_per_class=N, size=SIZE, seed=5, cache_dir=str(cache_dir))
    assert_same_data(first, second)


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCOMKD_CACHE", str(tmp_path))
    srgbd.load_synthetic_rgbd(n_per_class=6, size=16, seed=0)
    assert cache_file(tmp_path, n=6, size=16, seed=0).exists()


def test_corrupt_cache_is_regenerated(cached, tmp_path):
    first, cache_dir = cached
    good = cache_file(cache_dir).read_bytes()
    path = cache_file(tmp_path)
    path.write_bytes(good[: len(good) // 2])  # truncated, e.g. by a crash
    with pytest.warns(UserWarning, match="Regenerating"):
        again = srgbd.load_synthetic_rgbd(n_per_class=N, size=SIZE, seed=5, cache_dir=str(tmp_path))
    assert_same_data(first, again)
    assert path.read_bytes() == good  # rewritten in full
    path.write_bytes(b"not a zip file at all")
    with pytest.warns(UserWarning, match="Regenerating"):
        srgbd.load_synthetic_rgbd(n_per_class=N, size=SIZE, seed=5, cache_dir=str(tmp_path))
    assert path.read_bytes() == good


def test_preprocessing_reproduces_inputs_exactly(cached):
    data, cache_dir = cached
    with np.load(cache_file(cache_dir), allow_pickle=False) as raw:
        rgb, depth = raw["rgb"], raw["depth"]
    spec = json.loads(json.dumps(data.preprocessing))  # JSON-able, and what a device reads back
    assert spec["rgb"] == {"encoding": "rgb8", "raw": "8-bit RGB image, HxWx3", "layout": "HWC", "scale": 1 / 255,
                           "offset": 0.0, "height": SIZE, "width": SIZE}
    assert spec["depth"]["scale"] == 1 / (1000 * srgbd.MAX_DEPTH_M)
    assert spec["depth"]["clip"] == [0.0, 1.0]
    assert (spec["depth"]["height"], spec["depth"]["width"]) == (SIZE, SIZE)

    def apply(raw_array, p):
        x = raw_array.astype(np.float32) * np.float32(p["scale"]) + np.float32(p["offset"])
        return np.clip(x, *p["clip"]).astype(np.float32) if "clip" in p else x

    np.testing.assert_array_equal(apply(rgb, spec["rgb"]), data.inputs["rgb"])
    np.testing.assert_array_equal(apply(depth[..., None], spec["depth"]), data.inputs["depth"])
    assert np.array_equal(data.inputs["depth"] == 0, depth[..., None] == 0)  # missing stays 0


@pytest.mark.parametrize("kwargs", [{"n_per_class": 5}, {"size": 4}, {"seed": -1}, {"n_per_class": 6.5}, {"size": "64"}])
def test_load_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(DataError):
        srgbd.load_synthetic_rgbd(cache_dir=str(tmp_path), **kwargs)


def test_shapes_differ_by_class():
    """A nearest-centroid classifier on clean, centred depth beats chance
    clearly: the renderer really draws six different shapes."""
    clean = {"object_offset": 0.0, "p_depth_failure": 0.0, "depth_holes_max": 0,
             "depth_dropout": [0.0, 0.0]}
    labels = np.repeat(np.arange(6), 20)
    depth = srgbd.render_rgbd(labels, seed=11, size=SIZE, knobs=clean)[1].astype(np.float64) / 1000
    # Position and distance vary: judge the shape by the nearest 0.5 m of the scene.
    near = depth - np.where(depth > 0, depth, np.inf).min(axis=(1, 2), keepdims=True)
    feats = ((depth > 0) & (near < 0.5)).astype(np.float64)
    feats = feats.reshape(len(labels), SIZE // 4, 4, SIZE // 4, 4).mean(axis=(2, 4)).reshape(len(labels), -1)
    train = np.arange(len(labels)) % 2 == 0
    centroids = np.stack([feats[train & (labels == c)].mean(0) for c in range(6)])
    guess = ((feats[~train, None] - centroids) ** 2).sum(-1).argmin(1)
    assert (guess == labels[~train]).mean() > 1 / 3  # chance: 1/6 (0.40-0.50 seen over seeds)
