"""DisCoM-KD in Keras 3: one multi-branch model learns every single-modality
classifier at once (Ienco & Fraga Dantas, BMVC 2024, arXiv 2408.07080).

The public names below are imported on first use, so that `import
discomkd_keras` (and the command line's --help) does not start Keras and its
backend; `from discomkd_keras import DisCoMKD` works as usual.

    import discomkd_keras
    run = discomkd_keras.train({"rgb": (x_rgb, y_rgb), "depth": (x_depth, y_depth)}, epochs=20)
    run.valid_f1, run.predict("depth", x_new), run.export()
"""

import importlib
import os

# Keep TensorFlow's C++ start-up chatter out of users' terminals (set before keras imports it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

_PUBLIC = {
    # The API a notebook uses (README, "Python API"): the commands' code, not a copy.
    "train": "api", "compare": "api", "Run": "run", "Comparison": "comparison_result",
    "DisCoMKD": "model", "FeatureSplit": "feature_split", "check_model_arguments": "model",
    "BranchClassifiers": "branch_classifiers", "ModalityBranch": "modality_branch",
    "ModalityClassifier": "modality_classifier", "UnimodalClassifiers": "unimodal",
    "GradientReversal": "gradient_reversal", "GRLScheduler": "gradient_reversal",
    "dann_lambda": "gradient_reversal",
    "LOSS_TERMS": "losses", "loss_terms": "losses",
    "ENCODER_FAMILIES": "encoders", "build_encoder": "encoders",
    "DistilledStudents": "students", "MultimodalTeacher": "teacher",
    "SingleEncoderClassifiers": "single_encoder",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"discomkd_keras.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'discomkd_keras' has no attribute {name!r}")


def register_custom_objects():
    """Import the modules whose layers and models `.keras` files name (safe-mode loading
    finds only registered classes)."""
    # students imports model, teacher, the branches, the classifier and the GRL layer.
    importlib.import_module("discomkd_keras.students")
    importlib.import_module("discomkd_keras.single_encoder")
    importlib.import_module("discomkd_keras.unimodal")
