"""benchmarks/presets.py (the edge preset's choice and its comparison report, from hand-made
run records) and benchmarks/make_mnist_features.py (the MNIST-features files)."""

import csv
import json
import math

import numpy as np
import pytest
from pathlib import Path
from PIL import Image

from make_mnist_features import (fourier_features, write_av_mnist_tree,  # benchmarks/
                                 write_mnist_features)
from presets import build_report, make_point, parse_args, point_slug  # benchmarks/

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SIMPLE = make_point(1e-3, "constant", 0.0)      # the simplest point
FANCY = make_point(3e-3, "cosine", 1e-2)        # cosine, weight decay, higher lr
T2 = 4.303  # two-sided 95% Student t, 2 degrees of freedom (3 seeds)


def record(dataset, point, method, seed, valid, test=None, epochs=10):
    """A run_comparison record, labelled as presets.py labels it; F1 as fractions."""
    test = test or valid
    return {"dataset": dataset, "point": dict(point), "method": method, "seed": seed,
            "run_dir": f"seed{seed}/{method}", "epochs": epochs, "train_seconds": 60.0,
            "seconds_per_epoch": 6.0, "samples_per_s": 100.0,
            "results": {m: {"valid_weighted_f1": valid[m], "test_weighted_f1": test[m],
                            "test_accuracy": test[m], "parameters": 1000, "best_epoch": 5,
                            "macs": 1e6} for m in valid}}


# Validation F1 (fractions) per data set and modality, seeds 0, 1, 2, of the simple point:
# d1: a 72 (mean of 70, 72, 74), b 80 -> 76; d2: x 60, y 90 -> 75; score 75.5 points.
GRID_VALID = {"d1": {"a": [0.70, 0.72, 0.74], "b": [0.80, 0.80, 0.80]},
              "d2": {"x": [0.60, 0.60, 0.60], "y": [0.90, 0.90, 0.90]}}


def grid_records(fancy_gain):
    """Both points on both data sets x 3 seeds; the fancy point `fancy_gain` points better
    on every modality (so its score is 75.5 + fancy_gain)."""
    records = []
    for point, gain in ((SIMPLE, 0.0), (FANCY, fancy_gain)):
        for dataset, modalities in GRID_VALID.items():
            for seed in range(3):
                valid = {m: v[seed] + gain / 100 for m, v in modalities.items()}
                records.append(record(dataset, point, "discomkd", seed, valid, epochs=12 + seed))
    return records


# Test F1 per seed at the chosen point: DisCoM-KD and its twin, and the paired differences
# in points: a [3, 4, 5] helps, b [2, 4, 6] no evidence, x [-3, -4, -5] hurts, y [0, 0, 0].
COMPARE_TEST = {
    "discomkd": {"d1": {"a": [0.62, 0.64, 0.66], "b": [0.80, 0.80, 0.80]},
                 "d2": {"x": [0.50, 0.50, 0.50], "y": [0.90, 0.91, 0.92]}},
    "unimodal": {"d1": {"a": [0.59, 0.60, 0.61], "b": [0.78, 0.76, 0.74]},
                 "d2": {"x": [0.53, 0.54, 0.55], "y": [0.90, 0.91, 0.92]}},
}


def compare_records(point):
    records = []
    for method, sets in COMPARE_TEST.items():
        for dataset, modalities in sets.items():
            for seed in range(3):
                test = {m: v[seed] for m, v in modalities.items()}
                valid = {m: v + 0.01 for m, v in test.items()}
                records.append(record(dataset, point, method, seed, valid, test,
                                      epochs=20 + seed if method == "discomkd" else 15))
    return records


META = {"command": "python benchmarks/presets.py", "date": "2026-01-02", "git": "abc1234",
        "machine": {"cpus": 2}, "wall_seconds": 120.0, "datasets": ["d1", "d2"],
        "grid_seeds": [0, 1, 2], "seeds": [0, 1, 2], "points": [SIMPLE, FANCY]}


