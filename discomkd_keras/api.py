"""The Python API: `train` and `compare`, the same code the command line calls,
with options named as the command's long options (`--lr` -> `lr=`,
`--encoder` -> `encoder=`, `--run-dir` -> `run_dir=`).

`data` is a folder (any layout `--data-dir` reads), a built-in data set's
name ("synthetic-rgbd", "av-mnist"), or in-memory data: {modality: (x, y)},
{modality: {"train": (x, y), "test": (x, y)[, "valid": (x, y)]}} or
{modality: tf.data.Dataset of (x, y)} (data/in_memory.py).
"""

from pathlib import Path

from discomkd_keras.comparison.result import Comparison
from discomkd_keras.run import Run

# The command's data options (as keyword arguments) and their data_spec names.
DATA_OPTIONS = {"modalities": "modalities", "split_seed": "split_seed",
                "synthetic_size": "synthetic_size", "synthetic_per_class": "synthetic_per_class",
                "fsdd_dir": "fsdd_dir", "mnist": "mnist_path", "av_split": "av_split",
                "test_speaker": "test_speaker", "pairing": "pairing",
                "av_image_energy": "image_energy", "av_audio_snr": "audio_snr_db",
                "av_noise": "audio_noise"}
# Options of the files layouts (data_spec's files={...}).
FILE_OPTIONS = {"image_size": "image_size", "crop_to_aspect": "crop_to_aspect",
                "depth_unit": "depth_units", "clip_seconds": "clip_seconds",
                "skip_bad_files": "skip_bad_files"}
# The command's training options whose config key has another name.
RENAMED = {"lr": "learning_rate", "teacher": "teacher_run", "loss_weight": "loss_weights",
           "dkd_warmup": "dkd_warmup_epochs", "mixed_precision": "precision",
           "checkpoint_every": "checkpoint_seconds"}


def _encoder_items(encoder):
    """`--encoder` items from a family name, a list of `[MOD=]FAMILY` or {modality: family}."""
    if encoder is None:
        return ()
    if isinstance(encoder, str):
        return (encoder,)
    if isinstance(encoder, dict):
        return tuple(f"{m}={family}" for m, family in encoder.items())
    return tuple(encoder)


def _split_options(options):
    """(data keyword arguments, files options, training options) of the API's options."""
    from discomkd_keras.choices import LAYER_DEFAULTS
    from discomkd_keras.config import TRAIN_DEFAULTS, ConfigError

    data, files, training = {}, {}, {}
    for key, value in options.items():
        if key in DATA_OPTIONS:
            data[DATA_OPTIONS[key]] = value
        elif key in FILE_OPTIONS:
            if key == "image_size" and isinstance(value, (tuple, list)):
                value = {"*": list(value)}
            files[FILE_OPTIONS[key]] = value
        elif key == "layer_defaults":  # --layer-defaults kaiming|glorot: conventions torch|keras
            training["conventions"] = LAYER_DEFAULTS.get(value, value)
        elif RENAMED.get(key, key) in TRAIN_DEFAULTS:
            training[RENAMED.get(key, key)] = value
        else:
            known = sorted(set(DATA_OPTIONS) | set(FILE_OPTIONS) | set(RENAMED) | {"layer_defaults"}
                           | {k for k in TRAIN_DEFAULTS if k not in RENAMED.values()})
            raise ConfigError(f"Unknown option {key!r}; the options are the command's long "
                              f"options with underscores: {', '.join(known)}.")
    return data, files, training


def resolve_data(data, options, seed=0):
    """(spec, MultiModalDataset or None to load from the spec, training options) of the
    API's `data` and keyword options."""
    from discomkd_keras.config import data_spec
    from discomkd_keras.data import SOURCES, DataError

    options = dict(options)
    class_names = options.pop("class_names", None)
    data_kwargs, files, training = _split_options(options)
    if class_names is not None and not isinstance(data, dict):
        raise DataError("class_names= is for in-memory arrays; files and built-in data name "
                        "their classes themselves.")
    if isinstance(data, dict):
        from discomkd_keras.data.in_memory import arrays_dataset

        extra = sorted(set(data_kwargs) - {"split_seed", "modalities"}) + sorted(files)
        if extra:
            raise DataError(f"Options {extra} are for files or built-in data, not in-memory arrays.")
        dataset, spec = arrays_dataset(data, class_names, data_kwargs.get("split_seed") or 0)
        if data_kwargs.get("modalities"):
            dataset = dataset.select(list(data_kwargs["modalities"]))
        return spec, dataset, training
    if isinstance(data, (str, Path)) and str(data) in SOURCES and not Path(data).is_dir():
        return data_spec(str(data), seed=seed, **data_kwargs), None, training
    if isinstance(data, (str, Path)):
        if not Path(data).is_dir():
            raise DataError(f"{data} is neither a folder nor a built-in data set "
                            "(synthetic-rgbd, av-mnist).")
        return data_spec(data_dir=Path(data), seed=seed, files=files or None, **data_kwargs), \
            None, training
    raise DataError(f"data must be a folder, a built-in data set's name or a dict of per-modality "
                    f"arrays; got {type(data).__name__}.")


def train(data, *, encoder=None, run_dir=None, overwrite=False, verbose=1, log=print,
          callbacks=(), probe_steps=None, **options):
    """Train every modality's classifier of `data` at once; return the `Run`.

    options: the `train` command's long options with underscores (`epochs=`, `lr=`,
    `preset=`, `patience=`, `augment={"rgb": "flip,crop"}`, `loss_weight={"adv": 0}`,
    `seed=`, ...); data options too (`split_seed=`, `image_size=(64, 64)`, ...), and
    `class_names=` for in-memory data. Unset options take the preset's values (your
    own data, folder or arrays: `edge`). callbacks: Keras callbacks; their logs hold
    val_<modality>_f1 and val_<modality>_accuracy. probe_steps: print the plan first,
    with a time estimate from that many steps (0: no estimate; None: no plan).
    verbose: 0 silent, 1 Keras' progress bar, 2 one line per epoch.
    """
    from discomkd_keras.training import start_run

    spec, dataset, training = resolve_data(data, options, options.get("seed", 0))
    path, _, _ = start_run(spec, training, _encoder_items(encoder), run_dir, overwrite, log=log,
                           verbose=verbose, probe_steps=probe_steps, callbacks=callbacks,
                           data=dataset)
    return Run(path)


def compare(data, methods=("discomkd", "unimodal", "single"), seeds=5, *, encoder=None,
            out_dir=None, runs_dir=None, log=print, verbose=0, **options):
    """`discomkd-keras compare`: train `methods` x `seeds` on `data` with the shared options
    (as for `train`), write OUT/report.{md,json,png}; return a `Comparison`."""
    from discomkd_keras.comparison import compare as run_compare

    spec, dataset, training = resolve_data(data, options)
    raw, paths = run_compare(spec, training, _encoder_items(encoder), list(methods), seeds,
                             out_dir, runs_dir, False, "discomkd_keras.compare(...)", log=log,
                             verbose=verbose, data=dataset)
    return Comparison(raw, paths, dataset)
