"""Macro F1 beside weighted F1: the metric by hand, results.json, the run summary and the
comparison report (including records from before macro F1)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from discomkd_keras.comparison import format_markdown, summarise, write_report
from discomkd_keras.metrics import macro_f1, per_class_scores, weighted_f1


# 4 classes, class 3 neither true nor predicted:
#   class 0: 4 true, 3 predicted 0 (+1 predicted 1) -> P 3/3, R 3/4, F1 6/7
#   class 1: 2 true, 1 right (+1 predicted 2), 2 predicted 1 -> P 1/2, R 1/2, F1 1/2
#   class 2: 1 true, right, 2 predicted 2 -> P 1/2, R 1, F1 2/3
Y_TRUE = [0, 0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 0, 1, 1, 2, 2]


def test_per_class_scores_by_hand():
    s = per_class_scores(Y_TRUE, Y_PRED, 4)
    assert set(s) == {"precision", "recall", "f1", "support"}
    assert all(len(v) == 4 for v in s.values())
    assert s["precision"] == pytest.approx([1.0, 0.5, 0.5, 0.0])
    assert s["recall"] == pytest.approx([0.75, 0.5, 1.0, 0.0])
    assert s["f1"] == pytest.approx([6 / 7, 0.5, 2 / 3, 0.0])
    assert s["support"].tolist() == [4, 2, 1, 0]


def test_macro_f1_by_hand_absent_class_not_counted():
    # (6/7 + 1/2 + 2/3) / 3 = 85/126 ~ 0.6746: class 3 (absent) is not a fourth zero.
    assert macro_f1(Y_TRUE, Y_PRED, 4) == pytest.approx(85 / 126)
    assert macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx(85 / 126)
    # weighted: (4 * 6/7 + 2 * 1/2 + 1 * 2/3) / 7 = 107/147 ~ 0.7279
    assert weighted_f1(Y_TRUE, Y_PRED, 4) == pytest.approx(107 / 147)


def test_a_predicted_class_absent_from_y_true_is_not_counted():
    # class 2 only predicted: class 0 P 1, R 1/2 -> 2/3; class 1 -> 1; mean over {0, 1} = 5/6
    assert macro_f1([0, 0, 1], [0, 2, 1], 3) == pytest.approx(5 / 6)
    s = per_class_scores([0, 0, 1], [0, 2, 1], 3)
    assert s["precision"][2] == 0.0 and s["recall"][2] == 0.0 and s["f1"][2] == 0.0
    # a true class never predicted right scores 0 and still counts
    assert macro_f1([0, 1], [1, 1], 2) == pytest.approx((0 + 2 / 3) / 2)
    assert macro_f1([], [], 3) == 0.0


def test_macro_f1_shows_the_rare_class_that_weighted_f1_hides():
    y_true = [0] * 9 + [1]
    y_pred = [0] * 10  # the rare class is never found
    # class 0: P 9/10, R 1 -> F1 18/19; class 1: F1 0
    assert weighted_f1(y_true, y_pred, 2) == pytest.approx(0.9 * 18 / 19)  # 0.8526
    assert macro_f1(y_true, y_pred, 2) == pytest.approx(9 / 19)  # 0.4737
    # balanced classes, same mistakes per class: both agree
    assert macro_f1([0, 0, 1, 1], [0, 1, 1, 0], 2) == pytest.approx(0.5)
    assert weighted_f1([0, 0, 1, 1], [0, 1, 1, 0], 2) == pytest.approx(0.5)


def test_score_best_classifiers_writes_macro_f1_beside_weighted(tmp_path, monkeypatch):
    from discomkd_keras import evaluation

    class Fake:
        def __init__(self, pred):
            self.pred = np.asarray(pred)
            self.output_shape = (None, 4)

        def predict(self, x, batch_size, verbose=0):
            return np.eye(4, dtype=np.float32)[self.pred[:len(x)]]

        def count_params(self):
            return 7

    monkeypatch.setattr(evaluation, "load_best",
                        lambda run_dir, m: (Fake(Y_PRED), {"epoch": 2, "f1": 0.6}))
    data = SimpleNamespace(num_classes=4, split=lambda m, split: (
        np.zeros((len(Y_TRUE), 3), np.float32), np.asarray(Y_TRUE)))
    results = evaluation.score_best_classifiers(
        tmp_path, data, {"modalities": ["rgb"], "batch_size": 4})
    r = json.loads((tmp_path / "results.json").read_text())["rgb"]
    assert r == results["rgb"]
    assert r["test_macro_f1"] == pytest.approx(85 / 126)
    assert r["test_weighted_f1"] == pytest.approx(107 / 147)
    assert r["test_accuracy"] == pytest.approx(5 / 7) and r["valid_weighted_f1"] == 0.6
    assert list(r) == ["test_accuracy", "test_weighted_f1", "test_macro_f1", "best_epoch",
                       "valid_weighted_f1", "test_samples", "parameters", "confusion_matrix"]


def test_print_summary_has_a_macro_column_and_a_dash_for_older_results(capsys):
    from discomkd_keras.cli_support import print_summary

    row = {"test_accuracy": 0.75, "test_weighted_f1": 0.7279, "best_epoch": 3, "parameters": 1234}
    print_summary(None, {"rgb": dict(row, test_macro_f1=85 / 126), "vec": row})
    lines = capsys.readouterr().out.splitlines()
    head = next(line for line in lines if "weighted F1" in line)
    assert head.index("weighted F1") < head.index("macro F1") < head.index("best epoch")
    rgb = next(line for line in lines if line.startswith("  rgb"))
    vec = next(line for line in lines if line.startswith("  vec"))
    assert rgb.split() == ["rgb", "0.7500", "0.7279", "0.6746", "3", "1,234"]
    assert vec.split() == ["vec", "0.7500", "0.7279", "-", "3", "1,234"]
    assert len(rgb) == len(vec) == len(head)  # the columns line up


def test_run_record_keeps_macro_f1_or_none(tmp_path, monkeypatch):
    from discomkd_keras.comparison import run_record
    from helpers import fake_finished_run

    run = fake_finished_run(tmp_path, monkeypatch)
    base = {"test_weighted_f1": 0.8, "test_accuracy": 0.81, "parameters": 5, "best_epoch": 2,
            "valid_weighted_f1": 0.7}
    record = run_record(run, tmp_path, "unimodal", 0,
                        {"a": dict(base, test_macro_f1=0.6), "b": base})
    assert record["results"]["a"]["test_macro_f1"] == 0.6
    assert record["results"]["b"]["test_macro_f1"] is None
    assert record["results"]["b"] == dict(base, test_macro_f1=None, macs=42)


def fake_run(method, seed, f1, macro):
    return {"method": method, "seed": seed, "run_dir": f"runs/{method}/{seed}", "epochs": 4,
            "seconds_per_epoch": 10.0, "samples_per_s": 100.0, "train_seconds": 40.0,
            "results": {n: {"test_weighted_f1": f, "test_accuracy": f + 0.01, "test_macro_f1": mf,
                            "parameters": 100, "best_epoch": 3, "macs": 1000,
                            "valid_weighted_f1": f}
                        for n, f, mf in zip(("a", "b"), f1, macro)}}


def fake_raw():
    runs = [fake_run("unimodal", 0, [0.60, 0.90], [0.40, 0.85]),
            fake_run("unimodal", 1, [0.70, 0.80], [0.50, 0.75]),
            fake_run("discomkd", 0, [0.66, 0.90], [0.56, 0.88]),
            fake_run("discomkd", 1, [0.72, 0.78], [0.62, 0.74])]
    return {"dataset": "fake-set", "date": "2026-11-26", "command": "discomkd-keras compare",
            "data": {"source": "x"}, "options": {"feature_dim": 8, "epochs": 4, "batch_size": 16,
                                                 "learning_rate": 0.001},
            "seeds": [0, 1], "machine": {"cpus": 2, "platform": "test", "keras": "3",
                                         "backend": "tf"},
            "runs": runs, "targets": False}


def without_macro(raw):
    raw = json.loads(json.dumps(raw))
    for run in raw["runs"]:
        for r in run["results"].values():
            del r["test_macro_f1"]
    return raw


def table_row(md, label):
    return next(line for line in md.splitlines() if line.startswith(f"| {label} | "))


def test_summary_and_report_show_macro_f1(tmp_path):
    raw = fake_raw()
    s = summarise(raw)
    uni, dis = s["methods"]["unimodal"], s["methods"]["discomkd"]
    # a: 40, 50 -> 45 +- 7.07 (ddof 1); b: 85, 75 -> 80 +- 7.07; discomkd a: 56, 62 -> 59 +- 4.24
    assert uni["macro_f1"]["a"] == pytest.approx((45.0, 7.0710678), rel=1e-6)
    assert uni["macro_f1"]["b"] == pytest.approx((80.0, 7.0710678), rel=1e-6)
    assert dis["macro_f1"]["a"] == pytest.approx((59.0, 4.2426407), rel=1e-6)
    assert uni["f1"]["a"] == pytest.approx((65.0, 7.0710678), rel=1e-6)  # weighted unchanged
    md = format_markdown(raw, s, "fake-set.png")
    head = next(line for line in md.splitlines() if line.startswith("| method | a F1"))
    assert head.endswith("| deployed MACs | test macro F1 |")
    assert table_row(md, "unimodal") == ("| unimodal | 65.0 ± 7.1 | 66.0 ± 7.1 | 85.0 ± 7.1 | "
                                         "86.0 ± 7.1 | 10.0 | 100 | 100 / 100 | 0.00 M / 0.00 M "
                                         "| 45.0 ± 7.1 / 80.0 ± 7.1 |")
    assert table_row(md, "discomkd").endswith("| 59.0 ± 4.2 / 81.0 ± 9.9 |")
    _, md_path, _ = write_report(raw, tmp_path, "report")
    assert md_path.read_text() == md.replace("fake-set.png", "report.png").replace(
        "`fake-set.json`", "`report.json`")


def test_report_from_records_without_macro_f1_shows_a_dash(tmp_path):
    raw = without_macro(fake_raw())
    s = summarise(raw)
    assert s["methods"]["unimodal"]["macro_f1"] == {"a": None, "b": None}
    assert s["methods"]["unimodal"]["f1"]["a"] == pytest.approx((65.0, 7.0710678), rel=1e-6)
    json_path, md_path, png_path = write_report(raw, tmp_path, "old")
    md = md_path.read_text()
    assert table_row(md, "unimodal").endswith("| 0.00 M / 0.00 M | - / - |")
    assert table_row(md, "discomkd").endswith("| - / - |")
    assert json.loads(json_path.read_text()) == raw and png_path.exists()
    # one run of a method lacking it: no mean over fewer seeds, a dash
    mixed = fake_raw()
    del mixed["runs"][1]["results"]["a"]["test_macro_f1"]
    s = summarise(mixed)
    assert s["methods"]["unimodal"]["macro_f1"]["a"] is None
    assert s["methods"]["unimodal"]["macro_f1"]["b"] == pytest.approx((80.0, 7.0710678), rel=1e-6)
    assert table_row(format_markdown(mixed, s, "x.png"), "unimodal").endswith(
        "| - / 80.0 ± 7.1 |")


def test_teacher_line_shows_macro_f1_or_a_dash():
    raw = fake_raw()
    teacher = {"method": "teacher", "seed": 0, "run_dir": "runs/teacher/0", "epochs": 4,
               "seconds_per_epoch": 5.0, "samples_per_s": 100.0, "train_seconds": 20.0,
               "results": {"teacher": {"test_weighted_f1": 0.95, "test_accuracy": 0.96,
                                       "test_macro_f1": 0.9, "parameters": 300, "best_epoch": 3}}}
    raw["runs"].append(teacher)
    md = format_markdown(raw, summarise(raw), "x.png")
    assert "F1 95.0 ± 0.0, accuracy 96.0 ± 0.0, macro F1 90.0 ± 0.0," in md
    del teacher["results"]["teacher"]["test_macro_f1"]
    md = format_markdown(raw, summarise(raw), "x.png")
    assert "F1 95.0 ± 0.0, accuracy 96.0 ± 0.0, macro F1 -," in md
