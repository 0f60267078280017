"""The configuration of a run: defaults, presets, data specs, encoder choice and
validation, resolved into the one JSON-able dict saved as RUN_DIR/config.json.

The CLI and the benchmarks build their runs here, so every default and preset
is written once.
"""

import json
import platform
from pathlib import Path

from discomkd_keras.choices import (DISCOMKD_BRANCH_FORMS, LOSS_TERMS, PRECISIONS,
                                    PRESET_CHOICES, SCHEDULES, SOURCES, STRATEGIES,
                                    TASK_LOSS_ONLY)
from discomkd_keras.data import DataError
from discomkd_keras.methods import (METHOD_NAMES as METHODS, OWN_ARCHITECTURE_METHODS,  # noqa: F401
                                    STUDENT_METHODS, branch_of, method_of)  # noqa: F401


class ConfigError(ValueError):
    """A training option or combination of options that cannot work; the message names it.
    The CLI prints it as one line (exit 2), like DataError and RunError."""

# The training settings a preset fixes; every one is also an option that overrides it.
PRESET_KEYS = ("epochs", "batch_size", "learning_rate", "feature_dim", "schedule",
               "warmup_epochs", "weight_decay", "patience")
# The paper's protocol (docs/method.md): ResNet-18 from scratch, D = 512, Adam 1e-4, constant,
# batch 128 per modality, 300 epochs, no early stopping. encoder None: each modality's
# kind picks (resnet18 for images, mlp for vectors); augment None: the released flips and
# rotations for images.
PAPER = {"encoder": None, "feature_dim": 512, "epochs": 300, "learning_rate": 1e-4,
         "batch_size": 128, "schedule": "constant", "warmup_epochs": 0.0, "weight_decay": 0.0,
         "patience": 0, "augment": None}
# A small classifier for a device, trained in minutes on a CPU: each modality's encoder from
# its kind and size (EDGE_ENCODERS), D = 128, batch 64, the epochs a ceiling with early
# stopping, no augmentation (flips and rotations change digits, text and gravity-aligned
# scenes). Learning rate, schedule and weight decay chosen on the validation split of three
# data sets (benchmarks/results/presets.md, benchmarks/presets.py): Adam 3e-3, constant, no
# weight decay scored 88.6 against 87.9 for cosine or AdamW 1e-2 and 81.3 at 1e-3.
EDGE = {"encoder": "edge", "feature_dim": 128, "epochs": 30, "learning_rate": 3e-3,
        "batch_size": 64, "schedule": "constant", "warmup_epochs": 0.0, "weight_decay": 0.0,
        "patience": 5, "augment": "none"}
# The edge preset's encoder per modality kind: images and spectrograms whose smaller side
# is at least EDGE_MIN_SIDE pixels get the depthwise-separable CNN (0.69 M deployed
# parameters at D = 128), smaller ones the paper's LeNet, vectors the MLP.
EDGE_MIN_SIDE = 32
EDGE_ENCODERS = {"large": "dscnn", "small": "lenet", "vector": "mlp"}
# Built-in data sets keep presets of their own, sized so that the quick start and the
# committed comparisons run on a laptop CPU in minutes.
_BUILT_IN = {"schedule": "constant", "warmup_epochs": 0.0, "weight_decay": 0.0, "patience": 0,
             "augment": None}
PRESETS = {
    "edge": EDGE,
    "paper": PAPER,
    "synthetic-rgbd": dict(_BUILT_IN, encoder="dscnn", feature_dim=128, epochs=10,
                           learning_rate=3e-3, batch_size=32),
    "av-mnist": dict(_BUILT_IN, encoder="lenet", feature_dim=128, epochs=6, learning_rate=1e-3,
                     batch_size=64),
}
# What --preset a user can name (choices.PRESET_CHOICES); with none, the data source picks.
# Own files get the edge preset; the released layout the paper's protocol, so that results
# against the authors' script keep their meaning.
DEFAULT_PRESET = {"files": "edge", "arrays": "edge", "released": "paper",
                  "synthetic-rgbd": "synthetic-rgbd", "av-mnist": "av-mnist"}