@pytest.mark.parametrize("gain, chosen, best", [
    (0.2, SIMPLE, FANCY),   # within 0.3 points of the best: the simpler point
    (0.3, SIMPLE, FANCY),   # exactly 0.3: still within
    (0.5, FANCY, FANCY),    # beyond: the best score
    (-0.4, SIMPLE, SIMPLE),  # the simple point is the best outright
])
def test_choice_and_the_simplicity_rule(gain, chosen, best):
    markdown, report = build_report(grid_records(gain), [], META)
    grid = report["grid"]
    assert grid["choice"] == chosen
    assert grid["best"] == point_slug(best)
    table = grid["table"]
    simple, fancy = table[point_slug(SIMPLE)], table[point_slug(FANCY)]
    assert simple["datasets"]["d1"]["valid_f1"] == pytest.approx({"a": 72.0, "b": 80.0})
    assert simple["datasets"]["d1"]["mean"] == pytest.approx(76.0)
    assert simple["datasets"]["d2"]["mean"] == pytest.approx(75.0)
    assert simple["datasets"]["d1"]["epochs"] == [12, 13, 14]
    assert simple["score"] == pytest.approx(75.5)
    assert fancy["score"] == pytest.approx(75.5 + gain)
    word = "constant" if chosen is SIMPLE else "cosine"
    assert f"**Choice**: lr {chosen['learning_rate']:g}, {word}" in markdown
    assert "within 0.3 points of the best go to the simplest" in markdown
    assert ("the simplest of the 2 points" in markdown) == (chosen is not best)
    assert "Not run yet" in markdown  # no comparison records


def test_a_point_missing_a_data_set_has_no_score():
    records = [r for r in grid_records(5.0) if not (r["point"] == FANCY and r["dataset"] == "d2")]
    markdown, report = build_report(records, [], META)
    assert report["grid"]["table"][point_slug(FANCY)]["score"] is None
    assert report["grid"]["choice"] == SIMPLE
    assert "incomplete" in markdown and "(not run)" in markdown


def test_paired_intervals_and_verdicts():
    markdown, report = build_report(grid_records(0.2), compare_records(SIMPLE), META)
    table = report["compare"]["table"]
    half1, half2 = T2 * 1 / math.sqrt(3), T2 * 2 / math.sqrt(3)
    expected = {("d1", "a"): (4.0, 1.0, 4.0 - half1, 4.0 + half1, "helps"),
                ("d1", "b"): (4.0, 2.0, 4.0 - half2, 4.0 + half2, "no evidence either way"),
                ("d2", "x"): (-4.0, 1.0, -4.0 - half1, -4.0 + half1, "hurts"),
                ("d2", "y"): (0.0, 0.0, 0.0, 0.0, "no evidence either way")}
    for (dataset, m), (mean, std, low, high, verdict) in expected.items():
        d = table[dataset][m]["difference"]
        assert (d["mean"], d["std"], d["low"], d["high"]) == pytest.approx(
            (mean, std, low, high), abs=1e-9), (dataset, m)
        assert d["n"] == 3 and d["seeds"] == [0, 1, 2]
        assert table[dataset][m]["verdict"] == verdict
    a = table["d1"]["a"]
    assert (a["discomkd"]["test_mean"], a["discomkd"]["test_std"]) == pytest.approx((64.0, 2.0))
    assert (a["unimodal"]["test_mean"], a["unimodal"]["test_std"]) == pytest.approx((60.0, 1.0))
    assert a["discomkd"]["valid_mean"] == pytest.approx(65.0)
    assert a["discomkd"]["epochs"] == [20, 21, 22] and a["unimodal"]["epochs"] == [15, 15, 15]
    # The markdown: intervals to one decimal, a verdict line per modality, provenance.
    assert "| d1 | a | 60.0 ± 1.0 | 64.0 ± 2.0 | +4.0 ± 1.0 | [+1.5, +6.5] | helps |" in markdown
    assert "| d2 | x |" in markdown and "[-6.5, -1.5] | hurts |" in markdown
    assert "- d1 / b: no evidence either way: +4.0 [-1.0, +9.0] points." in markdown
    assert "abc1234" in markdown and "2026-01-02" in markdown
    assert "python benchmarks/presets.py" in markdown
    assert "20, 21, 22" in markdown
    json.dumps(report, allow_nan=False)  # strict JSON


