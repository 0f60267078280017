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
# released script's) or Keras' own (encoders.Conventions). config.json and .keras files
# keep these internal names; the command line and the Python API name them by their
# most visible effect, the weight initialiser (LAYER_DEFAULTS).
CONVENTIONS = ("torch", "keras")
LAYER_DEFAULTS = {"kaiming": "torch", "glorot": "keras"}

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
QUANTIZATIONS = ("int8", "float16", "dynamic", "float32")  # the converter's modes
IO_TYPES = ("float32", "int8", "uint8")
# The one vocabulary of `export --quantize` and `bench-export --quantize`: a converter mode,
# then how it is done (export_modality's keyword arguments).
QUANTIZATION_VARIANTS = {
    # full-integer; the input layers stay float only where the full-integer model disagrees
    # with Keras on the validation split (export/float_input_layers.py)
    "int8": {"quantization": "int8"},
    "int8-integer-only": {"quantization": "int8", "float_input_layers": False},
    "int8-float-input": {"quantization": "int8", "float_input_layers": True},
    "int8-per-tensor": {"quantization": "int8", "per_tensor": True},
    "float16": {"quantization": "float16"},
    "dynamic": {"quantization": "dynamic"},
    "dynamic-per-tensor": {"quantization": "dynamic", "per_tensor": True},
    "float32": {"quantization": "float32"},
}

# --- augmentation (data/unpaired_batches.py) -----------------------------------
# Whole policies, never combined with ops: flip-rotate (the released script's: with p 0.5 a
# sample gets random flips and quarter turns), flip-rotate-each (each of them with p 0.5).
AUGMENT_POLICIES = ("flip-rotate", "flip-rotate-each", "none")
# Their names before 0.1 (after their origin), still accepted with a note.
RENAMED_AUGMENTATIONS = {"released": "flip-rotate", "independent": "flip-rotate-each"}
AUGMENT_OPS = ("flip", "rot90", "crop", "contrast", "noise")
AUGMENTATIONS = AUGMENT_POLICIES + AUGMENT_OPS
VECTOR_OPS = ("noise",)  # the ops that mean something without an image grid