# A deployed classifier above this many parameters is more than a Pi-class branch.
PI_CLASS_PARAMETERS = 5_000_000

# The comparisons of benchmarks/compare_methods.py: a data spec and the options every
# method shares. Paired data (the teacher needs every sample in every modality),
# the data fixed across seeds; sized for a 2-core CPU.
BENCHMARKS = {
    # The literature's hard AV-MNIST (CentralNet / MultiBench): images keep 25% of their
    # PCA energy, clips are mixed with babble at -2 dB (calibrated on the validation split
    # of the twins: image 0.68, audio 0.63 weighted F1 after 6 epochs). No image
    # augmentation: flipped or rotated digits change class (6 / 9).
    "av-mnist-hard": {
        "data": {"source": "av-mnist", "fsdd_dir": None, "mnist_path": None, "split": "official",
                 "pairing": "paired", "seed": 0, "image_energy": 0.25, "audio_snr_db": -2.0,
                 "audio_noise": "babble"},
        "options": {"encoders": "lenet", "feature_dim": 128, "epochs": 6, "batch_size": 64,
                    "learning_rate": 1e-3, "augment": "none"},
    },
    # The built-in set with the default run's preset.
    "synthetic-rgbd": {
        "data": {"source": "synthetic-rgbd", "n_per_class": 500, "size": 48, "seed": 0},
        "options": {"encoders": "dscnn", "feature_dim": 128, "epochs": 10, "batch_size": 32,
                    "learning_rate": 3e-3, "augment": None},
    },
    "av-mnist": {
        "data": {"source": "av-mnist", "fsdd_dir": None, "mnist_path": None, "split": "official",
                 "pairing": "paired", "seed": 0},
        "options": {"encoders": "lenet", "feature_dim": 128, "epochs": 6, "batch_size": 64,
                    "learning_rate": 1e-3, "augment": None},
    },
}

TRAIN_DEFAULTS = {
    "method": "discomkd",
    "teacher_run": None,
    # The preset the other values came from (config.json records the name; None: the data
    # source's, DEFAULT_PRESET).
    "preset": None,
    "epochs": PAPER["epochs"],
    "batch_size": PAPER["batch_size"],
    "learning_rate": PAPER["learning_rate"],
    "schedule": "constant",  # or "cosine" (learning_rate.py), after warmup_epochs of linear ramp
    "warmup_epochs": 0.0,
    "weight_decay": 0.0,  # > 0: AdamW's decoupled weight decay, on every weight
    # Stop when no modality's validation weighted F1 has improved for this many epochs (0: off).
    "patience": 0,
    # None, or "balanced": each modality's training loss weighs a sample of class c by
    # n / (K * n_c) (Keras' class_weight meaning; L_cl and L_aux, the class-dependent terms).
    "class_weight": None,
    "feature_dim": PAPER["feature_dim"],
    "encoders": {},
    # {modality: "imagenet" or the path of a backbone's .weights.h5}, loaded when the
    # model is built (a fresh run), into a keras.applications family's backbones.
    "pretrained": {},
    "loss_weights": {t: 1.0 for t in LOSS_TERMS},
    "perp_mode": "abs",
    "modality_targets": "labels",
    "conventions": "torch",
    "branch": "separate",
    "grl_schedule": "constant",
    "grl_lambda": 1.0,
    "dkd_warmup_epochs": 20,  # DKD's paper; a fraction of an epoch is fine
    "augment": {},
    "seed": 0,
    "strategy": "auto",
    "precision": "float32",
    "tensorboard": False,
    # Threads preparing batches ahead (Keras' enqueuer). With 1, TensorFlow pulls batches
    # through tf.data's generator bridge, measured 0.25 s a step slower (benchmarks/speed.py).
    "workers": 2,
    # A crash loses at most one epoch or this many seconds of training, whichever is more.
    "checkpoint_seconds": 120,
}


