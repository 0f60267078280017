"""Testing a run's kept classifiers: test metrics (RUN_DIR/results.json, written
at the end of training) and `discomkd-keras evaluate` (confusion matrices and
the embedding map in RUN_DIR/evaluation/)."""

from pathlib import Path

import numpy as np

from discomkd_keras.data import load_data
from discomkd_keras.metrics import accuracy, confusion_matrix, macro_f1, weighted_f1
from discomkd_keras.plots import plot_confusion, plot_embeddings
from discomkd_keras.run_directory import (EVALUATION_DIR, RESULTS, RunError, deployed_names,
                                          load_best, load_checkpoint, read_run, write_json)


def split_xy(data, name, split):
    """(x, y) of a modality's split; for "teacher", all modalities' paired rows."""
    if name == "teacher":
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


def evaluate_run(run_dir, max_points=400, log=print):
    """Test metrics, confusion matrices and the 2-D embedding map of a run.

    Writes evaluation/{results.json, confusion_<m>.png, embeddings.png}.
    The embedding map uses the last checkpoint's full model (the best
    classifiers hold no z_irr); without one this version can load, `log` says
    why there is no map.
    """
    run_dir = Path(run_dir)
    config, state = read_run(run_dir)
    if not state.get("checkpoint"):
        raise RunError(f"{run_dir} has no finished epoch yet; nothing to evaluate.")
    data = load_data(config["data"])
    out = run_dir / EVALUATION_DIR
    out.mkdir(exist_ok=True)
    results = score_best_classifiers(run_dir, data, config)
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
