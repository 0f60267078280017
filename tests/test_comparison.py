"""The method comparison behind benchmarks/compare_methods.py: the report
written from a results file, and the runner's reuse of finished runs."""

import json

import numpy as np
import pytest

from discomkd_keras.comparison import (METHOD_RUNS, method_options, paired_difference,
                                       run_comparison, summarise, write_report)
from helpers import write_released


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


def test_branch_reaches_the_methods_with_discomkd_branches_only(tmp_path):
    from discomkd_keras.comparison import _finished

    change = dict(METHOD_RUNS)
    options = {"epochs": 6, "branch": "shared"}
    for label in ("discomkd", "unimodal", "kd"):
        assert method_options(options, 0, change[label])["branch"] == "shared"
    for label in ("single", "teacher"):
        assert "branch" not in method_options(options, 0, change[label])
    # A finished run from before --branch is the same run as its separate-branch config.
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text("{}")
    for method, branch in (("discomkd", "separate"), ("single", None)):
        config = {"method": method, "epochs": 6, "versions": {}}
        (run / "config.json").write_text(json.dumps(config))
        assert _finished(run, dict(config, branch=branch))
        assert not _finished(run, dict(config, branch="shared"))


# --------------------------------------------------------------------------- discomkd-keras compare


@pytest.mark.parametrize("ours, theirs, words", [
    ([60, 62, 61], [50, 51, 52], "DisCoM-KD helps depth: +10.0 [+7.5, +12.5] F1 points against its "
                                 "unimodal twin."),
    ([50, 51, 52], [60, 62, 61], "DisCoM-KD hurts depth: -10.0 [-12.5, -7.5] F1 points"),
    ([60, 50, 55], [55, 55, 55], "depth: no evidence either way (the interval includes 0): +0.0 "
                                 "[-12.4, +12.4] F1 points"),
    ([60], [50], "depth: one seed, so no interval and no verdict (+10.0 F1 points against its "
                 "unimodal twin); run 3 or more seeds."),
])
def test_verdict_in_words(ours, theirs, words):
    from discomkd_keras.comparison import verdict
    d = paired_difference(ours, theirs)
    # by hand: differences (10, 11, 9) -> mean 10, std 1, half-width 4.303 / sqrt(3) = 2.48
    assert verdict("depth", d, "unimodal").startswith(words)


def test_report_leads_with_a_verdict_per_modality_and_the_cost(tmp_path):
    raw = fake_raw()
    raw["runs"][0]["results"]["a"]["int8_bytes"] = 2048
    _, md_path, _ = write_report(dict(raw, targets=False), tmp_path, "report")
    md = md_path.read_text()
    assert md.index("## Verdict") < md.index("## Test weighted F1")
    assert "- a: no evidence either way (the interval includes 0): +8.0 [-17.4, +33.4] F1 points " \
           "against its unimodal twin" in md
    # kd's per-seed a: 45, 55 against DisCoM-KD's 50, 66: +5, +11
    assert "| a (weaker) | kd | 50.0 ± 7.1 | 58.0 ± 11.3 | +8.0 ± 4.2 | [-30.1, +46.1] | no evidence |" in md
    assert "| unimodal | 100 / 200 | 0.00 M / 0.00 M | 2 KiB / n/a | 0m44s | 11.0 |" in md
    assert "Target (" not in md  # a user's comparison has no benchmark targets


