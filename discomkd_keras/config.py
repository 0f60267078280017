"""The configuration of a run: defaults, presets, data specs, encoder choice and
validation, resolved into the one JSON-able dict saved as RUN_DIR/config.json.

The CLI and the benchmarks build their runs here, so every default and preset
is written once.
"""

import json
import platform
from pathlib import Path

from discomkd_keras.data import DataError, SOURCES
from discomkd_keras.losses import LOSS_TERMS, TASK_LOSS_ONLY
from discomkd_keras.modality_branch import DISCOMKD_BRANCHES

METHODS = ("discomkd", "unimodal", "single", "teacher", "kd", "kd-mix", "dkd", "mlkd")
STUDENT_METHODS = ("kd", "kd-mix", "dkd", "mlkd")
PAIRED_METHODS = ("teacher",) + STUDENT_METHODS
# Methods with architectures of their own, which no --branch changes.
OWN_ARCHITECTURE_METHODS = ("single", "teacher")
STRATEGIES = ("auto", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


class ConfigError(ValueError):
    """A training option or combination of options that cannot work; the message names it.
    The CLI prints it as one line (exit 2), like DataError and RunError."""

# The paper's protocol (method.md): ResNet-18 from scratch, D = 512, Adam 1e-4,
# batch 128 per modality, 300 epochs.
PAPER = {"encoder": "resnet18", "feature_dim": 512, "epochs": 300, "learning_rate": 1e-4,
         "batch_size": 128}
# Where a built-in data set departs from it: small encoders and few epochs, so
# that a run finishes on a laptop CPU in minutes. Every value is an option.
PRESETS = {
    "synthetic-rgbd": {"encoder": "dscnn", "feature_dim": 128, "epochs": 10, "learning_rate": 3e-3,
                       "batch_size": 32},
    "av-mnist": {"encoder": "lenet", "feature_dim": 128, "epochs": 6, "learning_rate": 1e-3,
                 "batch_size": 64},
    "released": dict(PAPER, encoder=None),  # None: each modality's kind picks (resnet18 / mlp)
    "files": dict(PAPER, encoder=None),
}

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
    "epochs": PAPER["epochs"],
    "batch_size": PAPER["batch_size"],
    "learning_rate": PAPER["learning_rate"],
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
    """One line per data source: its preset, for --help and the README."""
    return "; ".join(f"{source}: {p['encoder'] or 'resnet18/mlp'}, D={p['feature_dim']}, "
                     f"{p['epochs']} epochs, lr {p['learning_rate']:g}, batch {p['batch_size']}"
                     for source, p in PRESETS.items())


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


def choose_encoders(data, encoder_items, preset_encoder=None):
    """{modality: family} from repeated `[MOD=]FAMILY` items (a bare FAMILY applies to
    every non-vector modality); without items, the preset's family for those modalities."""
    families = {}
    for item in encoder_items:
        if "=" in item:
            name, family = (part.strip() for part in item.split("=", 1))
            families[name] = family
        else:
            families.update({m: item.strip() for m in data.modalities if data.kinds[m] != "vector"})
    if not encoder_items and preset_encoder:
        families = {m: preset_encoder for m in data.modalities if data.kinds[m] != "vector"}
    return families


def with_preset(options, source):
    """`options` with every value left as None taken from the data source's preset
    (an explicit value, 0 included, is kept and validated later)."""
    preset = PRESETS[source]
    out = dict(options)
    for key in ("epochs", "batch_size", "learning_rate", "feature_dim"):
        if out.get(key) is None:
            out[key] = preset[key]
    return out


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


def branch_of(config):
    """The DisCoM-KD branch form of a run's config: "separate" or "shared", None for
    the methods with architectures of their own; config.json files written before
    the option existed mean "separate"."""
    if config.get("method") in OWN_ARCHITECTURE_METHODS:
        return None
    return config.get("branch") or "separate"


def _check_values(config):
    if config["branch"] not in DISCOMKD_BRANCHES:
        raise ConfigError(f"Unknown branch {config['branch']!r}; expected one of "
                          f"{DISCOMKD_BRANCHES}.")
    if config["strategy"] not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {config['strategy']!r}; expected one of {STRATEGIES}.")
    if config["strategy"] == "multiworker":
        import keras
        if keras.backend.backend() not in ("tensorflow", "jax"):
            raise ConfigError(f"--strategy multiworker is TensorFlow's (TF_CONFIG) or JAX's; on "
                              f"the {keras.backend.backend()} backend use auto or mirrored.")
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
    from discomkd_keras.data.unpaired_batches import AUGMENTATIONS
    from discomkd_keras.model import check_model_arguments

    config = merged_options(options)
    for m in list(config["encoders"]) + list(config["augment"]) + list(config["pretrained"]):
        if m not in data.modalities:
            raise DataError(f"Unknown modality {m!r}; the data has: {', '.join(data.modalities)}.")
    for m, policy in config["augment"].items():
        if policy not in AUGMENTATIONS:
            raise ConfigError(f"Unknown augmentation {policy!r} for {m!r}; expected one of "
                              f"{', '.join(AUGMENTATIONS)}.")
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
    from discomkd_keras.encoders import build_encoder, check_pretrained, load_pretrained

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
    if method not in METHODS:
        raise ConfigError(f"Unknown method {method!r}; expected one of {METHODS}.")
    if method != "discomkd":
        if options.get("loss_weights"):
            raise ConfigError(f"--loss-weight applies to DisCoM-KD only; method {method!r} trains "
                             "with the task loss (and its distillation term).")
        config["loss_weights"] = dict(TASK_LOSS_ONLY)
    if method in OWN_ARCHITECTURE_METHODS:
        if config["branch"] != "separate":
            raise ConfigError(f"--branch {config['branch']} applies to discomkd, unimodal and the "
                              f"students; method {method!r} has an architecture of its own.")
        config["branch"] = None  # recorded as not applying
    if method in PAIRED_METHODS and not data.paired:
        hint = " (AV-MNIST: --pairing paired)" if data.name.startswith("av-mnist") else ""
        raise DataError(f"Method {method!r} needs paired data, every sample in every modality; "
                        f"{data.name}'s modalities are unpaired{hint}.")
    if method not in STUDENT_METHODS:
        if config["teacher_run"]:
            raise ConfigError(f"--teacher is for the {', '.join(STUDENT_METHODS)} methods, not {method!r}.")
        return
    if not config["teacher_run"]:
        raise ConfigError(f"Method {method!r} needs --teacher RUN_DIR, a run trained with "
                         "--method teacher on the same data.")
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