def test_one_seed_has_no_interval_and_strict_json():
    records = [r for r in compare_records(SIMPLE) if r["seed"] == 0]
    markdown, report = build_report(grid_records(0.0), records, dict(META, seeds=[0]))
    d = report["compare"]["table"]["d1"]["a"]
    assert d["verdict"].startswith("one seed") and d["difference"]["low"] is None
    assert "(one seed)" in markdown
    json.dumps(report, allow_nan=False)


def test_a_comparison_at_another_point_is_flagged():
    markdown, _ = build_report(grid_records(0.0), compare_records(FANCY), META)
    assert "not at the point chosen now" in markdown


def test_default_grid():
    args = parse_args([])
    assert len(args.points) == 8
    assert {(p["schedule"], p["warmup_epochs"]) for p in args.points} == {("constant", 0.0),
                                                                          ("cosine", 1.0)}
    assert args.grid_seeds == [0] and args.seeds == 3
    assert args.work_dir.parts[-3:] == ("benchmarks", "runs", "presets")
    assert args.out.parts[-2:] == ("benchmarks", "results")


def test_fourier_features():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (28, 28)).astype(np.uint8)
    f = fourier_features(image)
    assert f.shape == (36,) and f.dtype == np.float32 and f[0] == 1.0
    by_hand = np.abs(np.fft.fft2(image.astype(np.float64)))[:6, :6].ravel() / image.sum()
    np.testing.assert_allclose(f, by_hand, rtol=1e-6)
    np.testing.assert_allclose(fourier_features(np.roll(image, (3, -5), axis=(0, 1))), f,
                               rtol=1e-5)  # translation-invariant
    assert not fourier_features(np.zeros((28, 28), np.uint8)).any()


needs_shared = pytest.mark.skipif(
    not (SHARED / "mnist" / "mnist-10k.npz").exists(),
    reason=f"the shared data folder {SHARED} (mnist/mnist-10k.npz) is missing")


@needs_shared
def test_write_mnist_features(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCOMKD_CACHE", str(tmp_path / "cache"))
    out = write_mnist_features(SHARED, tmp_path / "mf", limit=50)
    assert out == tmp_path / "mf" and not (tmp_path / "mf.tmp").exists()
    with open(out / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["label", "pix", "fou"] and len(rows) == 50
    assert sorted(np.unique([r["label"] for r in rows], return_counts=True)[1]) == [5] * 10
    with np.load(SHARED / "mnist" / "mnist-10k.npz", allow_pickle=False) as mnist:
        x, y = mnist["x"], mnist["y"]
    for r in rows[:: 7]:
        i = int(Path(r["pix"]).stem)
        assert r["label"] == str(y[i])
        with Image.open(out / r["pix"]) as img:
            assert img.mode == "L" and img.size == (28, 28)
            np.testing.assert_array_equal(np.asarray(img), x[i])
        np.testing.assert_array_equal(np.load(out / r["fou"]), fourier_features(x[i]))
    with pytest.raises(FileExistsError):
        write_mnist_features(SHARED, out, limit=50)
    write_mnist_features(SHARED, out, limit=20, overwrite=True)
    assert len((out / "manifest.csv").read_text().splitlines()) == 21

    from discomkd_keras.config import data_spec
    from discomkd_keras.data import load_data

    # 50 rows leave a class without a validation row (70/10/20 of 5): load 100.
    write_mnist_features(SHARED, out, limit=100, overwrite=True)
    data = load_data(data_spec(data_dir=out, split_seed=0))
    assert data.modalities == ["pix", "fou"]
    assert data.kinds == {"pix": "image", "fou": "vector"}
    assert tuple(data.input_shape("pix")) == (28, 28, 1)
    assert tuple(data.input_shape("fou")) == (36,)


@needs_shared
@pytest.mark.skipif(not (SHARED / "fsdd" / "recordings").exists(),
                    reason=f"FSDD recordings missing from {SHARED}")
def test_write_av_mnist_tree(tmp_path):
    out = write_av_mnist_tree(SHARED, tmp_path / "tree")
    assert sorted(p.name for p in out.iterdir()) == ["audio", "image"]
    assert len(list((out / "image").glob("*/*.png"))) == 10000
    assert len(list((out / "audio" / "test").glob("*/*.wav"))) == 300
    assert len(list((out / "audio" / "train").glob("*/*.wav"))) == 2700
    assert (out / "audio" / "test" / "7" / "7_theo_0.wav").exists()