def describe_presets():
    """One line per preset, for --help and the README."""
    def encoder(p):
        if p["encoder"] == "edge":
            return (f"{EDGE_ENCODERS['large']} (images >= {EDGE_MIN_SIDE} px) / "
                    f"{EDGE_ENCODERS['small']} / {EDGE_ENCODERS['vector']}")
        return p["encoder"] or "resnet18/mlp"

    def line(name, p):
        extra = "".join([f", {p['schedule']}" if p["schedule"] != "constant" else "",
                         f", warm-up {p['warmup_epochs']:g}" if p["warmup_epochs"] else "",
                         f", weight decay {p['weight_decay']:g}" if p["weight_decay"] else "",
                         f", early stop after {p['patience']}" if p["patience"] else "",
                         ", no augmentation" if p["augment"] == "none" else ""])
        return (f"{name}: {encoder(p)}, D={p['feature_dim']}, {p['epochs']} epochs"
                f"{' at most' if p['patience'] else ''}, lr {p['learning_rate']:g}{extra}, "
                f"batch {p['batch_size']}")
    return "; ".join(line(name, p) for name, p in PRESETS.items())


def preset_name(options, source):
    """The preset a run takes: options["preset"] if named, else the data source's."""
    name = options.get("preset") or DEFAULT_PRESET[source]
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {name!r}; expected one of {', '.join(PRESET_CHOICES)}.")
    return name


def data_spec(source=None, data_dir=None, modalities=None, split_seed=None, synthetic_size=48,
              synthetic_per_class=500, fsdd_dir=None, mnist_path=None, av_split="official",
              test_speaker="theo", pairing="unpaired", seed=0, synthetic_knobs=None,
              image_energy=None, audio_snr_db=None, audio_noise="babble", files=None):
    """The JSON-able spec `load_data` reads, from the CLI's data options.

    source: one of SOURCES; with `data_dir` and no source, the layout found
    there (released, or files: modality trees or a manifest), else the built-in
    synthetic RGB-D set.
    synthetic_knobs: {name: number or [low, high]} scene-knob overrides.
    image_energy, audio_snr_db, audio_noise: AV-MNIST degradations (None: clean).
    files: file layouts' options (file_layouts.load_files: image_size,
    crop_to_aspect, depth_units, clip_seconds, skip_bad_files).
    """
    if source is None and data_dir is not None:
        from discomkd_keras.data.file_layouts import file_layout
        source = "released" if file_layout(data_dir) == "released" else "files"
    source = source or "synthetic-rgbd"
    if source not in SOURCES:
        raise DataError(f"Unknown data source {source!r}; expected one of {SOURCES}.")
    if source in ("released", "files"):
        if data_dir is None:
            raise DataError(f"--data {source} needs --data-dir DIR.")
        spec = {"source": source, "directory": str(Path(data_dir).resolve()),
                "split_seed": split_seed}
        if source == "files":
            spec.update(files or {})
    elif source == "synthetic-rgbd":
        spec = {"source": source, "n_per_class": synthetic_per_class, "size": synthetic_size,
                "seed": 0}
        if synthetic_knobs:
            spec["knobs"] = dict(synthetic_knobs)
    else:
        spec = {"source": source,
                "fsdd_dir": str(Path(fsdd_dir).resolve()) if fsdd_dir else None,
                "mnist_path": str(Path(mnist_path).resolve()) if mnist_path else None,
                "split": av_split, "pairing": pairing, "seed": seed}
        if av_split == "speaker":
            spec["test_speaker"] = test_speaker
        if image_energy is not None:
            spec["image_energy"] = image_energy
        if audio_snr_db is not None:
            spec.update(audio_snr_db=audio_snr_db, audio_noise=audio_noise)
    if modalities:
        spec["modalities"] = list(modalities)
    return spec


