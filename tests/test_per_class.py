"""Per-class reports: `discomkd-keras evaluate`'s per-class scores (evaluation/results.json,
evaluation/per_class.csv, the "Worst classes (F1)" line) and the comparison report's
per-class test F1 of the classifier `export_best` chooses (choose_method)."""

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest

from discomkd_keras.comparison import (choose_method, format_markdown, summarise,
                                       write_report)


CLASSES = ["a", "b", "c", "d", "e", "f"]
# counts[true, predicted]; 15 test samples, class e absent from the test split but predicted once.
COUNTS = np.array([
    [4, 0, 0, 0, 0, 0],  # a: 4 true, all right; column a: 4 predicted -> P 1, R 1, F1 1
    [0, 1, 1, 0, 0, 0],  # b: 2 true, 1 right; column b: 2 predicted -> P 1/2, R 1/2, F1 1/2
    [0, 1, 2, 1, 0, 0],  # c: 4 true, 2 right; column c: 4 predicted -> P 1/2, R 1/2, F1 1/2
    [0, 0, 0, 1, 0, 1],  # d: 2 true, 1 right; column d: 2 predicted -> P 1/2, R 1/2, F1 1/2
    [0, 0, 0, 0, 0, 0],  # e: 0 true; column e: 1 predicted -> P 0, R 0, F1 0
    [0, 0, 1, 0, 1, 1],  # f: 3 true, 1 right; column f: 2 predicted -> P 1/2, R 1/3, F1 2/5
])
PRECISION = [1.0, 0.5, 0.5, 0.5, 0.0, 0.5]
RECALL = [1.0, 0.5, 0.5, 0.5, 0.0, 1 / 3]
F1 = [1.0, 0.5, 0.5, 0.5, 0.0, 0.4]
SUPPORT = [4, 2, 4, 2, 0, 3]
MACRO = (1 + 0.5 + 0.5 + 0.5 + 0.4) / 5  # classes present: e does not count
# Worst three: f (0.40); then three at 0.50: b and d (support 2, by name) before c (support 4);
# e (F1 0) is absent from the test split and left out. vec, always right: F1 1 for every
# class present, so the lowest supports: b, d (2), then f (3).
WORST_LINE = "Worst classes (F1): rgb: f 0.40, b 0.50, d 0.50; vec: b 1.00, d 1.00, f 1.00"


def labels(counts):
    k = len(counts)
    y_true = [i for i in range(k) for j in range(k) for _ in range(counts[i, j])]
    y_pred = [j for i in range(k) for j in range(k) for _ in range(counts[i, j])]
    return np.array(y_true), np.array(y_pred)


Y_TRUE, Y_PRED = labels(COUNTS)


class FakeClassifier:
    """One-hot class scores of fixed predictions, whatever the input."""

    def __init__(self, pred):
        self.pred = np.asarray(pred)
        self.output_shape = (None, len(CLASSES))

    def predict(self, x, batch_size, verbose=0):
        return np.eye(len(CLASSES), dtype=np.float32)[self.pred[:len(x)]]

    def count_params(self):
        return 7


@pytest.fixture
def fake_run(tmp_path, monkeypatch):
    """A run directory whose rgb classifier gives COUNTS and whose vec one is always right;
    evaluation's loading is replaced, no checkpoint (no embedding map)."""
    from discomkd_keras import evaluation
    from discomkd_keras.run_directory import RunError

    config = {"modalities": ["rgb", "vec"], "batch_size": 4, "data": {"source": "fake"}}
    preds = {"rgb": Y_PRED, "vec": Y_TRUE}
    data = SimpleNamespace(num_classes=len(CLASSES), class_names=CLASSES, modalities=["rgb", "vec"],
                           split=lambda m, split: (np.zeros((len(Y_TRUE), 3), np.float32), Y_TRUE))

    def no_checkpoint(run_dir, config, state):
        raise RunError("no checkpoint in this test")

    monkeypatch.setattr(evaluation, "read_run",
                        lambda run_dir: (config, {"checkpoint": "x", "epoch": 3}))
    monkeypatch.setattr(evaluation, "load_data", lambda spec: data)
    monkeypatch.setattr(evaluation, "load_best",
                        lambda run_dir, m: (FakeClassifier(preds[m]), {"epoch": 2, "f1": 0.6}))
    monkeypatch.setattr(evaluation, "load_checkpoint", no_checkpoint)
    monkeypatch.setattr(evaluation, "plot_confusion", lambda *args: None)
    return tmp_path


