"""Testing a run's kept classifiers: test metrics (RUN_DIR/results.json, written
at the end of training) and `discomkd-keras evaluate` (confusion matrices, per-class
scores and the embedding map in RUN_DIR/evaluation/)."""

from pathlib import Path

import numpy as np

from discomkd_keras.data import load_data
from discomkd_keras.methods import JOINT_CLASSIFIER
from discomkd_keras.metrics import (accuracy, confusion_matrix, macro_f1, per_class_scores,
                                    weighted_f1)
from discomkd_keras.plots import plot_confusion, plot_embeddings
from discomkd_keras.run_directory import (EVALUATION_DIR, RESULTS, RunError, deployed_names,
                                          load_best, load_checkpoint, read_run, rows_to_csv,
                                          write_atomic, write_json)

PER_CLASS_CSV = "per_class.csv"  # in RUN_DIR/evaluation/
WORST_CLASSES = 3  # classes per modality in the printed "Worst classes (F1)" line


def split_xy(data, name, split):
    """(x, y) of a modality's split; for a joint classifier, all modalities' paired rows."""
    if name == JOINT_CLASSIFIER:
        first = data.modalities[0]
        return {m: data.split(m, split)[0] for m in data.modalities}, data.split(first, split)[1]
    return data.split(name, split)


