"""The method comparison behind benchmarks/compare_methods.py: the report
written from a results file, and the runner's reuse of finished runs."""

import json

import numpy as np
import pytest

from comparison import (METHOD_RUNS, method_options, paired_difference, run_comparison,  # benchmarks/
                        summarise, write_report)
from helpers import write_released

pytestmark = pytest.mark.portable


def fake_run(method, seed, f1, acc=None, seconds=10.0, params=(100, 200)):
    names = ["teacher"] if method == "teacher" else ["a", "b"]
    f1 = f1 if isinstance(f1, (list, tuple)) else [f1]
    return {"method": method, "seed": seed, "run_dir": f"runs/{method}/{seed}", "epochs": 4,
            "seconds_per_epoch": seconds, "samples_per_s": 1000.0 / seconds, "train_seconds": 4 * seconds,
            "results": {n: {"test_weighted_f1": f, "test_accuracy": (acc or f) + 0.01,
                            "parameters": p, "best_epoch": 3, "macs": 10 * p}
                        for n, f, p in zip(names, f1, params)}}


def fake_raw():
    runs = [
        fake_run("unimodal", 0, [0.40, 0.90], seconds=10.0),
        fake_run("unimodal", 1, [0.60, 0.80], seconds=12.0),
        fake_run("single", 0, [0.44, 0.88], params=(50, 100)),
        fake_run("single", 1, [0.58, 0.78], params=(50, 100)),
        fake_run("discomkd", 0, [0.50, 0.90], seconds=11.0),
        fake_run("discomkd", 1, [0.66, 0.78], seconds=13.0),
        fake_run("teacher", 0, 0.95, seconds=5.0, params=(300,)),
        fake_run("teacher", 1, 0.97, seconds=7.0, params=(300,)),
        fake_run("kd", 0, [0.45, 0.85], seconds=14.0),
        fake_run("kd", 1, [0.55, 0.75], seconds=14.0),
    ]
    return {"dataset": "fake-set", "date": "2026-11-26", "command": "python benchmarks/compare_methods.py --data x",
            "data": {"source": "x"}, "options": {"encoders": {"a": "lenet"}, "feature_dim": 8, "epochs": 4,
                                                 "batch_size": 16, "learning_rate": 0.001},
            "seeds": [0, 1], "machine": {"cpus": 2, "platform": "test", "keras": "3", "backend": "tf"},
            "runs": runs}


def test_paired_difference_by_hand():
    d = paired_difference([58.0, 66.0, 61.0], [50.0, 60.0, 58.0])  # differences 8, 6, 3
    assert d["mean"] == pytest.approx(17 / 3) and d["n"] == 3
    std = np.std([8, 6, 3], ddof=1)
    half = 4.303 * std / np.sqrt(3)  # t(0.975, df = 2)
    assert d["std"] == pytest.approx(std) and (d["low"], d["high"]) == pytest.approx(
        (17 / 3 - half, 17 / 3 + half))


def test_summary_statistics_by_hand():
    s = summarise(fake_raw())
    uni = s["methods"]["unimodal"]
    assert uni["f1"]["a"] == pytest.approx((50.0, 14.1421356), rel=1e-6)  # std with ddof = 1
    assert uni["accuracy"]["b"] == pytest.approx((86.0, 7.0710678), rel=1e-6)
    assert uni["seconds_per_epoch"] == 11.0 and uni["parameters"] == {"a": 100, "b": 200}
    assert s["methods"]["single"]["macs"] == {"a": 500, "b": 1000}
    # Gains are per-seed differences: vs the twin, a: +10, +6 -> 8 +- 2.83 (95% CI 8 +- 12.706 * 2);
    # b: 0, -2 -> -1. Vs the single-encoder baseline, a: +6, +8 -> 7.
    twin, single = s["gains"]["unimodal"], s["gains"]["single"]
    assert (twin["a"]["mean"], twin["a"]["std"]) == pytest.approx((8.0, 2.8284271), rel=1e-6)
    assert (twin["a"]["low"], twin["a"]["high"]) == pytest.approx((8 - 12.706 * 2, 8 + 12.706 * 2))
    assert twin["b"]["mean"] == pytest.approx(-1.0) and single["a"]["mean"] == pytest.approx(7.0)
    assert s["weak"] == "a"
    # a gains +8 and +7, but with 2 seeds the intervals reach below 0: not met.
    assert not s["gain_target_met"]
    assert s["cost_ratio"] == pytest.approx(12.0 / 11.0)


