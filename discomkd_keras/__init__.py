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

from discomkd_keras import _moved  # noqa: E402
from discomkd_keras.methods import METHODS  # noqa: E402  (imports no backend)

_moved.install()

_PUBLIC = {
    # The API a notebook uses (README, "Python API"): the commands' code, not a copy.
    "train": "api", "compare": "api", "Run": "run", "Comparison": "comparison_result",
    "METHODS": "methods", "Method": "methods",
    "FeatureSplit": "models.feature_split", "check_model_arguments": "models.discomkd",
    "BranchClassifiers": "models.branch_classifiers", "ModalityBranch": "models.modality_branch",
    "ModalityClassifier": "models.modality_classifier",
    "GradientReversal": "models.gradient_reversal", "GRLScheduler": "models.gradient_reversal",
    "dann_lambda": "models.gradient_reversal",
    "LOSS_TERMS": "models.losses", "loss_terms": "models.losses",
    "ENCODER_FAMILIES": "models.encoders", "build_encoder": "models.encoders",
    # Every method's training model (methods.py): DisCoMKD, UnimodalClassifiers, ...
    **{m.model.split(":")[1]: m.model.split(":")[0].removeprefix("discomkd_keras.")
       for m in METHODS.values()},
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"discomkd_keras.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'discomkd_keras' has no attribute {name!r}")


def register_custom_objects():
    """Import the modules whose layers and models `.keras` files name (safe-mode loading
    finds only registered classes): every method's model, which imports the branches,
    the classifier and the layers."""
    for method in METHODS.values():
        method.model_class  # noqa: B018  (importing registers)