def predict_scores(classifier, x, batch_size, chunk_bytes=32 * 2**20):
    """Class scores for x: a ModalityClassifier's probabilities, the logits of a
    teacher or of a best file from before ModalityClassifier (their argmax is the
    prediction either way). x: an array, a lazy file-backed one, or a dict of them; about
    `chunk_bytes` of float32 input at a time so that memory does not grow with the
    split; each chunk is padded to whole batches so the compiled predict step sees
    one shape only (no retracing on the last, partial batch)."""
    def rows(a, start, stop):
        a = np.asarray(a[start:stop])
        pad = -len(a) % batch_size
        return np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a

    arrays = list(x.values()) if isinstance(x, dict) else [x]
    n = len(arrays[0])
    row_bytes = sum(4 * int(np.prod(a.shape[1:])) for a in arrays)
    chunk = max(1, chunk_bytes // (row_bytes * batch_size)) * batch_size
    out = []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        part = {m: rows(a, start, stop) for m, a in x.items()} if isinstance(x, dict) \
            else rows(x, start, stop)
        out.append(np.asarray(classifier.predict(part, batch_size=batch_size, verbose=0),
                              dtype=np.float32)[:stop - start])
    return np.concatenate(out) if out else np.zeros((0, classifier.output_shape[-1]), np.float32)


def score_best_classifiers(run_dir, data, config):
    """Test accuracy, weighted F1 and macro F1 (every class present in the test split
    counts the same: see metrics.macro_f1) of every kept best classifier -> results.json.
    valid_weighted_f1 is the figure the classifier was kept for (best/<m>.json)."""
    run_dir = Path(run_dir)
    results = {}
    for m in deployed_names(config):
        clf, best = load_best(run_dir, m)
        x, y = split_xy(data, m, "test")
        pred = predict_scores(clf, x, config["batch_size"]).argmax(1)
        results[m] = {"test_accuracy": accuracy(y, pred),
                      "test_weighted_f1": weighted_f1(y, pred, data.num_classes),
                      "test_macro_f1": macro_f1(y, pred, data.num_classes),
                      "best_epoch": best["epoch"], "valid_weighted_f1": best["f1"],
                      "test_samples": int(len(y)),
                      "parameters": int(clf.count_params()),
                      "confusion_matrix": confusion_matrix(y, pred, data.num_classes).tolist()}
    write_json(run_dir / RESULTS, results)
    return results


def labels_of_confusion(counts):
    """(y_true, y_pred) of the samples a confusion matrix counts[true, predicted] counts."""
    counts = np.asarray(counts, dtype=np.int64)
    k = len(counts)
    cells = counts.ravel()
    return (np.repeat(np.repeat(np.arange(k), k), cells),
            np.repeat(np.tile(np.arange(k), k), cells))


def per_class_from_confusion(counts, class_names=None):
    """Per-class precision, recall, F1 and support (metrics.per_class_scores) and macro F1
    (metrics.macro_f1) of a confusion matrix counts[true, predicted], as JSON lists, index =
    class; class_names default to "0", "1", ..."""
    y_true, y_pred = labels_of_confusion(counts)
    k = len(counts)
    scores = per_class_scores(y_true, y_pred, k)
    names = [str(c) for c in (class_names if class_names is not None else range(k))]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for a {k} x {k} confusion matrix.")
    return {"class_names": names,
            "precision": [float(v) for v in scores["precision"]],
            "recall": [float(v) for v in scores["recall"]],
            "f1": [float(v) for v in scores["f1"]],
            "support": [int(v) for v in scores["support"]],
            "macro_f1": macro_f1(y_true, y_pred, k)}


def per_class_rows(results):
    """per_class.csv's rows: modality, class, precision, recall, f1, support; one per
    classifier x class, for every classifier of `results` with a "per_class" entry."""
    rows = []
    for m, r in results.items():
        p = r.get("per_class") if isinstance(r, dict) else None
        if not p:
            continue
        for i, name in enumerate(p["class_names"]):
            rows.append({"modality": m, "class": name, "precision": p["precision"][i],
                         "recall": p["recall"][i], "f1": p["f1"][i], "support": p["support"][i]})
    return rows


def worst_classes(per_class, k=WORST_CLASSES):
    """The `k` classes with the lowest F1, [(name, f1)]: ties to the lower support, then the
    name. Classes absent from the test split are left out (no sample to fail; macro F1
    leaves them out too)."""
    present = [(f1, support, name) for name, f1, support in
               zip(per_class["class_names"], per_class["f1"], per_class["support"]) if support > 0]
    return [(name, f1) for f1, _, name in sorted(present)[:k]]


def worst_classes_line(results, k=WORST_CLASSES):
    """"Worst classes (F1): audio: 9 0.81, 1 0.90, 6 0.93; image: ..." (classifiers with
    per-class scores, in `results`' order); None where there are none."""
    parts = []
    for m, r in results.items():
        p = r.get("per_class") if isinstance(r, dict) else None
        if p:
            parts.append(f"{m}: " + ", ".join(f"{name} {f1:.2f}"
                                              for name, f1 in worst_classes(p, k)))
    return "Worst classes (F1): " + "; ".join(parts) if parts else None


def evaluate_run(run_dir, max_points=400, log=print, data=None):
    """Test metrics, per-class scores, confusion matrices and the 2-D embedding map of a run.

    Writes evaluation/{results.json, per_class.csv, confusion_<m>.png, embeddings.png}:
    results.json holds RUN_DIR/results.json's figures and, per classifier, "per_class"
    (per_class_from_confusion: class names, precision, recall, F1, support, macro F1);
    per_class.csv the same, one row per classifier x class. The embedding map uses the
    last checkpoint's full model (the best classifiers hold no z_irr); without one this
    version can load, `log` says why there is no map. data: the run's dataset where it
    cannot be read from its spec (a run trained from in-memory arrays: Run.evaluate).
    """
    run_dir = Path(run_dir)
    config, state = read_run(run_dir)
    if not state.get("checkpoint"):
        raise RunError(f"{run_dir} has no finished epoch yet; nothing to evaluate.")
    data = data if data is not None else load_data(config["data"])  # given: in-memory arrays
    out = run_dir / EVALUATION_DIR
    out.mkdir(exist_ok=True)
    results = score_best_classifiers(run_dir, data, config)
    for m in results:  # RUN_DIR/results.json is written: the per-class scores go to evaluation/
        results[m]["per_class"] = per_class_from_confusion(results[m]["confusion_matrix"],
                                                           data.class_names)
    write_atomic(out / PER_CLASS_CSV, rows_to_csv(per_class_rows(results)))
    for m in results:
        plot_confusion(np.array(results[m]["confusion_matrix"]), data.class_names,
                       f"{m}: test confusion (best epoch {results[m]['best_epoch']})",
                       out / f"confusion_{m}.png")
    try:
        model = load_checkpoint(run_dir, config, state)
    except RunError as err:
        log(f"No embedding map: {err}")
        model = None
    # DisCoM-KD branches' z_inv / z_inf / z_irr (the single encoders and the teacher have none).
    if getattr(model, "has_embeddings", False):
        embeddings = {}
        rng = np.random.default_rng(0)
        for m in data.modalities:
            x, y = data.split(m, "test")
            rows = np.sort(rng.permutation(len(y))[:max_points])
            z = model.embedder(m).predict(x[rows], batch_size=config["batch_size"], verbose=0)
            embeddings[m] = ({k: np.asarray(v, np.float32) for k, v in z.items()}, y[rows])
        results["_modality_separation"] = plot_embeddings(
            embeddings, data.class_names, out / "embeddings.png",
            title=f"{config['dataset']}, epoch {state['epoch']}")
    write_json(out / RESULTS, results)
    return results
