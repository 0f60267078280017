"""Training runs: the run directory, per-modality best checkpoints, resume,
devices and precision. The CLI's `train` and `evaluate` are thin layers over
`train_run` and `evaluate_run`.

A run directory holds:
    config.json           the resolved config (data spec, options, versions)
    history.csv           every loss term and validation metric per epoch
    state.json            last finished epoch, its checkpoint, best F1 per modality
    last-epochNNNN.keras  the full training model + optimizer, for --resume
    best/<modality>.keras that modality's standalone classifier at its best
                          validation weighted F1 (+ best/<modality>.json)
    plots/*.png           loss terms and validation F1 over epochs
    results.json          test accuracy and weighted F1 per modality
Every file is written to a temporary name and renamed, so a crash or SIGKILL
leaves the previous complete version in place.
"""

import csv
import io
import json
import os
import platform
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from discomkd_keras import __version__
from discomkd_keras.data import DataError, load_data
from discomkd_keras.encoders import ADAM_EPSILON
from discomkd_keras.gradient_reversal import GRLScheduler
from discomkd_keras.losses import LOSS_TERMS
from discomkd_keras.metrics import accuracy, confusion_matrix, weighted_f1
from discomkd_keras.model import DisCoMKD
from discomkd_keras.students import STUDENT_LOSS_WEIGHTS, DistilledStudents
from discomkd_keras.teacher import MultimodalTeacher

