"""The check built into every export: the TFLite model against its Keras twin
on the run's TEST split (accuracy, weighted F1, argmax agreement, largest
probability difference)."""

import numpy as np

# Argmax agreement below which an export is refused, per quantization.
DEFAULT_THRESHOLDS = {"float32": 0.999, "float16": 0.995, "dynamic": 0.98, "int8": 0.98}


def verify(model, x, y, keras_probs, num_classes, threshold):
    from discomkd_keras.export.tflite_runner import TFLiteClassifier
    from discomkd_keras.metrics import accuracy, weighted_f1

    tflite_probs = TFLiteClassifier(model).predict(x)
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


def check_export(model_dir):
    """Re-run the verification of an existing export folder; return (card, report)."""
    import json
    from pathlib import Path

    from discomkd_keras.data import load_data
    from discomkd_keras.export.tflite_export import (ExportError, keras_probabilities,
                                                     load_best_classifier, probability_model)

    model_dir = Path(model_dir)
    card_path = model_dir / "model_card.json"
    if not card_path.is_file():
        raise ExportError(f"{model_dir} is not an export folder (no model_card.json).")
    try:
        card = json.loads(card_path.read_text())
        model_path = model_dir / card["model_file"]
        run_dir = Path(card["source"]["run_dir"])
        modality = card["modality"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ExportError(f"{card_path} is not a valid model card ({err}).") from None
    if not model_path.is_file():
        raise ExportError(f"Missing model file {model_path}.")
    classifier, _ = load_best_classifier(run_dir, modality)
    data = load_data(card["source"]["data"])
    x, y = data.split(modality, "test")
    keras_probs = keras_probabilities(probability_model(classifier, modality), x)
    try:
        report = verify(model_path.read_bytes(), x, y, keras_probs, data.num_classes,
                        card["verification"]["threshold"])
    except ValueError as err:
        raise ExportError(f"{model_path} is not a valid TFLite model: {err}") from None
    return card, report
