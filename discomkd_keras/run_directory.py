"""The run directory: its layout, atomic writes, and reading a run back.

Training writes it; evaluation, export and the benchmarks read it, all
through this module:

    config.json           the resolved config (data spec, options, versions)
    history.csv           every loss term and validation metric per epoch
    state.json            last checkpointed epoch, its checkpoint, best F1 per modality
    last-epochNNNN.keras  the full training model + optimizer, for --resume
    best/<name>.keras     that modality's ModalityClassifier (x -> class probabilities)
                          at its best validation weighted F1 (+ best/<name>.json); a
                          teacher run's best/teacher.keras, and the best files of runs
                          written before ModalityClassifier, give logits
    plots/*.png           loss terms and validation F1 over epochs
    results.json          test accuracy and weighted F1 per modality
    evaluation/           what `discomkd-keras evaluate` writes

Every file is written to a temporary name and renamed, so a crash or SIGKILL
leaves the previous complete version in place.
"""

import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import shutil
import socket
import time
from pathlib import Path

from discomkd_keras.methods import JOINT_CLASSIFIER, method_of

try:
    import fcntl
except ImportError:  # Windows: no run-directory lock
    fcntl = None

CONFIG, STATE, HISTORY, RESULTS = "config.json", "state.json", "history.csv", "results.json"
BEST_DIR, PLOTS_DIR, EVALUATION_DIR = "best", "plots", "evaluation"
LOCK = ".lock"  # held (flock) by the process training in the directory


def fresh_state():
    """state.json of a run that has checkpointed no epoch yet."""
    return {"epoch": 0, "checkpoint": None, "best": {}}


class RunError(ValueError):
    """A problem with a run directory; the message names it."""


class DiskFullError(RunError):
    """The disk (or the user's quota) filled while a run wrote a file; the
    previous complete version of every file is still in place."""


def _no_space(err):
    # h5py and zipfile do not always keep errno; their message does.
    return isinstance(err, OSError) and (err.errno in (errno.ENOSPC, errno.EDQUOT)
                                         or "No space left" in str(err))