def edge_encoder(kind, shape):
    """The edge preset's encoder family for a modality of `kind` and input `shape`."""
    if kind == "vector" or len(shape) == 1:
        return EDGE_ENCODERS["vector"]
    return EDGE_ENCODERS["large" if min(shape[:2]) >= EDGE_MIN_SIDE else "small"]


def choose_encoders(data, encoder_items, preset="paper"):
    """{modality: family}: the preset's family for each modality, then repeated
    `[MOD=]FAMILY` items over it (a bare FAMILY applies to every non-vector modality).
    The paper's preset names none: the model's default (resnet18 / mlp) applies."""
    family = PRESETS[preset]["encoder"]
    if family == "edge":
        families = {m: edge_encoder(data.kinds[m], data.input_shape(m)) for m in data.modalities}
    elif family:
        families = {m: family for m in data.modalities if data.kinds[m] != "vector"}
    else:
        families = {}
    for item in encoder_items:
        if "=" in item:
            name, family = (part.strip() for part in item.split("=", 1))
            families[name] = family
        else:
            families.update({m: item.strip() for m in data.modalities if data.kinds[m] != "vector"})
    return families


def choose_augment(data, augment, preset):
    """{modality: policy}: `augment`'s, and for the others the preset's (None: the batches'
    own default, the released flips and rotations for images)."""
    default = PRESETS[preset]["augment"]
    out = {m: default for m in data.modalities if default is not None}
    out.update(augment or {})
    return out


def with_preset(options, source):
    """`options` with every value left as None taken from the preset (options["preset"],
    else the data source's; an explicit value, 0 included, is kept and validated later),
    and options["preset"] set to the preset's name."""
    name = preset_name(options, source)
    preset = PRESETS[name]
    out = dict(options, preset=name)
    for key in PRESET_KEYS:
        if out.get(key) is None:
            out[key] = preset[key]
    return out


def preset_choices(options, data, encoder_items=()):
    """`options` (after with_preset) with the encoders and augmentation their preset
    chooses for `data`'s modalities, where the user named none."""
    return dict(options, encoders=choose_encoders(data, encoder_items, options["preset"]),
                augment=choose_augment(data, options.get("augment"), options["preset"]))


def versions():
    import keras
    import numpy as np

    from discomkd_keras import __version__

    found = {"discomkd_keras": __version__, "keras": keras.__version__,
             "numpy": np.__version__, "python": platform.python_version(),
             "backend": keras.backend.backend()}
    try:
        import tensorflow as tf
        found["tensorflow"] = tf.__version__
    except ImportError:
        found["tensorflow"] = None
    if keras.backend.backend() == "jax":
        import jax
        found["jax"] = jax.__version__
    return found