METHODS = ("discomkd", "unimodal", "teacher", "kd", "dkd", "mlkd")
STRATEGIES = ("auto", "mirrored", "multiworker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
TRAIN_DEFAULTS = {  # the paper's protocol
    "method": "discomkd",
    "teacher_run": None,
    "epochs": 300,
    "batch_size": 128,
    "learning_rate": 1e-4,
    "feature_dim": 512,
    "encoders": {},
    "loss_weights": {t: 1.0 for t in LOSS_TERMS},
    "perp_mode": "abs",
    "modality_targets": "labels",
    "conventions": "torch",
    "grl_schedule": "constant",
    "grl_lambda": 1.0,
    "augment": {},
    "seed": 0,
    "strategy": "auto",
    "precision": "float32",
    "tensorboard": False,
    "workers": 1,
}


class RunError(ValueError):
    """A problem with a run directory; the message names it."""


# --- small file helpers -------------------------------------------------------
def write_atomic(path, text):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_model_atomic(model, path):
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")  # Keras wants .keras
    model.save(tmp)
    os.replace(tmp, path)


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunError(f"Missing file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"{path} is not valid JSON: {err}") from None


def load_model_file(path):
    """Load a `.keras` file in safe mode, turning any failure into one clear line."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"Missing model file: {path}")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as err:  # zip, h5 and config errors all mean the same to a user
        raise RunError(f"Cannot load {path}: it is not a valid .keras file "
                       f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


def versions():
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


# --- config and run directory --------------------------------------------------
def resolve_config(data_spec, data, options):
    """The full config of a run: defaults overlaid with `options`, plus what the data fixes."""
    unknown = sorted(set(options) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown training options {unknown}.")
    config = json.loads(json.dumps(TRAIN_DEFAULTS))
    for key, value in options.items():
        if isinstance(config[key], dict):
            config[key].update(value or {})
        elif value is not None:
            config[key] = value
    if config["strategy"] not in STRATEGIES:
        raise ValueError(f"Unknown strategy {config['strategy']!r}; expected one of {STRATEGIES}.")
    if config["precision"] not in PRECISIONS:
        raise ValueError(f"Unknown precision {config['precision']!r}; expected one of {PRECISIONS}.")
    for key in ("epochs", "batch_size", "workers"):
        if int(config[key]) < 1:
            raise ValueError(f"{key} must be >= 1; got {config[key]}.")
    if not float(config["learning_rate"]) > 0:
        raise ValueError(f"learning_rate must be > 0; got {config['learning_rate']}.")
    for m in list(config["encoders"]) + list(config["augment"]):
        if m not in data.modalities:
            raise DataError(f"Unknown modality {m!r}; the data has: {', '.join(data.modalities)}.")
    _resolve_method(config, options, data_spec, data)
    config.update({
        "data": dict(data_spec, modalities=data.modalities),
        "dataset": data.name,
        "modalities": data.modalities,
        "input_shapes": {m: list(data.input_shape(m)) for m in data.modalities},
        "kinds": data.kinds,
        "class_names": list(data.class_names),
        "preprocessing": data.preprocessing,
        "split_sizes": {m: {s: int(len(i)) for s, i in data.splits[m].items()} for m in data.modalities},
        "versions": versions(),
    })
    return config


def _resolve_method(config, options, data_spec, data):
    """Check the method's needs and fix what it implies (its loss weights, its teacher)."""
    method = config["method"]
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; expected one of {METHODS}.")
    if method != "discomkd":
        if options.get("loss_weights"):
            raise ValueError(f"--loss-weight applies to DisCoM-KD only; method {method!r} trains "
                             "with the task loss (and its distillation term).")
        config["loss_weights"] = dict(STUDENT_LOSS_WEIGHTS)  # task loss only
    if method in ("teacher", "kd", "dkd", "mlkd") and not data.paired:
        hint = " (AV-MNIST: --pairing paired)" if data.name.startswith("av-mnist") else ""
        raise DataError(f"Method {method!r} needs paired data, every sample in every modality; "
                        f"{data.name}'s modalities are unpaired{hint}.")
    if method in ("kd", "dkd", "mlkd"):
        if not config["teacher_run"]:
            raise ValueError(f"Method {method!r} needs --teacher RUN_DIR, a run trained with "
                             "--method teacher on the same data.")
        teacher_dir = Path(config["teacher_run"])
        if not (teacher_dir / "config.json").exists():
            raise RunError(f"--teacher {teacher_dir} is not a run directory (no config.json).")
        teacher = read_json(teacher_dir / "config.json")
        if teacher.get("method") != "teacher":
            raise RunError(f"--teacher {teacher_dir} is a {teacher.get('method', 'discomkd')!r} run, "
                           "not a teacher (train one with --method teacher).")
        if teacher["data"] != dict(data_spec, modalities=data.modalities) \
                or teacher["class_names"] != list(data.class_names):
            raise RunError(f"--teacher {teacher_dir} was trained on other data "
                           f"({teacher['data']}); the students need a teacher of the same data.")
        if not (teacher_dir / "best" / "teacher.keras").exists():
            raise RunError(f"--teacher {teacher_dir} has no best/teacher.keras yet.")
        config["teacher_run"] = str(teacher_dir.resolve())
        config["teacher"] = {"encoders": teacher["encoders"], "feature_dim": teacher["feature_dim"],
                             "conventions": teacher.get("conventions", "keras")}
    elif config["teacher_run"]:
        raise ValueError(f"--teacher is for the kd, dkd and mlkd methods, not {method!r}.")


def build_model(config):
    """The training model a run's config describes, untrained."""
    shapes, k = config["input_shapes"], len(config["class_names"])
    encoders = config["encoders"] or None
    method = config["method"]
    conventions = config.get("conventions", "keras")  # runs from before the option: Keras'
    if method == "teacher":
        return MultimodalTeacher(shapes, k, encoders=encoders, feature_dim=config["feature_dim"],
                                 conventions=conventions)
    if method in ("kd", "dkd", "mlkd"):
        teacher = config["teacher"]
        return DistilledStudents(shapes, k, method=method, encoders=encoders,
                                 feature_dim=config["feature_dim"], conventions=conventions,
                                 teacher_encoders=teacher["encoders"] or None,
                                 teacher_feature_dim=teacher["feature_dim"],
                                 teacher_conventions=teacher.get("conventions", "keras"))
    return DisCoMKD(shapes, k, encoders=encoders, feature_dim=config["feature_dim"],
                    loss_weights=config["loss_weights"], perp_mode=config["perp_mode"],
                    grl_lambda=config["grl_lambda"],
                    modality_targets=config.get("modality_targets", "labels"),
                    conventions=conventions)


def make_optimizer(config):
    """Adam with the run's learning rate and its conventions' epsilon (PyTorch 1e-8)."""
    return keras.optimizers.Adam(config["learning_rate"],
                                 epsilon=ADAM_EPSILON[config.get("conventions", "keras")])


def deployed_names(config):
    """What a run keeps a best classifier of: every modality, or the teacher."""
    return ["teacher"] if config.get("method") == "teacher" else list(config["modalities"])


def split_xy(data, name, split):
    """(x, y) of a modality's split; for "teacher", all modalities' paired rows."""
    if name == "teacher":
        first = data.modalities[0]
        return {m: data.split(m, split)[0] for m in data.modalities}, data.split(first, split)[1]
    return data.split(name, split)


def prepare_run_dir(run_dir, overwrite=False):
    """Create `run_dir`; refuse one that already holds something unless `overwrite`."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"{run_dir} exists and is not a directory.")
    if run_dir.exists() and any(run_dir.iterdir()):
        what = "a run" if (run_dir / "config.json").exists() else "other files"
        if not overwrite:
            raise RunError(f"{run_dir} already holds {what}; use --resume {run_dir} to continue it, "
                           "--overwrite to replace it, or choose another --run-dir.")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def default_run_dir(dataset, root="runs"):
    return Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{dataset}"


def latest_run(root="runs"):
    runs = sorted((p for p in Path(root).glob("*/config.json")), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise RunError(f"No runs under {root}/; train one first (discomkd-keras train).")
    return runs[-1].parent


# --- devices and precision -----------------------------------------------------
def make_strategy(name):
    """A context manager under which the model is built and trained."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        if name == "auto":
            return tf.distribute.get_strategy()
        if name == "multiworker":
            return tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
        # Mirror over all GPUs; with none, over the logical CPUs (how tests split one CPU in two).
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "auto":
        return _NullScope()
    if name == "mirrored" and backend == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        return _NullScope()
    raise ValueError(f"--strategy {name} is not available on the {backend} backend "
                     "(jax: auto or mirrored, the latter via keras.distribution.DataParallel).")


class _NullScope:
    num_replicas_in_sync = 1

    def scope(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- the per-epoch recorder ----------------------------------------------------
def predict_logits(classifier, x, batch_size):
    """Logits for x; padded to whole batches so the compiled predict step sees
    one shape only (no retracing on the last, partial batch)."""
    def padded(a):
        return np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a

    n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    pad = -n % batch_size
    x = {m: padded(a) for m, a in x.items()} if isinstance(x, dict) else padded(x)
    out = classifier.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(out, dtype=np.float32)[:n]


class RunRecorder(keras.callbacks.Callback):
    """After every epoch: validation accuracy and weighted F1 per modality,
    the best classifier per modality, the history CSV, plots, and the `last`
    checkpoint with state.json (written last: it marks the epoch finished)."""

    def __init__(self, run_dir, data, config, state, history_rows, classifiers, steps):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.data = data
        self.config = config
        self.state = state
        self.rows = history_rows
        self.classifiers = classifiers  # {modality or "teacher": model}
        self.samples_per_epoch = steps * config["batch_size"] * len(data.modalities)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        logs = dict(logs or {})
        row = {"epoch": epoch + 1, "seconds": round(seconds, 3),
               "samples_per_s": round(self.samples_per_epoch / seconds, 2)}
        if isinstance(self.model, DisCoMKD):
            row["grl_lambda"] = float(keras.ops.convert_to_numpy(
                self.model.get_layer("gradient_reversal").grl_lambda))
        row.update({k: float(v) for k, v in logs.items()})
        best_dir = self.run_dir / "best"
        best_dir.mkdir(exist_ok=True)
        for m in self.classifiers:
            x, y = split_xy(self.data, m, "valid")
            pred = predict_logits(self.classifiers[m], x, self.config["batch_size"]).argmax(1)
            f1 = weighted_f1(y, pred, self.data.num_classes)
            row[f"val_{m}_acc"] = accuracy(y, pred)
            row[f"val_{m}_f1"] = f1
            best = self.state["best"].get(m)
            if best is None or f1 > best["f1"]:
                save_model_atomic(self.classifiers[m], best_dir / f"{m}.keras")
                info = {"modality": m, "epoch": epoch + 1, "f1": f1, "accuracy": row[f"val_{m}_acc"]}
                write_atomic(best_dir / f"{m}.json", json.dumps(info, indent=2))
                self.state["best"][m] = info
        self.rows.append(row)
        write_atomic(self.run_dir / "history.csv", rows_to_csv(self.rows))

        checkpoint = f"last-epoch{epoch + 1:04d}.keras"
        save_model_atomic(self.model, self.run_dir / checkpoint)
        previous = self.state.get("checkpoint")
        self.state.update({"epoch": epoch + 1, "checkpoint": checkpoint})
        write_atomic(self.run_dir / "state.json", json.dumps(self.state, indent=2))
        if previous and previous != checkpoint:
            (self.run_dir / previous).unlink(missing_ok=True)
        plot_history(self.rows, list(self.classifiers), self.run_dir / "plots")


def rows_to_csv(rows):
    columns = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_history(path):
    if not Path(path).exists():
        return []
    with open(path, newline="") as f:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
                for row in csv.DictReader(f)]


def _savefig_atomic(fig, path):
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)


def plot_history(rows, modalities, plot_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot_dir = Path(plot_dir)
    plot_dir.mkdir(exist_ok=True)
    epochs = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for term in ("loss",) + LOSS_TERMS + ("distill",):
        if all(r.get(term) is not None for r in rows):
            ax.plot(epochs, [r[term] for r in rows], marker=".", label=term,
                    linewidth=2.5 if term == "loss" else 1.2)
    ax.set(xlabel="epoch", ylabel="training loss (epoch mean)", title="Training loss terms")
    ax.legend(ncol=3, fontsize=8)
    ax.grid(alpha=0.3)
    _savefig_atomic(fig, plot_dir / "loss_terms.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for m in modalities:
        ax.plot(epochs, [r[f"val_{m}_f1"] for r in rows], marker=".", label=f"{m} (valid F1)")
        if rows and all(r.get(f"{m}_acc") is not None for r in rows):
            ax.plot(epochs, [r[f"{m}_acc"] for r in rows], linestyle=":", label=f"{m} (train acc)")
    ax.set(xlabel="epoch", ylabel="score", ylim=(0, 1.02),
           title="Validation weighted F1 of the kept classifiers")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _savefig_atomic(fig, plot_dir / "valid_f1.png")
    plt.close(fig)


# --- train ------------------------------------------------------------------------
def train_run(config, run_dir, data=None, resume=False, verbose=1):
    """Train (or resume) the run in `run_dir`; return {modality: test metrics}.

    For a new run, `config` comes from `resolve_config` and `run_dir` from
    `prepare_run_dir`. With `resume`, both the config and the data spec are
    read back from `run_dir`.
    """
    from discomkd_keras.data.unpaired_batches import PairedBatches, UnpairedBatches

    run_dir = Path(run_dir)
    if resume:
        config = read_json(run_dir / "config.json")
        state = read_json(run_dir / "state.json") if (run_dir / "state.json").exists() \
            else {"epoch": 0, "checkpoint": None, "best": {}}
        if state["epoch"] >= config["epochs"]:
            raise RunError(f"{run_dir} already finished all {config['epochs']} epochs; "
                           "nothing to resume (evaluate it with: discomkd-keras evaluate).")
    else:
        write_atomic(run_dir / "config.json", json.dumps(config, indent=2))
        state = {"epoch": 0, "checkpoint": None, "best": {}}
    if data is None:
        data = load_data(config["data"])

    keras.utils.set_random_seed(int(config["seed"]) + state["epoch"])
    keras.mixed_precision.set_global_policy(config["precision"])
    strategy = make_strategy(config["strategy"])
    if getattr(strategy, "num_replicas_in_sync", 1) > 1:
        print(f"Training on {strategy.num_replicas_in_sync} replicas")
    paired = config.get("method") in ("teacher", "kd", "dkd", "mlkd")
    batches = (PairedBatches if paired else UnpairedBatches)(
        data, batch_size=config["batch_size"], augment=config["augment"], seed=config["seed"],
        epoch=state["epoch"], workers=config["workers"])
    # Rows of epochs after the last checkpoint (a crash between the two writes) are dropped.
    rows = [r for r in read_history(run_dir / "history.csv") if r["epoch"] <= state["epoch"]]

    with strategy.scope():
        if state["checkpoint"]:
            model = load_model_file(run_dir / state["checkpoint"])
        else:
            model = build_model(config)
            if isinstance(model, DistilledStudents):
                model.load_teacher_weights(
                    load_model_file(Path(config["teacher_run"]) / "best" / "teacher.keras"))
            model.compile(optimizer=make_optimizer(config))
        if isinstance(model, MultimodalTeacher):
            classifiers = {"teacher": model}
        else:
            classifiers = {m: model.classifier(m) for m in data.modalities}

    callbacks = [RunRecorder(run_dir, data, config, state, rows, classifiers, len(batches))]
    if isinstance(model, DisCoMKD):
        callbacks.insert(0, GRLScheduler(config["grl_schedule"], config["grl_lambda"],
                                         epochs=config["epochs"], steps_per_epoch=len(batches)))
    if config["tensorboard"]:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard")))
    model.fit(batches, epochs=config["epochs"], initial_epoch=state["epoch"],
              callbacks=callbacks, verbose=verbose)
    return test_best_classifiers(run_dir, data, config)


def test_best_classifiers(run_dir, data, config):
    """Test accuracy and weighted F1 of every kept best classifier -> results.json."""
    run_dir = Path(run_dir)
    results = {}
    for m in deployed_names(config):
        best = read_json(run_dir / "best" / f"{m}.json")
        clf = load_model_file(run_dir / "best" / f"{m}.keras")
        x, y = split_xy(data, m, "test")
        pred = predict_logits(clf, x, config["batch_size"]).argmax(1)
        results[m] = {"test_accuracy": accuracy(y, pred),
                      "test_weighted_f1": weighted_f1(y, pred, data.num_classes),
                      "best_epoch": best["epoch"], "valid_weighted_f1": best["f1"],
                      "test_samples": int(len(y)),
                      "parameters": int(clf.count_params()),
                      "confusion_matrix": confusion_matrix(y, pred, data.num_classes).tolist()}
    write_atomic(run_dir / "results.json", json.dumps(results, indent=2))
    return results


# --- evaluate -----------------------------------------------------------------------
def evaluate_run(run_dir, max_points=400):
    """Test metrics, confusion matrices and the 2-D embedding map of a run.

    Writes evaluation/{results.json, confusion_<m>.png, embeddings.png}.
    The embedding map uses the last checkpoint's full model (the best
    classifiers hold no z_irr).
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise RunError(f"{run_dir} is not a run directory (no config.json).")
    config = read_json(run_dir / "config.json")
    state = read_json(run_dir / "state.json") if (run_dir / "state.json").exists() else {}
    if not state.get("checkpoint"):
        raise RunError(f"{run_dir} has no finished epoch yet; nothing to evaluate.")
    data = load_data(config["data"])
    out = run_dir / "evaluation"
    out.mkdir(exist_ok=True)
    results = test_best_classifiers(run_dir, data, config)
    for m in results:
        plot_confusion(np.array(results[m]["confusion_matrix"]), data.class_names,
                       f"{m}: test confusion (best epoch {results[m]['best_epoch']})",
                       out / f"confusion_{m}.png")
    if config.get("method") == "teacher":  # no z_inv / z_inf / z_irr to map
        write_atomic(out / "results.json", json.dumps(results, indent=2))
        return results
    model = load_model_file(run_dir / state["checkpoint"])
    embeddings = {}
    rng = np.random.default_rng(0)
    for m in data.modalities:
        x, y = data.split(m, "test")
        rows = np.sort(rng.permutation(len(y))[:max_points])
        z = model.embedder(m).predict(x[rows], batch_size=config["batch_size"], verbose=0)
        embeddings[m] = ({k: np.asarray(v, np.float32) for k, v in z.items()}, y[rows])
    separation = plot_embeddings(embeddings, data.class_names, out / "embeddings.png",
                                 title=f"{config['dataset']}, epoch {state['epoch']}")
    results["_modality_separation"] = separation
    write_atomic(out / "results.json", json.dumps(results, indent=2))
    return results


def plot_confusion(counts, class_names, title, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k))
    ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=8,
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    _savefig_atomic(fig, path)
    plt.close(fig)


def pca_2d(z):
    z = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    return z @ vt[:2].T


def plot_embeddings(embeddings, class_names, path, title):
    """PCA maps of z_inv / z_inf / z_irr, coloured by modality (top) and class (bottom).

    Returns, per embedding, the accuracy of a nearest-centroid modality
    classifier in the full space: ~1/M where the modalities are mixed
    (z_inv's goal), ~1 where they separate (z_inf, z_irr)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modalities = list(embeddings)
    fig, axes = plt.subplots(2, 3, figsize=(13, 8))
    separation = {}
    for col, key in enumerate(("z_inv", "z_inf", "z_irr")):
        z = np.concatenate([embeddings[m][0][key] for m in modalities])
        mod = np.concatenate([np.full(len(embeddings[m][1]), i) for i, m in enumerate(modalities)])
        cls = np.concatenate([embeddings[m][1] for m in modalities])
        centroids = np.stack([z[mod == i].mean(0) for i in range(len(modalities))])
        nearest = ((z[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
        separation[key] = float((nearest == mod).mean())
        xy = pca_2d(z)
        for i, m in enumerate(modalities):
            axes[0, col].scatter(*xy[mod == i].T, s=6, alpha=0.6, label=m)
        scatter = axes[1, col].scatter(*xy.T, c=cls, s=6, alpha=0.6, cmap="tab10")
        axes[0, col].set_title(f"{key}: by modality (centroid acc {separation[key]:.2f})")
        axes[1, col].set_title(f"{key}: by class")
        axes[0, col].legend(fontsize=8, markerscale=2)
    handles, _ = scatter.legend_elements()
    axes[1, 2].legend(handles, class_names, fontsize=7, loc="best")
    fig.suptitle(f"Embeddings (PCA, test split) - {title}")
    _savefig_atomic(fig, path)
    plt.close(fig)
    return separation
