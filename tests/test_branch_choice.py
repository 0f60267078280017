"""benchmarks/branch_choice.py: the paired differences it reports and the rule it applies."""

import json

import pytest
from click.testing import CliRunner

from branch_choice import main  # benchmarks/


def write_comparison(folder, dataset, form, valid, test, twin_test):
    """A comparison record: {modality: [per-seed F1]} for DisCoM-KD (valid, test) and the twin."""
    runs = []
    for seed in range(len(next(iter(valid.values())))):
        runs.append({"method": "discomkd", "seed": seed, "results": {
            m: {"valid_weighted_f1": valid[m][seed], "test_weighted_f1": test[m][seed],
                "parameters": 100 if form == "separate" else 60,
                "macs": 2e6 if form == "separate" else 1e6} for m in valid}})
        runs.append({"method": "unimodal", "seed": seed, "results": {
            m: {"valid_weighted_f1": 0.5, "test_weighted_f1": twin_test[m][seed],
                "parameters": 1, "macs": 1.0} for m in valid}})
    raw = {"options": {"branch": form, "encoders": {m: "dscnn" for m in valid},
                       "feature_dim": 8, "epochs": 1},
           "seeds": list(range(len(runs) // 2)), "runs": runs}
    (folder / f"{dataset}-branch-{form}.json").write_text(json.dumps(raw))


def write_all(folder, shared_valid_a):
    base = {"a": [0.60, 0.62, 0.64], "b": [0.80, 0.80, 0.80]}
    for dataset in ("synthetic-rgbd", "av-mnist-hard"):
        write_comparison(folder, dataset, "separate", base, base,
                         {"a": [0.50, 0.50, 0.50], "b": [0.90, 0.90, 0.90]})
        shared = {"a": shared_valid_a, "b": [0.81, 0.80, 0.79]}
        write_comparison(folder, dataset, "shared", shared, shared,
                         {"a": [0.55, 0.50, 0.45], "b": [0.90, 0.90, 0.90]})


@pytest.mark.parametrize("shared_a, chosen", [([0.595, 0.615, 0.635], "shared"),   # -0.5 point
                                              ([0.585, 0.605, 0.625], "separate")])  # -1.5 points
def test_rule_on_validation_and_the_paired_figures(tmp_path, shared_a, chosen):
    write_all(tmp_path, shared_a)
    result = CliRunner().invoke(main, ["--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = (tmp_path / "branch-choice.md").read_text()
    assert f"**{chosen}**" in report
    # shared - separate on b: differences +1, 0, -1 -> mean 0.0, std 1.0,
    # 95% half-width 4.303 / sqrt(3) = 2.48
    assert "| b | 80.0 | 80.0 | +0.0 ± 1.0 [-2.5, +2.5] |" in report
    # a against its twin, shared: 59.5 - 55 = +4.5, 61.5 - 50 = +11.5, 63.5 - 45 = +18.5 (first
    # case): the weaker modality (a: twin 50.0) comes first in the twin table
    twin_rows = report.split("DisCoM-KD - twin")[1]
    assert twin_rows.index("| a | separate |") < twin_rows.index("| b | separate |")
    if chosen == "shared":
        assert "| a | shared | 50.0 | 61.5 | +11.5 ± 7.0 [-5.9, +28.9] |" in report
    # the cost columns: each form's deployed parameters and MACs
    assert "| 100 / 60 | 2.00 M / 1.00 M |" in report


def test_a_missing_comparison_names_the_command(tmp_path):
    write_all(tmp_path, [0.6, 0.6, 0.6])
    (tmp_path / "av-mnist-hard-branch-shared.json").unlink()
    result = CliRunner().invoke(main, ["--results-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "--data av-mnist-hard --methods unimodal,discomkd --branch shared" in result.output
    assert not (tmp_path / "branch-choice.md").exists()