def test_an_interrupted_comparison_resumes(tmp_path, monkeypatch):
    import discomkd_keras.training as training
    d = write_released(tmp_path / "data")
    spec = {"source": "released", "directory": str(d), "split_seed": None}
    options = {"epochs": 1, "batch_size": 16, "learning_rate": 3e-3, "feature_dim": 8,
               "encoders": {"rgb": "lenet"}}
    real, calls = training.train_run, []

    def dies_on_the_second(config, run_dir, **kwargs):
        calls.append(run_dir)
        if len(calls) == 2:
            (run_dir / "history.csv").write_text("epoch\n")  # half a run on disk
            raise KeyboardInterrupt
        return real(config, run_dir, **kwargs)

    monkeypatch.setattr(training, "train_run", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        run_comparison(spec, options, [0, 1], tmp_path / "work", methods=["unimodal"])
    monkeypatch.setattr(training, "train_run", real)
    logs = []
    records = run_comparison(spec, options, [0, 1], tmp_path / "work", methods=["unimodal"],
                             log=logs.append)
    assert logs[0].startswith("Plan: 1 method(s) x 2 seed(s) = 2 runs (unimodal)") and \
        logs[0].endswith("1 finished before, reused.")
    assert "seed 0 unimodal" in logs[1] and logs[1].endswith("reused)")
    assert logs[2].startswith("[run 2/2] seed 1 unimodal: elapsed")
    assert [r["seed"] for r in records] == [0, 1]


def test_compare_end_to_end_writes_the_report_and_exports(tmp_path):
    from click.testing import CliRunner
    from discomkd_keras.cli import main
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the export needs the TensorFlow backend")
    d = write_released(tmp_path / "data", n_per_class=30)
    out = tmp_path / "cmp"
    args = ["compare", "--data-dir", d, "--methods", "unimodal,discomkd", "--seeds", 2,
            "--epochs", 2, "--encoder", "rgb=lenet", "--feature-dim", 8, "--batch-size", 16,
            "--lr", 3e-3, "--out", out, "--export-best", "--quiet"]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "Estimated time: about" in result.output and "Plan: 2 method(s) x 2 seed(s)" in result.output
    md = (out / "report.md").read_text()
    raw = json.loads((out / "report.json").read_text())
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    verdicts = md.split("## Verdict\n\n")[1].split("\n\n")[0].splitlines()
    assert len(verdicts) == 2
    for m, line in zip(("rgb", "vec"), verdicts):
        assert line.startswith((f"- {m}: ", f"- DisCoM-KD helps {m}: ", f"- DisCoM-KD hurts {m}: "))
        assert line in result.output
        card = json.loads((out / "export" / m / "model_card.json").read_text())
        assert card["verification"]["passed"] and (out / "export" / m / f"{m}.tflite").exists()
    exported = {e["modality"]: e for e in raw["exports"]}
    for m, e in exported.items():  # chosen on validation: the best mean validation F1
        means = {label: np.mean([r["results"][m]["valid_weighted_f1"] for r in raw["runs"]
                                 if r["method"] == label]) for label in ("unimodal", "discomkd")}
        assert means[e["method"]] == max(means.values())
    assert str(tmp_path) not in md and str(tmp_path) not in json.dumps(raw)
    assert raw["data"]["directory"] == "../data" and raw["runs"][0]["run_dir"].startswith("runs/")
    again = CliRunner().invoke(main, [str(a) for a in args])  # everything reused
    assert again.exit_code == 0 and "4 finished before, reused." in again.output


def test_compare_on_the_built_in_set_runs_the_committed_comparison():
    """`discomkd-keras compare` with no data option trains exactly the runs behind
    benchmarks/results/synthetic-rgbd-compare/report.json (same data, same shared options, same
    seeds), so
    with deterministic training it reproduces those figures for the methods it runs."""
    from pathlib import Path
    from types import SimpleNamespace

    from click.testing import CliRunner
    from discomkd_keras import cli, comparison
    from discomkd_keras.config import TRAIN_DEFAULTS, ConfigError

    committed = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "results" /
                            "synthetic-rgbd-compare" / "report.json").read_text())
    seen = {}

    def instead(spec, options, encoder_items, methods, seeds, *args, **kwargs):
        seen.update(spec=spec, methods=methods, seeds=seeds, options=comparison.comparison_options(
            spec["source"], options, SimpleNamespace(modalities=["rgb", "depth"],
                                                     kinds={"rgb": "image", "depth": "image"}),
            encoder_items))
        raise ConfigError("stop here")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(comparison, "compare", instead)
        result = CliRunner().invoke(cli.main, ["compare"])
    assert "stop here" in result.output
    assert seen["spec"] == committed["data"] and list(range(seen["seeds"])) == committed["seeds"]
    options = dict(committed["options"])
    assert options.pop("discomkd_variant", {}) == {}  # benchmarks/compare_methods.py's
    # The preset is recorded by name since --preset exists; its values are the committed ones.
    assert seen["options"].pop("preset") == "synthetic-rgbd"
    # Options added since that comparison ran hold their defaults, the settings its runs had.
    newer = {k: v for k, v in seen["options"].items() if k not in options}
    assert newer == {k: TRAIN_DEFAULTS[k] for k in newer}
    assert seen["options"] == dict(options, **newer)
    assert set(seen["methods"]) <= {r["method"] for r in committed["runs"]}


def test_compare_refuses_bad_options_before_any_work(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from discomkd_keras.cli import main
    d = write_released(tmp_path / "data")
    for args, message in (
            (["--seeds", "0"], "Error: --seeds must be >= 1; got 0."),
            (["--methods", "discomkd,fitnet"], "Error: Unknown methods ['fitnet']"),
            (["--methods", "kd"], "need the teacher method in the same comparison")):
        result = CliRunner().invoke(main, ["compare", "--data-dir", str(d), "--out",
                                           str(tmp_path / "out"), *args])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out").exists()
