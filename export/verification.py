"""The check built into every export: the TFLite model against its Keras twin
on the run's TEST split (accuracy, weighted F1, argmax agreement, largest
probability difference), and `export --check`, which repeats it later."""

from pathlib import Path

import numpy as np

# Argmax agreement below which an export is refused, per quantization.
DEFAULT_THRESHOLDS = {"float32": 0.999, "float16": 0.995, "dynamic": 0.98, "int8": 0.98}


def verify(model, x, y, keras_probs, num_classes, threshold):
    """The report of a TFLite model (path or bytes) against the Keras probabilities."""
    from discomkd_keras.edge_demo.runtime import Classifier, ModelFileError
    from discomkd_keras.metrics import accuracy, weighted_f1

    classifier = Classifier(model)
    if classifier.input_shape != tuple(x.shape[1:]) or classifier.num_classes != num_classes:
        # Another modality's (or another run's) file where this one was expected.
        where = "the model bytes" if isinstance(model, (bytes, bytearray)) else str(model)
        raise ModelFileError(
            f"{where} takes {classifier.input_shape} and gives {classifier.num_classes} classes; "
            f"the data it is checked on has {tuple(x.shape[1:])} and {num_classes}: not this "
            "modality's model (export it again).")
    tflite_probs = classifier.predict(x)
    keras_pred, tflite_pred = keras_probs.argmax(1), tflite_probs.argmax(1)
    agreement = float(np.mean(keras_pred == tflite_pred))
    return {
        "split": "test",
        "samples": int(len(y)),
        "keras_accuracy": accuracy(y, keras_pred),
        "keras_weighted_f1": weighted_f1(y, keras_pred, num_classes),
        "tflite_accuracy": accuracy(y, tflite_pred),
        "tflite_weighted_f1": weighted_f1(y, tflite_pred, num_classes),
        "agreement": agreement,
        "max_abs_prob_diff": float(np.abs(keras_probs - tflite_probs).max()) if len(y) else 0.0,
        "threshold": float(threshold),
        "passed": bool(agreement >= threshold),
    }


def format_report(modality, report):
    lines = [f"{modality}: TFLite vs Keras on the {report['split']} split ({report['samples']} samples)",
             f"  {'':<10}{'accuracy':>10}{'weighted F1':>13}",
             f"  {'keras':<10}{report['keras_accuracy']:>10.4f}{report['keras_weighted_f1']:>13.4f}",
             f"  {'tflite':<10}{report['tflite_accuracy']:>10.4f}{report['tflite_weighted_f1']:>13.4f}",
             f"  argmax agreement {report['agreement']:.4f} (threshold {report['threshold']}), "
             f"max |prob diff| {report['max_abs_prob_diff']:.4g}: "
             f"{'PASS' if report['passed'] else 'FAIL'}"]
    return "\n".join(lines)


def check_export(export_dir, run_dir=None):
    """Re-run the verification of an export folder against the run it came from;
    return (card, report).

    The card names its run only by name and checkpoint sha256 (no paths), so the
    run is `run_dir`, by default the folder two levels up (the default export
    location is RUN_DIR/export/<modality>). Its name and the sha256 of its best
    checkpoint must match the card; the test split comes from the run's config."""
    from discomkd_keras import run_directory
    from discomkd_keras.data import load_data
    from discomkd_keras.edge_demo import model_card
    from discomkd_keras.edge_demo.runtime import ModelFileError
    from discomkd_keras.export.tflite_export import (ExportError, keras_probabilities,
                                                     load_best_classifier, probability_model,
                                                     read_run)

    export_dir = Path(export_dir)
    try:
        card, _ = model_card.read_export(export_dir)
    except model_card.ModelCardError as err:
        raise ExportError(str(err)) from None
    model_path = export_dir / card["model_file"]
    if not model_path.is_file():
        raise ExportError(f"Missing model file {model_path}.")
    source, modality = card["source"], card["modality"]
    how = f"pass the run directory: discomkd-keras export RUN_DIR --check {export_dir}"
    if run_dir is None:
        run_dir = export_dir.resolve().parent.parent
        if not run_directory.is_run(run_dir):
            raise ExportError(f"{export_dir} is not in its run's export folder ({run_dir} is not a "
                              f"run directory) and was exported from run {source['run']!r}; {how}.")
    run_dir = Path(run_dir)
    if not run_directory.is_run(run_dir):
        raise ExportError(f"{run_dir} is not a run directory (no {run_directory.CONFIG}); "
                          f"{export_dir} was exported from run {source['run']!r}.")
    if run_dir.resolve().name != source["run"]:
        raise ExportError(f"{export_dir} was exported from run {source['run']!r}, not from "
                          f"{run_dir} ({run_dir.resolve().name!r}); {how}.")
    checkpoint = run_directory.best_path(run_dir, modality)
    if not checkpoint.is_file() or run_directory.file_sha256(checkpoint) != source["checkpoint_sha256"]:
        raise ExportError(f"The run's best classifier changed since this export: {checkpoint} is "
                          f"not the checkpoint (sha256 {source['checkpoint_sha256'][:12]}...) that "
                          f"{export_dir} was exported from; re-export it.")
    config, _ = read_run(run_dir)
    classifier, _ = load_best_classifier(run_dir, modality)
    data = load_data(config["data"])
    x, y = data.split(modality, "test")
    keras_probs = keras_probabilities(probability_model(classifier, modality), x)
    threshold = (card.get("verification") or {}).get(
        "threshold", DEFAULT_THRESHOLDS.get(card.get("quantization"), 0.98))
    try:
        report = verify(model_path, x, y, keras_probs, data.num_classes, threshold)
    except ModelFileError as err:
        raise ExportError(str(err)) from None
    return card, report
