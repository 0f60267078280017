"""Every closed vocabulary of the package, in one module that imports no backend.

The command line builds its choices and `--help` from here without starting Keras or
TensorFlow (`discomkd-keras --help` in well under a second); the modules that use a
vocabulary import it from here, so a new encoder family, schedule or augmentation is
added in one place. The training methods have a registry of their own (`methods.py`).
"""

# --- data ------------------------------------------------------------------
SOURCES = ("synthetic-rgbd", "released", "files", "av-mnist")

# --- encoders (encoders.py) -------------------------------------------------
# keras.applications backbones offered as encoders (ImageNet weights exist for all).
APPLICATION_FAMILIES = ("mobilenetv3small", "mobilenetv3small-hardswish", "mobilenetv2",
                        "mobilenetv2-0.75", "mobilenetv2-0.5", "mobilenetv2-0.35",
                        "efficientnetv2b0")
IMAGE_FAMILIES = ("resnet18", "lenet", "lenet-wide", "dscnn") + APPLICATION_FAMILIES
VECTOR_FAMILIES = ("mlp",)
ENCODER_FAMILIES = IMAGE_FAMILIES + VECTOR_FAMILIES
# Layer initialisation, BatchNorm epsilon, padding and Adam epsilon: PyTorch's (the
# released script's) or Keras' own. Named after what they imitate; see encoders.Conventions.
CONVENTIONS = ("torch", "keras")

# --- branches (modality_branch.py) ------------------------------------------
# "branch form": how one modality's branch computes z_inv, z_inf and z_irr. "separate"
# (the paper: E_inv and E_spec), "shared" (one backbone, three projections); "single"
# is the single-encoder baseline's (one encoder, no split), never a --branch value.
BRANCH_FORMS = ("separate", "shared", "single")
DISCOMKD_BRANCH_FORMS = ("separate", "shared")
EMBEDDING_KEYS = ("z_inv", "z_inf", "z_irr")

# --- losses (losses.py) ------------------------------------------------------
LOSS_TERMS = ("cl", "adv", "mod", "aux", "perp")
PERP_MODES = ("abs", "cos", "square")
MODALITY_TARGETS = ("labels", "released")
# The loss weights of every method but DisCoM-KD: the task loss alone.
TASK_LOSS_ONLY = {t: (1.0 if t == "cl" else 0.0) for t in LOSS_TERMS}
GRL_SCHEDULES = ("constant", "dann")

# --- optimisation, devices ---------------------------------------------------
SCHEDULES = ("constant", "cosine")
STRATEGIES = ("auto", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
PRESET_CHOICES = ("edge", "paper")

# --- export (export/tflite_export.py) ---------------------------------------------
QUANTIZATIONS = ("int8", "float16", "dynamic", "float32")
IO_TYPES = ("float32", "int8", "uint8")

# --- augmentation (data/unpaired_batches.py) -----------------------------------
AUGMENT_POLICIES = ("released", "independent", "none")  # whole policies: never combined
AUGMENT_OPS = ("flip", "rot90", "crop", "contrast", "noise")
AUGMENTATIONS = AUGMENT_POLICIES + AUGMENT_OPS
VECTOR_OPS = ("noise",)  # the ops that mean something without an image grid
