"""DisCoM-KD in Keras 3: one multi-branch model learns every single-modality
classifier at once (Ienco & Fraga Dantas, BMVC 2024, arXiv 2408.07080)."""

import os

# Keep TensorFlow's C++ start-up chatter out of users' terminals (set before keras imports it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from discomkd_keras.encoders import ENCODER_FAMILIES, build_encoder  # noqa: E402
from discomkd_keras.gradient_reversal import GRLScheduler, GradientReversal, dann_lambda  # noqa: E402
from discomkd_keras.losses import LOSS_TERMS, loss_terms  # noqa: E402
from discomkd_keras.model import DisCoMKD, FeatureSplit  # noqa: E402
from discomkd_keras.students import DistilledStudents  # noqa: E402
from discomkd_keras.teacher import MultimodalTeacher  # noqa: E402