def _free_space(path):
    for folder in [Path(path)] + list(Path(path).parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return None


@contextlib.contextmanager
def explain_full_disk(path):
    """Turn a full disk met while writing `path` into a DiskFullError naming the
    path and the space left."""
    try:
        yield
    except OSError as err:
        if not _no_space(err):
            raise
        free = _free_space(Path(path).parent)
        left = f"{free / 2**20:.1f} MiB free there" if free is not None else "free space unknown"
        raise DiskFullError(f"No space left on the device writing {path} ({left})") from None


# --- atomic writes -------------------------------------------------------------
def _tmp_name(path, suffix=".tmp"):
    return path.with_name(f".{path.stem}.{os.getpid()}{suffix}")


def _written(path, suffix, write):
    """Call write(tmp) for a temporary name beside `path`; return the tmp path. A
    failed write leaves no temporary file behind."""
    path = Path(path)
    tmp = _tmp_name(path, suffix)
    try:
        with explain_full_disk(path):
            write(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_atomic(path, text):
    os.replace(stage_text(path, text), path)


def write_json(path, value):
    write_atomic(path, json.dumps(value, indent=2))


def stage_model(model, path):
    """Save `model` under a temporary name beside `path` and return that name;
    `os.replace` it onto `path` once everything that belongs with it is written."""
    return _written(path, ".tmp.keras", model.save)  # Keras wants the .keras suffix


def stage_text(path, text):
    return _written(path, f"{Path(path).suffix}.tmp", lambda tmp: tmp.write_text(text))


def stage_json(path, value):
    return stage_text(path, json.dumps(value, indent=2))


def save_model_atomic(model, path):
    os.replace(stage_model(model, path), path)


def savefig_atomic(fig, path, dpi=110):
    os.replace(_written(path, ".tmp.png", lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight")),
               path)


# --- the lock of a live run ---------------------------------------------------------
def lock_run_dir(run_dir):
    """Hold `run_dir`'s lock for this process (an open file: keep it, close it to
    release); RunError if a live process holds it. The lock is the kernel's
    (flock): a killed run cannot leave it stuck. Local disks; on NFS flock may
    not reach other hosts."""
    if fcntl is None:
        return None
    path = Path(run_dir) / LOCK
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunError(f"{run_dir} is in use by a live run ({holder}); wait for it to finish, "
                       "or stop it (Ctrl-C) first.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    return handle


# --- reading ---------------------------------------------------------------------
def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunError(f"Missing file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"{path} is not valid JSON: {err}") from None


def load_model_file(path):
    """Load a `.keras` file in safe mode, turning any failure into one clear line."""
    import keras

    from discomkd_keras import register_custom_objects

    register_custom_objects()
    path = Path(path)
    if not path.is_file():
        raise RunError(f"Missing model file: {path}")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as err:  # zip, h5 and config errors all mean the same to a user
        # Keras answers "File not found" for some damaged files that exist: not quoted.
        first = str(err).splitlines()[0] if str(err) else ""
        detail = type(err).__name__ + (f": {first}" if first and "not found" not in first.lower()
                                       else "")
        raise RunError(f"Cannot load {path}: the file is damaged or unreadable, not a valid "
                       f".keras file ({detail}).") from None


def load_checkpoint(run_dir, config, state):
    """The training model of a run's last checkpoint (for --resume and the embedding map).

    Runs written before the training models were made of per-modality branches
    (their config.json has no "branch") hold checkpoints of another layout,
    which this version cannot load; their best/ classifiers still load.
    """
    path = Path(run_dir) / state["checkpoint"]
    # Not even tried: Keras would warn about every layer it cannot match before failing.
    if "branch" not in config and not method_of(config).joint and path.is_file():
        raise RunError(f"{path} holds a training model of the layout before per-modality "
                       "branches, which this version cannot load: the run cannot be resumed "
                       "(retrain it); its best/ classifiers, results and exports still work.")
    return load_model_file(path)


def is_run(run_dir):
    return (Path(run_dir) / CONFIG).is_file()


def read_run(run_dir):
    """(config, state) of a run directory; RunError if it is not one."""
    run_dir = Path(run_dir)
    if not is_run(run_dir):
        raise RunError(f"{run_dir} is not a run directory (no {CONFIG}).")
    config = read_json(run_dir / CONFIG)
    state = read_json(run_dir / STATE) if (run_dir / STATE).exists() else fresh_state()
    return config, state


def deployed_names(config):
    """What a run keeps a best classifier of: every modality, or (a method with one joint
    classifier, the teacher) JOINT_CLASSIFIER."""
    return [JOINT_CLASSIFIER] if method_of(config).joint else list(config["modalities"])


def best_path(run_dir, name):
    return Path(run_dir) / BEST_DIR / f"{name}.keras"


def load_best(run_dir, name):
    """(classifier, info) of a modality's best checkpoint; RunError if there is none."""
    path = best_path(run_dir, name)
    if not path.exists():
        raise RunError(f"{run_dir} has no best checkpoint for {name!r} yet "
                       f"({path} is missing): train at least one epoch first.")
    return load_model_file(path), read_json(path.with_suffix(".json"))


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- history ---------------------------------------------------------------------
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
    """Rows of a history.csv (a run directory or the file itself), numbers as floats."""
    path = Path(path)
    if path.is_dir():
        path = path / HISTORY
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
                for row in csv.DictReader(f)]


# --- creating -------------------------------------------------------------------
def prepare_run_dir(run_dir, overwrite=False):
    """Create `run_dir`; refuse one that already holds something unless `overwrite`."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(f"{run_dir} exists and is not a directory.")
    if run_dir.exists() and any(run_dir.iterdir()):
        what = "a run" if is_run(run_dir) else "other files"
        if not overwrite:
            raise RunError(f"{run_dir} already holds {what}; use --resume {run_dir} to continue it, "
                           "--overwrite to replace it, or choose another --run-dir.")
        lock = lock_run_dir(run_dir)  # never delete a live run's directory
        try:
            shutil.rmtree(run_dir)
        finally:
            if lock:
                lock.close()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def default_run_dir(dataset, root="runs"):
    return Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{dataset}"


def latest_run(root="runs"):
    runs = sorted(Path(root).glob(f"*/{CONFIG}"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise RunError(f"No runs under {root}/; train one first (discomkd-keras train).")
    return runs[-1].parent