def test_gain_target_met_with_tight_intervals_and_missed_when_the_strong_modality_drops():
    raw = fake_raw()
    raw["runs"][5]["results"]["a"]["test_weighted_f1"] = 0.70  # a vs twin: +10, +10
    raw["runs"][2]["results"]["a"]["test_weighted_f1"] = 0.40  # a vs single: +10, +12 ...
    raw["runs"][3]["results"]["a"]["test_weighted_f1"] = 0.60  # ... +10, +10
    s = summarise(raw)
    assert s["gains"]["unimodal"]["a"]["low"] == pytest.approx(10.0)
    assert s["gain_target_met"]
    raw["runs"][5]["results"]["b"]["test_weighted_f1"] = 0.70  # b: 0, -10 -> -5
    s = summarise(raw)
    assert s["gains"]["unimodal"]["b"]["mean"] == pytest.approx(-5.0) and not s["gain_target_met"]


def test_report_files_from_a_results_file(tmp_path):
    raw = fake_raw()
    json_path, md_path, png_path = write_report(raw, tmp_path)
    assert json.loads(json_path.read_text()) == raw
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = md_path.read_text()
    assert ("| unimodal | 50.0 ± 14.1 | 51.0 ± 14.1 | 85.0 ± 7.1 | 86.0 ± 7.1 | 11.0 | 92 | "
            "100 / 200 | 0.00 M / 0.00 M |") in md
    assert "| kd | 50.0 ± 7.1 |" in md
    assert "| a (weaker) | unimodal | 50.0 ± 14.1 | 58.0 ± 11.3 | +8.0 ± 2.8 | [-17.4, +33.4] |" in md
    assert "| a (weaker) | single | 51.0 ± 9.9 | 58.0 ± 11.3 | +7.0 ± 1.4 |" in md
    assert "**NOT met**" in md and "1.09x" in md
    assert "F1 96.0 ± 1.4" in md  # the teacher, reported apart from the deployable classifiers
    assert "Teacher + kd students: 20.0 s / epoch, 1.67x DisCoM-KD." in md
    assert raw["command"] in md and "fake-set.png" in md
    with pytest.raises(ValueError, match="No runs"):
        write_report(dict(raw, runs=[]), tmp_path)


def test_runner_trains_then_reuses_finished_runs(tmp_path):
    d = write_released(tmp_path / "data")
    spec = {"source": "released", "directory": str(d), "split_seed": None}
    options = {"epochs": 1, "batch_size": 16, "learning_rate": 3e-3, "feature_dim": 8,
               "encoders": {"rgb": "lenet"}}
    logs = []
    first = run_comparison(spec, options, [0], tmp_path / "work", methods=["unimodal"], log=logs.append)
    assert len(first) == 1 and set(first[0]["results"]) == {"rgb", "vec"}
    assert (tmp_path / "work" / "seed0" / "unimodal" / "best" / "rgb.keras").exists()
    again = run_comparison(spec, options, [0], tmp_path / "work", methods=["unimodal"], log=logs.append)
    assert "reused" in logs[-1] and again[0]["results"] == first[0]["results"]
    with pytest.raises(ValueError, match="need the teacher"):
        run_comparison(spec, options, [0], tmp_path / "work", methods=["kd"])
    with pytest.raises(ValueError, match="Unknown methods"):
        run_comparison(spec, options, [0], tmp_path / "work", methods=["fitnet"])


def test_a_variant_reaches_discomkd_and_its_ablations_only():
    options = {"epochs": 6, "loss_weights": {"cl": 1.0}}
    variant = {"loss_weights": {"aux": 2.0}, "modality_targets": "released"}
    change = dict(METHOD_RUNS)
    ablation = method_options(options, 3, change["discomkd -L_adv"], variant)
    assert ablation == {"epochs": 6, "seed": 3, "method": "discomkd",
                        "loss_weights": {"cl": 1.0, "aux": 2.0, "adv": 0.0},
                        "modality_targets": "released"}
    assert method_options(options, 3, change["discomkd"], variant)["loss_weights"] == {
        "cl": 1.0, "aux": 2.0}
    assert method_options(options, 0, change["unimodal"], variant) == {
        "epochs": 6, "loss_weights": {"cl": 1.0}, "seed": 0, "method": "unimodal"}
    assert options == {"epochs": 6, "loss_weights": {"cl": 1.0}}  # shared options untouched