def test_per_class_from_confusion_by_hand():
    from discomkd_keras.evaluation import per_class_from_confusion

    p = per_class_from_confusion(COUNTS, CLASSES)
    assert p["class_names"] == CLASSES
    assert p["precision"] == pytest.approx(PRECISION)
    assert p["recall"] == pytest.approx(RECALL)
    assert p["f1"] == pytest.approx(F1)
    assert p["support"] == SUPPORT and all(type(v) is int for v in p["support"])
    assert p["macro_f1"] == pytest.approx(MACRO)
    assert per_class_from_confusion(COUNTS)["class_names"] == ["0", "1", "2", "3", "4", "5"]
    with pytest.raises(ValueError, match="6 x 6"):
        per_class_from_confusion(COUNTS, CLASSES[:3])


def test_evaluate_writes_per_class_scores_to_results_json_and_csv(fake_run):
    from discomkd_keras.evaluation import evaluate_run

    logs = []
    results = evaluate_run(fake_run, log=logs.append)
    assert logs == ["No embedding map: no checkpoint in this test"]
    ev = json.loads((fake_run / "evaluation" / "results.json").read_text())
    assert ev == results
    rgb = ev["rgb"]
    # every existing key is kept, per_class added
    assert list(rgb) == ["test_accuracy", "test_weighted_f1", "test_macro_f1", "best_epoch",
                         "valid_weighted_f1", "test_samples", "parameters", "confusion_matrix",
                         "per_class"]
    assert rgb["confusion_matrix"] == COUNTS.tolist() and rgb["test_samples"] == 15
    assert rgb["test_accuracy"] == pytest.approx(9 / 15)
    assert rgb["test_macro_f1"] == pytest.approx(MACRO)
    p = rgb["per_class"]
    assert p["class_names"] == CLASSES and p["support"] == SUPPORT
    assert p["precision"] == pytest.approx(PRECISION)
    assert p["recall"] == pytest.approx(RECALL)
    assert p["f1"] == pytest.approx(F1)
    assert p["macro_f1"] == pytest.approx(MACRO)
    vec = ev["vec"]["per_class"]
    assert vec["f1"] == [1.0, 1.0, 1.0, 1.0, 0.0, 1.0] and vec["support"] == SUPPORT
    # RUN_DIR/results.json (training's file) is left as it was: no per-class entry
    assert "per_class" not in json.loads((fake_run / "results.json").read_text())["rgb"]

    with open(fake_run / "evaluation" / "per_class.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["modality", "class", "precision", "recall", "f1", "support"]
    assert [(r["modality"], r["class"]) for r in rows] == \
        [(m, c) for m in ("rgb", "vec") for c in CLASSES]
    for r, precision, recall, f1, support in zip(rows, PRECISION, RECALL, F1, SUPPORT):
        assert float(r["precision"]) == pytest.approx(precision)
        assert float(r["recall"]) == pytest.approx(recall)
        assert float(r["f1"]) == pytest.approx(f1)
        assert int(r["support"]) == support
    assert rows[5]["recall"] == repr(1 / 3)  # full precision, as in results.json
    assert not list((fake_run / "evaluation").glob(".*"))  # no temporary file left


def test_worst_classes_order_with_ties():
    from discomkd_keras.evaluation import worst_classes, worst_classes_line

    p = {"class_names": CLASSES, "f1": F1, "support": SUPPORT}
    assert worst_classes(p) == [("f", 0.4), ("b", 0.5), ("d", 0.5)]
    assert worst_classes(p, 4) == [("f", 0.4), ("b", 0.5), ("d", 0.5), ("c", 0.5)]
    # a tie in F1 and support goes to the name
    same = {"class_names": ["9", "1", "6", "0"], "f1": [0.81, 0.9, 0.9, 0.95],
            "support": [5, 5, 5, 5]}
    assert worst_classes_line({"audio": {"per_class": same}, "_modality_separation": {}}) == \
        "Worst classes (F1): audio: 9 0.81, 1 0.90, 6 0.90"
    assert worst_classes_line({"rgb": {"test_accuracy": 1.0}}) is None  # nothing per class


def test_evaluate_command_prints_the_worst_classes(fake_run):
    from click.testing import CliRunner

    from discomkd_keras.cli import main

    result = CliRunner().invoke(main, ["evaluate", str(fake_run)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert WORST_LINE in lines
    assert lines.index(WORST_LINE) < lines.index(f"Figures in {fake_run / 'evaluation'}")


# --------------------------------------------------------------------------- compare's report
def test_run_record_keeps_per_class_f1_and_class_names(tmp_path, monkeypatch):
    from discomkd_keras.comparison import run_record
    from helpers import fake_finished_run

    run = fake_finished_run(tmp_path, monkeypatch)
    base = {"test_weighted_f1": 0.8, "test_accuracy": 0.81, "parameters": 5, "best_epoch": 2,
            "valid_weighted_f1": 0.7, "test_macro_f1": 0.6}
    results = {"rgb": dict(base, confusion_matrix=COUNTS.tolist()), "vec": base}
    record = run_record(run, tmp_path, "unimodal", 0, results)
    assert record["results"]["rgb"]["test_per_class_f1"] == pytest.approx(F1)
    assert "test_per_class_f1" not in record["results"]["vec"]
    assert record["class_names"] == ["0", "1", "2", "3", "4", "5"]  # no config.json
    (run / "config.json").write_text(json.dumps({"class_names": CLASSES}))
    assert run_record(run, tmp_path, "unimodal", 0, results)["class_names"] == CLASSES
    # a results.json without confusion matrices (older ones): the record as before
    old = run_record(run, tmp_path, "unimodal", 0, {"vec": base})
    assert "class_names" not in old and old["results"]["vec"] == dict(base, macs=42)


def record(method, seed, valid, per_class=None, params=100):
    """A raw run record of modalities a and b: valid = validation F1 per modality,
    per_class = per-class test F1 per modality (None: a record from before it)."""
    results = {}
    for i, n in enumerate(("a", "b")):
        results[n] = {"test_weighted_f1": 0.7, "test_accuracy": 0.71, "test_macro_f1": 0.6,
                      "parameters": params, "best_epoch": 3, "macs": 1000,
                      "valid_weighted_f1": valid[i]}
        if per_class is not None:
            results[n]["test_per_class_f1"] = per_class[i]
    run = {"method": method, "seed": seed, "run_dir": f"runs/seed{seed}/{method}", "epochs": 4,
           "seconds_per_epoch": 10.0, "samples_per_s": 100.0, "train_seconds": 40.0,
           "results": results}
    if per_class is not None:
        run["class_names"] = ["cat", "dog", "eel"]
    return run


def raw_of(runs):
    return {"dataset": "fake-set", "date": "2026-11-26", "command": "discomkd-keras compare",
            "data": {"source": "x"}, "options": {"feature_dim": 8, "epochs": 4, "batch_size": 16,
                                                 "learning_rate": 0.001},
            "seeds": [0, 1], "machine": {"cpus": 2, "platform": "test", "keras": "3",
                                         "backend": "tf"},
            "runs": runs, "targets": False}


def per_class_raw():
    # a: unimodal's mean validation F1 0.75 beats discomkd's 0.73; its seed 1 (0.80) is chosen.
    # b: discomkd's 0.65 beats unimodal's 0.61; its seed 0 (0.66) is chosen.
    return raw_of([
        record("unimodal", 0, [0.70, 0.60], [[0.9, 0.5, 0.6], [0.1, 0.2, 0.3]]),
        record("unimodal", 1, [0.80, 0.62], [[0.8, 0.4, 0.7], [0.1, 0.2, 0.3]]),
        record("discomkd", 0, [0.72, 0.66], [[0.99, 0.99, 0.99], [1.0, 0.75, 0.5]]),
        record("discomkd", 1, [0.74, 0.64], [[0.99, 0.99, 0.99], [0.2, 0.2, 0.2]]),
    ])


SECTION = "## Per-class test F1 of the chosen classifier"


def section_of(md):
    return md.split(SECTION)[1].split("\n## ")[0].split("\n\n")[2].splitlines()


def test_report_shows_the_chosen_classifiers_per_class_f1(tmp_path):
    raw = per_class_raw()
    s = summarise(raw)
    assert choose_method(s, "a")["method"] == "unimodal"
    assert choose_method(s, "b")["method"] == "discomkd"
    chosen = s["per_class_f1"]
    assert (chosen["a"]["method"], chosen["a"]["seed"]) == ("unimodal", 1)
    assert (chosen["b"]["method"], chosen["b"]["seed"]) == ("discomkd", 0)
    assert chosen["a"]["f1"] == pytest.approx([80.0, 40.0, 70.0])
    assert chosen["b"]["f1"] == pytest.approx([100.0, 75.0, 50.0])
    assert chosen["a"]["class_names"] == ["cat", "dog", "eel"]
    md = format_markdown(raw, s, "x.png")
    assert section_of(md) == ["| class | a: unimodal, seed 1 | b: discomkd, seed 0 |",
                              "|---|---|---|",
                              "| cat | 80.0 | 100.0 |",
                              "| dog | 40.0 | 75.0 |",
                              "| eel | 70.0 | 50.0 |"]
    # the report is rebuilt from the raw JSON alone
    json_path, md_path, _ = write_report(raw, tmp_path, "report")
    again = json.loads(json_path.read_text())
    assert section_of(format_markdown(again, summarise(again), "report.png")) == section_of(md)
    assert SECTION in md_path.read_text()


def test_records_without_per_class_f1_render_without_the_section(tmp_path):
    raw = raw_of([record("unimodal", 0, [0.7, 0.6]), record("discomkd", 0, [0.8, 0.5])])
    s = summarise(raw)
    assert "per_class_f1" not in s
    _, md_path, _ = write_report(raw, tmp_path, "old")
    md = md_path.read_text()
    assert "Per-class" not in md and "## Cost" in md


def test_choose_method_ties_go_to_the_cheaper():
    # a: both methods' mean validation F1 is 0.75: discomkd has fewer parameters.
    raw = raw_of([record("unimodal", 0, [0.70, 0.60], [[0.5] * 3] * 2),
                  record("unimodal", 1, [0.80, 0.62], [[0.5] * 3] * 2),
                  record("discomkd", 0, [0.76, 0.66], [[0.9, 0.8, 0.7]] * 2, params=50),
                  record("discomkd", 1, [0.74, 0.64], [[0.1] * 3] * 2, params=50)])
    s = summarise(raw)
    chosen = choose_method(s, "a")
    assert chosen == {"method": "discomkd", "ranking": ["discomkd", "unimodal"],
                      "tied": ["unimodal"]}
    assert (s["per_class_f1"]["a"]["method"], s["per_class_f1"]["a"]["seed"]) == ("discomkd", 0)
    assert s["per_class_f1"]["a"]["f1"] == pytest.approx([90.0, 80.0, 70.0])


def test_export_best_and_the_report_choose_the_same_classifier(tmp_path, monkeypatch):
    import discomkd_keras.export as export
    from discomkd_keras.comparison import export_best

    exported = []

    def fake_export(run_dir, m, quantization, out_dir, overwrite, data, log):
        exported.append((run_dir, m))
        return {"verification": {"agreement": 1.0}}

    monkeypatch.setattr(export, "export_modality", fake_export)
    raw = per_class_raw()
    exports = export_best(raw, tmp_path, data=None, log=lambda line: None)
    report = summarise(raw)["per_class_f1"]
    for e in exports:
        chosen = report[e["modality"]]
        assert (e["method"], e["seed"]) == (chosen["method"], chosen["seed"])
    assert [(e["modality"], e["method"], e["seed"]) for e in exports] == \
        [("a", "unimodal", 1), ("b", "discomkd", 0)]
    assert exported == [(tmp_path / "runs/seed1/unimodal", "a"),
                        (tmp_path / "runs/seed0/discomkd", "b")]
    assert "(next: discomkd, 73.0)" in exports[0]["why"]