def _check_values(config):
    if config["branch"] not in DISCOMKD_BRANCH_FORMS:
        raise ConfigError(f"Unknown branch form {config['branch']!r}; expected one of "
                          f"{DISCOMKD_BRANCH_FORMS}.")
    if config["strategy"] not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {config['strategy']!r}; expected one of {STRATEGIES}.")
    if config["strategy"] == "multiworker":
        import keras
        if keras.backend.backend() not in ("tensorflow", "jax"):
            raise ConfigError(f"--strategy multiworker is TensorFlow's (TF_CONFIG) or JAX's; on "
                              f"the {keras.backend.backend()} backend use auto or mirrored.")
    if config["tensorboard"]:
        import importlib.util

        import keras
        # TensorFlow's summary writer needs the tensorboard package, which TensorFlow 2.21
        # no longer installs.
        if keras.backend.backend() == "tensorflow" and importlib.util.find_spec("tensorboard") is None:
            raise ConfigError("--tensorboard needs the tensorboard package: pip install "
                              'tensorboard (or pip install -e ".[tensorflow]").')
    if config["precision"] not in PRECISIONS:
        raise ConfigError(f"Unknown precision {config['precision']!r}; expected one of {PRECISIONS}.")
    for key in ("epochs", "batch_size", "workers"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key.replace('_', ' ')} must be an integer >= 1; got {value!r}.")
    if not float(config["dkd_warmup_epochs"]) >= 0:
        raise ConfigError(f"DKD warm-up must be >= 0 epochs; got {config['dkd_warmup_epochs']!r}.")
    if not float(config["checkpoint_seconds"]) >= 0:
        raise ConfigError(f"checkpoint interval must be >= 0 seconds; got {config['checkpoint_seconds']!r}.")
    if not float(config["learning_rate"]) > 0:
        raise ConfigError(f"learning rate must be > 0; got {config['learning_rate']!r}.")
    if config["schedule"] not in SCHEDULES:
        raise ConfigError(f"Unknown schedule {config['schedule']!r}; expected one of {SCHEDULES}.")
    if not 0 <= float(config["warmup_epochs"]) <= config["epochs"]:
        raise ConfigError(f"warm-up must be between 0 and the {config['epochs']} epochs; got "
                          f"{config['warmup_epochs']!r}.")
    if not 0 <= float(config["weight_decay"]) < 1:
        raise ConfigError(f"weight decay must be in [0, 1); got {config['weight_decay']!r}.")
    patience = config["patience"]
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise ConfigError(f"patience must be an integer >= 0 (0: no early stopping); got {patience!r}.")
    if config["class_weight"] not in (None, "balanced"):
        raise ConfigError(f"Unknown class weight {config['class_weight']!r}; expected 'balanced'.")
    if config["preset"] is not None and config["preset"] not in PRESETS:
        raise ConfigError(f"Unknown preset {config['preset']!r}; expected one of "
                          f"{', '.join(PRESET_CHOICES)}.")


def merged_options(options):
    """TRAIN_DEFAULTS overlaid with `options`, checked (what needs no data: fails fast)."""
    unknown = sorted(set(options) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ConfigError(f"Unknown training options {unknown}.")
    config = json.loads(json.dumps(TRAIN_DEFAULTS))
    for key, value in options.items():
        if isinstance(config[key], dict):
            config[key].update(value or {})
        elif value is not None:
            config[key] = value
    _check_values(config)
    return config


def resolve_config(spec, data, options):
    """The full config of a run: defaults overlaid with `options`, plus what the data fixes.

    Raises ConfigError, DataError or RunError naming the first problem, before
    anything is written: the model's own argument checks run here too.
    """
    from discomkd_keras.data.unpaired_batches import VECTOR_OPS, parse_augment
    from discomkd_keras.models.discomkd import check_model_arguments

    config = merged_options(options)
    for m in list(config["encoders"]) + list(config["augment"]) + list(config["pretrained"]):
        if m not in data.modalities:
            raise DataError(f"Unknown modality {m!r}; the data has: {', '.join(data.modalities)}.")
    for m, policy in config["augment"].items():
        try:
            config["augment"][m] = policy = parse_augment(policy, m)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if data.kinds[m] == "vector" and policy not in ("none",) + VECTOR_OPS:
            raise ConfigError(f"--augment {m}={policy}: {m} is a vector modality; only "
                              f"{', '.join(('none',) + VECTOR_OPS)} apply to it.")
    _resolve_method(config, options, spec, data)
    config.update({
        "data": dict(spec, modalities=data.modalities),
        "dataset": data.name,
        "modalities": data.modalities,
        "input_shapes": {m: list(data.input_shape(m)) for m in data.modalities},
        "kinds": data.kinds,
        "class_names": list(data.class_names),
        "preprocessing": data.preprocessing,
        "data_report": data.report,
        "split_sizes": {m: {s: int(len(i)) for s, i in data.splits[m].items()}
                        for m in data.modalities},
        "versions": versions(),
    })
    try:  # the model constructor's own checks: a bad option, said as one
        _, _, families, _ = check_model_arguments(
            config["input_shapes"], len(config["class_names"]), config["encoders"] or None,
            config["feature_dim"], config["loss_weights"], config["perp_mode"],
            config["modality_targets"], config["conventions"], config["branch"] or "separate")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    _resolve_pretrained(config, families)
    return config


def _resolve_pretrained(config, families):
    """Check each pretrained source against its modality's encoder family and shape, and
    load it once into a scratch encoder: a file that does not fit (or a download that
    fails) stops the run here, before a run directory exists. A file's path made absolute."""
    from discomkd_keras.models.encoders import build_encoder
    from discomkd_keras.models.pretrained import check_pretrained, load_pretrained

    for m, source in config["pretrained"].items():
        if source != "imagenet":
            source = str(Path(source).expanduser().resolve())
        try:
            check_pretrained(families[m], config["input_shapes"][m], source)
            load_pretrained(build_encoder(families[m], config["input_shapes"][m],
                                          config["feature_dim"], f"{m}_pretrained_check"), source)
        except ValueError as err:
            raise ConfigError(f"--pretrained {m}: {err}") from None
        config["pretrained"][m] = source


def _resolve_method(config, options, spec, data):
    """Check the method's needs and fix what it implies (its loss weights, its teacher)."""
    from discomkd_keras.run_directory import RunError, best_path, read_run

    method = config["method"]
    try:
        entry = method_of(method)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if not entry.loss_weights:
        if options.get("loss_weights"):
            raise ConfigError(f"--loss-weight applies to DisCoM-KD only; method {method!r} trains "
                             "with the task loss (and its distillation term).")
        config["loss_weights"] = dict(TASK_LOSS_ONLY)
    if entry.own_architecture:
        if config["branch"] != "separate":
            with_forms = ", ".join(m for m in METHODS if not method_of(m).own_architecture)
            raise ConfigError(f"--branch {config['branch']} applies to {with_forms}; method "
                              f"{method!r} has an architecture of its own.")
        config["branch"] = None  # recorded as not applying
    if entry.paired and not data.paired:
        hint = " (AV-MNIST: --pairing paired)" if data.name.startswith("av-mnist") else ""
        raise DataError(f"Method {method!r} needs paired data, every sample in every modality; "
                        f"{data.name}'s modalities are unpaired{hint}.")
    if not entry.teacher:
        if config["teacher_run"]:
            raise ConfigError(f"--teacher is for the {', '.join(STUDENT_METHODS)} methods, not {method!r}.")
        return
    if not config["teacher_run"]:
        raise ConfigError(f"Method {method!r} needs --teacher RUN_DIR, a run trained with "
                         f"--method {entry.teacher} on the same data.")
    teacher_dir = Path(config["teacher_run"])
    try:
        teacher, _ = read_run(teacher_dir)
    except RunError as err:
        raise RunError(f"--teacher {err}") from None
    if teacher.get("method") != "teacher":
        raise RunError(f"--teacher {teacher_dir} is a {teacher.get('method', 'discomkd')!r} run, "
                       "not a teacher (train one with --method teacher).")
    if teacher["data"] != dict(spec, modalities=data.modalities) \
            or teacher["class_names"] != list(data.class_names):
        raise RunError(f"--teacher {teacher_dir} was trained on other data "
                       f"({teacher['data']}); the students need a teacher of the same data.")
    if not best_path(teacher_dir, "teacher").exists():
        raise RunError(f"--teacher {teacher_dir} has no best/teacher.keras yet.")
    config["teacher_run"] = str(teacher_dir.resolve())
    config["teacher"] = {"encoders": teacher["encoders"], "feature_dim": teacher["feature_dim"],
                         "conventions": teacher.get("conventions", "keras")}
