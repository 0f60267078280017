"""Training runs: the model a config describes, devices and precision, the
per-epoch recorder (validation, best classifier per modality, checkpoint for
--resume) and the fit loop. The CLI's `train` is a thin layer over `start_run`
and `resume_run`; the run directory's layout lives in `run_directory.py`.
"""

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import keras
import numpy as np

from discomkd_keras.config import (PAIRED_METHODS, STUDENT_METHODS, ConfigError, branch_of,
                                   merged_options, preset_choices, resolve_config, with_preset)
from discomkd_keras.data import load_data
from discomkd_keras.encoders import ADAM_EPSILON, apply_pretrained
from discomkd_keras.evaluation import predict_scores, score_best_classifiers, split_xy
from discomkd_keras.gradient_reversal import GRLScheduler
from discomkd_keras.learning_rate import make_learning_rate
from discomkd_keras.metrics import accuracy, weighted_f1
from discomkd_keras.model import DisCoMKD
from discomkd_keras.plots import plot_history
from discomkd_keras.run_directory import (BEST_DIR, CONFIG, HISTORY, PLOTS_DIR, STATE,
                                          DiskFullError, RunError, best_path, default_run_dir,
                                          fresh_state, load_checkpoint, load_model_file,
                                          lock_run_dir, prepare_run_dir, read_history, read_run,
                                          rows_to_csv, stage_json, stage_model, stage_text,
                                          write_json)
from discomkd_keras.single_encoder import SingleEncoderClassifiers
from discomkd_keras.students import DistillWarmup, DistilledStudents
from discomkd_keras.teacher import MultimodalTeacher
from discomkd_keras.unimodal import UnimodalClassifiers


def build_model(config):
    """The training model a run's config describes, untrained."""
    shapes, k = config["input_shapes"], len(config["class_names"])
    encoders = config["encoders"] or None
    method = config["method"]
    conventions = config.get("conventions", "keras")  # runs from before the option: Keras'
    if method == "teacher":
        return MultimodalTeacher(shapes, k, encoders=encoders, feature_dim=config["feature_dim"],
                                 conventions=conventions)
    if method == "single":
        return SingleEncoderClassifiers(shapes, k, encoders=encoders,
                                        feature_dim=config["feature_dim"], conventions=conventions)
    branch = branch_of(config)
    if method in STUDENT_METHODS:
        teacher = config["teacher"]
        return DistilledStudents(shapes, k, method=method, encoders=encoders,
                                 feature_dim=config["feature_dim"], branch=branch,
                                 conventions=conventions,
                                 teacher_encoders=teacher["encoders"] or None,
                                 teacher_feature_dim=teacher["feature_dim"],
                                 teacher_conventions=teacher.get("conventions", "keras"))
    if method == "unimodal":
        return UnimodalClassifiers(shapes, k, encoders=encoders, feature_dim=config["feature_dim"],
                                   branch=branch, conventions=conventions)
    return DisCoMKD(shapes, k, encoders=encoders, feature_dim=config["feature_dim"],
                    loss_weights=config["loss_weights"], perp_mode=config["perp_mode"],
                    grl_lambda=config["grl_lambda"],
                    modality_targets=config.get("modality_targets", "labels"),
                    conventions=conventions, branch=branch)


def make_optimizer(config, steps_per_epoch=1):
    """Adam with the run's learning rate (a float, or its warm-up / cosine schedule over
    the epoch ceiling) and its conventions' epsilon (PyTorch 1e-8); AdamW when the run
    has a weight decay (decoupled, on every weight: Keras' default)."""
    learning_rate = make_learning_rate(config, steps_per_epoch)
    epsilon = ADAM_EPSILON[config.get("conventions", "keras")]
    weight_decay = float(config.get("weight_decay") or 0.0)
    if weight_decay:
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay, epsilon=epsilon)
    return keras.optimizers.Adam(learning_rate, epsilon=epsilon)


# --- devices and precision -----------------------------------------------------
def make_strategy(name):
    """A context manager under which the model is built and trained."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        if name == "auto":
            return tf.distribute.get_strategy()
        if name == "multiworker":
            _mean_scalar_logs_over_workers()
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
    if name == "multiworker" and backend == "jax":
        start_jax_processes()
        distribution = keras.distribution.DataParallel()  # every device of every process
        distribution.auto_shard_dataset = False  # each process feeds its share (UnpairedBatches)
        keras.distribution.set_distribution(distribution)
        return _NullScope()
    raise ConfigError(f"--strategy {name} is not available on the {backend} backend "
                     "(jax: auto, mirrored or multiworker, via keras.distribution.DataParallel).")


def start_jax_processes():
    """jax.distributed.initialize from JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
    JAX_PROCESS_ID (once per process, before any JAX computation); CPUs reach each
    other through gloo."""
    import jax

    if jax.distributed.is_initialized():
        return
    task = multiworker_task()
    if task is None or "JAX_COORDINATOR_ADDRESS" not in os.environ:
        raise ConfigError("--strategy multiworker on JAX needs JAX_COORDINATOR_ADDRESS (host:port "
                          "of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID.")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
                               num_processes=task["workers"], process_id=task["index"])


def _across_processes():
    return keras.backend.backend() == "jax" and _jax_process_count() > 1


def _jax_process_count():
    import jax

    return jax.process_count() if jax.distributed.is_initialized() else 1


@contextlib.contextmanager
def _this_process_only():
    """No keras.distribution while models are made here: their variables stay on
    this process's devices, so predict can read their outputs."""
    if keras.backend.backend() != "jax":
        yield
        return
    saved = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(saved)


def _mean_scalar_logs_over_workers():
    """Keras 3.15's TF trainer averages a training step's logs over the workers of
    a MultiWorkerMirroredStrategy with strategy.reduce("MEAN", v, axis=0), which
    fails on a scalar ("Invalid reduction dimension 0 for input with 0
    dimensions"); every log is a scalar. Average them with axis=None instead."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    if getattr(tf_trainer.reduce_per_replica, "scalar_safe", False):
        return
    keras_reduce = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0), values)
        return keras_reduce(values, strategy, reduction)

    reduce_per_replica.scalar_safe = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def build_from_batch(model, batch):
    """Under a tf.distribute strategy, Keras' TF fit builds the model from a batch
    it takes from a fresh training iterator and averages over replicas with
    strategy.reduce. MultiWorkerMirroredStrategy cannot reduce an (x, y) nest
    (Keras 3.15: "Attempt to convert a value ({'rgb': PerReplica ...}) to a
    Tensor"), and the batches that iterator takes or prefetches are lost to the
    stream. Build from `batch` (one global batch, NumPy) instead."""
    def build(iterator=None, data_batch=None):
        with model.distribute_strategy.scope():
            model._symbolic_build(data_batch=batch)

    model._maybe_symbolic_build = build


class _NullScope:
    num_replicas_in_sync = 1

    def scope(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- the per-epoch recorder ----------------------------------------------------
class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run at a step boundary after saving a checkpoint that
    `--resume` continues from; the message says how."""


class RunRecorder(keras.callbacks.Callback):
    """After every epoch: validation accuracy and weighted F1 per modality and
    the history CSV; at checkpoints, the best classifier per modality, the
    `last` training model with its optimizer, plots, and state.json (renamed
    into place last: it marks the checkpointed epoch).

    A checkpoint is written after the final epoch and whenever skipping it
    could cost more than `checkpoint_seconds` of work by the next epoch's end
    (0: every epoch). A crash then loses at most one epoch or that many
    seconds, whichever is more; best classifiers found in between wait in
    memory, so best/ always matches state.json.

    Every file of a checkpoint is first written under a temporary name and
    renamed only when all are written: a full disk (DiskFullError) leaves the
    previous checkpoint, best/ and state.json as they were. `stop_requested`
    (set by Ctrl-C) stops training at the next step boundary with a checkpoint
    of that step (state.json's "step": steps of the next epoch already taken).
    """

    def __init__(self, run_dir, data, config, state, history_rows, classifiers, steps,
                 epoch_log=None):
        super().__init__()
        self.epoch_log = epoch_log  # a function given one plain line per epoch, or None
        self.run_dir = Path(run_dir)
        self.data = data
        self.config = config
        self.state = state
        self.rows = history_rows
        # {modality: its ModalityClassifier (probabilities), or "teacher": the teacher (logits)};
        # validation takes the argmax of either.
        self.classifiers = classifiers
        self.steps = steps
        self.samples_per_epoch = steps * config["batch_size"] * len(data.modalities)
        self.checkpoint_seconds = float(config.get("checkpoint_seconds", 0))
        self._pending = {}  # {name: (weights, info)}: best classifiers not yet on disk
        self._holders = {}  # {name: a copy of the classifier that carries best weights to disk}
        self._last_checkpoint = time.perf_counter()
        self.step_offset = 0  # steps of the first epoch taken before a resumed interruption
        self.stop_requested = False
        self.stopped_at = None  # (epochs done, steps of the next) once stopped by a request
        self.patience = int(config.get("patience") or 0)
        self.stopped_early = None  # {"epoch", "reason"} once early stopping ended the run

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._steps_done = self.step_offset

    def on_train_batch_end(self, batch, logs=None):
        self._steps_done = self.step_offset + batch + 1
        if self.stop_requested:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        try:
            self._epoch_end(epoch, logs)
        except DiskFullError as err:
            raise DiskFullError(
                f"{err}. The run keeps its last checkpoint (epoch {self.state['epoch']}) and "
                f"best/ as they were; free some space, then continue it: "
                f"discomkd-keras train --resume {self.run_dir}") from None

    def _epoch_end(self, epoch, logs):
        if self.stop_requested and self._steps_done < self.steps:
            self._save(epoch, self._stage_checkpoint(epoch, self._steps_done))
            self.stopped_at = (epoch, self._steps_done)
            return
        seconds = time.perf_counter() - self._start
        share = (self.steps - self.step_offset) / self.steps
        self.step_offset = 0
        row = {"epoch": epoch + 1, "seconds": round(seconds, 3),
               "samples_per_s": round(share * self.samples_per_epoch / seconds, 2)}
        if isinstance(self.model, DisCoMKD):
            row["grl_lambda"] = float(keras.ops.convert_to_numpy(
                self.model.get_layer("gradient_reversal").grl_lambda))
        row.update({k: float(v) for k, v in (logs or {}).items()})
        started = time.perf_counter()
        self._validate(epoch, row)
        row["validation_seconds"] = round(time.perf_counter() - started, 3)
        if logs is not None:  # the callbacks after this one (TensorBoard, CSVLogger, a
            for name in self.classifiers:  # user's EarlyStopping) and History read them
                logs[f"val_{name}_f1"] = row[f"val_{name}_f1"]
                logs[f"val_{name}_accuracy"] = row[f"val_{name}_acc"]
        self.rows.append(row)
        self._check_patience(epoch)
        now = time.perf_counter()
        due = (epoch + 1 >= self.config["epochs"] or self.checkpoint_seconds <= 0
               or self.stop_requested or self.stopped_early is not None
               or now - self._last_checkpoint + (now - self._start) > self.checkpoint_seconds)
        staged = self._stage_checkpoint(epoch + 1, 0) if due else None
        if due:
            row["checkpoint_seconds"] = round(time.perf_counter() - now, 3)
        row["wall_seconds"] = round(time.perf_counter() - self._start, 3)
        self._save(epoch, staged)
        if due:
            plot_history(self.rows, list(self.classifiers), self.run_dir / PLOTS_DIR)
            self._last_checkpoint = time.perf_counter()
        if self.epoch_log:
            self.epoch_log(epoch_line(row, logs or {}, self.config["epochs"], self.classifiers))
        if self.stop_requested:
            self.model.stop_training = True
            self.stopped_at = (epoch + 1, 0)
        elif self.stopped_early is not None:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        """A callback after this one (a user's EarlyStopping) stopped training: checkpoint
        the last epoch, so best/ holds the best classifiers and the run counts as finished."""
        if not self.model.stop_training or self.stop_requested or self.stopped_early or not self.rows:
            return
        last = int(self.rows[-1]["epoch"])
        if last >= self.config["epochs"] or self.state["epoch"] >= last:
            return
        self.stopped_early = {"epoch": last, "reason": "a callback stopped training "
                              "(model.stop_training)"}
        try:
            self._save(last - 1, self._stage_checkpoint(last, 0))
        except DiskFullError as err:
            raise DiskFullError(f"{err}. The run keeps its last checkpoint (epoch "
                                f"{self.state['epoch']}) and best/ as they were.") from None

    def _check_patience(self, epoch):
        """Early stopping: the run ends once no kept classifier's validation weighted F1
        has improved for `patience` epochs (each one's best epoch is already kept)."""
        waited = epochs_without_improvement(self.rows, list(self.classifiers))
        if self.patience and waited >= self.patience and epoch + 1 < self.config["epochs"]:
            self.stopped_early = {
                "epoch": epoch + 1,
                "reason": f"no modality's validation weighted F1 improved for {waited} epochs "
                          f"(--patience {self.patience})"}

    def _holder(self, m):
        """A twin of classifier m of its own class (clone_model loses subclasses), on this
        process's devices alone."""
        if m not in self._holders:
            with _this_process_only():
                self._holders[m] = keras.saving.deserialize_keras_object(
                    keras.saving.serialize_keras_object(self.classifiers[m]))
        return self._holders[m]

    def _validate(self, epoch, row):
        for m, classifier in self.classifiers.items():
            x, y = split_xy(self.data, m, "valid")
            if _across_processes():  # predict cannot fetch outputs spread over processes
                self._holder(m).set_weights(classifier.get_weights())
                classifier = self._holder(m)
                with _this_process_only():
                    scores = predict_scores(classifier, x, self.config["batch_size"])
            else:
                scores = predict_scores(classifier, x, self.config["batch_size"])
            pred = scores.argmax(1)
            f1 = weighted_f1(y, pred, self.data.num_classes)
            row[f"val_{m}_acc"] = accuracy(y, pred)
            row[f"val_{m}_f1"] = f1
            best = self._pending.get(m, (None, self.state["best"].get(m)))[1]
            if best is None or f1 > best["f1"]:
                info = {"modality": m, "epoch": epoch + 1, "f1": f1, "accuracy": row[f"val_{m}_acc"]}
                self._pending[m] = (classifier.get_weights(), info)

    def _stage_checkpoint(self, epochs_done, step):
        """Write the pending best classifiers and the training model under temporary
        names; return ([(tmp, final)], the state.json that names them)."""
        (self.run_dir / BEST_DIR).mkdir(exist_ok=True)
        staged, state = [], json.loads(json.dumps(self.state))
        try:
            for m, (weights, info) in self._pending.items():
                self._holder(m).set_weights(weights)
                path = best_path(self.run_dir, m)
                staged.append((stage_model(self._holder(m), path), path))
                staged.append((stage_json(path.with_suffix(".json"), info), path.with_suffix(".json")))
                state["best"][m] = info
            checkpoint = f"last-epoch{epochs_done:04d}" + (f"-step{step:05d}" if step else "") + ".keras"
            staged.append((stage_model(self.model, self.run_dir / checkpoint), self.run_dir / checkpoint))
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
        state.update({"epoch": epochs_done, "checkpoint": checkpoint})
        if self.stopped_early is not None:
            state["stopped_early"] = self.stopped_early
        state.pop("step", None)
        if step:
            state["step"] = step
        return staged, state

    def _save(self, epoch, staged):
        """Write history.csv and state.json beside the staged checkpoint files, then
        rename them all into place, state.json last; on a full disk, nothing changes."""
        files, state = staged or ([], None)
        try:
            files.append((stage_text(self.run_dir / HISTORY, rows_to_csv(self.rows)),
                          self.run_dir / HISTORY))
            if state is not None:
                files.append((stage_json(self.run_dir / STATE, state), self.run_dir / STATE))
        except BaseException:
            for tmp, _ in files:
                tmp.unlink(missing_ok=True)
            raise
        for tmp, final in files:
            os.replace(tmp, final)
        if state is not None:
            previous = self.state.get("checkpoint")
            self.state.clear()
            self.state.update(state)
            self._pending = {}
            if previous and previous != state["checkpoint"]:
                (self.run_dir / previous).unlink(missing_ok=True)


def epochs_without_improvement(rows, names):
    """Epochs since the last one in which any of `names` reached a validation weighted F1
    above all its earlier ones (history rows, oldest first; the first epoch improves)."""
    best, waited = {}, 0
    for row in rows:
        improved = False
        for name in names:
            f1 = row.get(f"val_{name}_f1")
            if f1 is not None and (name not in best or float(f1) > best[name]):
                best[name], improved = float(f1), True
        waited = 0 if improved else waited + 1
    return waited


def epoch_line(row, logs, epochs, names):
    """One plain line for a log file: the epoch, the losses Keras' bar shows, each
    modality's validation weighted F1 and the time spent."""
    losses = "  ".join(f"{k} {float(v):.4f}" for k, v in logs.items() if not k.startswith("val_"))
    f1 = "  ".join(f"{m} {row[f'val_{m}_f1']:.4f}" for m in names)
    return (f"epoch {row['epoch']}/{epochs}  {losses}  |  val F1 {f1}  |  "
            f"{row['seconds']:.1f} s train, {row['validation_seconds']:.1f} s valid")


# --- train ------------------------------------------------------------------------
def start_run(spec, options, encoder_items=(), run_dir=None, overwrite=False, log=print, verbose=1,
              probe_steps=None, callbacks=(), data=None):
    """Load the data of `spec`, resolve the config (the preset's values where an option
    is None: options["preset"], else the data source's), create the run directory and
    train; return (run_dir, config, results).

    encoder_items: `[MOD=]FAMILY` strings, as `--encoder` takes them.
    probe_steps: None, no plan; else print the plan (plan.py) first, with a time
        estimate from that many timed training steps when > 0.
    callbacks: more Keras callbacks for fit (see train_run).
    data: the MultiModalDataset of `spec`, if the caller has it (in-memory arrays).
    """
    options = with_preset(options, spec["source"])
    merged_options(options)  # bad values fail before the data loads
    if options.get("strategy") == "multiworker" and keras.backend.backend() == "jax":
        start_jax_processes()  # before any JAX computation
    if data is None:
        log(f"Loading {spec['source']} data ...")
        data = load_data(spec)
    if data.description:
        log(data.description)
    config = resolve_config(spec, data, preset_choices(options, data, encoder_items))
    worker = multiworker_task() if config["strategy"] == "multiworker" else None
    if worker and not worker["chief"]:
        with _worker_dir(worker, log) as scratch:
            return None, config, train_run(config, scratch, data=data, verbose=verbose, log=log,
                                           callbacks=callbacks)
    run_dir = prepare_run_dir(run_dir or default_run_dir(data.name), overwrite=overwrite)
    log(f"Run directory: {run_dir}")
    described = [f"{m} {tuple(shape)} [{config['encoders'].get(m, 'default')}]"
                 for m, shape in config["input_shapes"].items()]
    log(f"Method {config['method']}; modalities: {', '.join(described)}; "
        f"{len(config['class_names'])} classes; {config['epochs']} epochs")
    if probe_steps is not None and config["strategy"] == "multiworker":
        # TensorFlow's collectives must be configured before any op runs: no model first.
        log("Plan: not probed with --strategy multiworker (the cluster must start before any "
            "model is built).")
    elif probe_steps is not None:
        from discomkd_keras.plan import make_plan, plan_lines

        for line in plan_lines(make_plan(config, data, probe_steps)):
            log(line)
    return run_dir, config, train_run(config, run_dir, data=data, verbose=verbose, log=log,
                                      callbacks=callbacks)


def resume_run(run_dir, log=print, verbose=1, data=None, callbacks=()):
    """Continue a run from its last checkpoint; return (run_dir, config, results).
    A multi-worker run's other workers read RUN_DIR (the chief's, on a shared disk
    or a copy) and continue from a private copy of it."""
    config, _ = read_run(run_dir)
    if config["strategy"] == "multiworker" and keras.backend.backend() == "jax":
        start_jax_processes()  # before any JAX computation
    worker = multiworker_task() if config["strategy"] == "multiworker" else None
    if worker and not worker["chief"]:
        with _worker_dir(worker, log) as scratch:
            shutil.copytree(run_dir, scratch, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".lock", "tensorboard", "plots"))
            return None, config, train_run(None, scratch, data=data, resume=True, verbose=verbose,
                                           log=log, callbacks=callbacks)
    log(f"Resuming {run_dir}")
    return Path(run_dir), config, train_run(None, run_dir, data=data, resume=True,
                                            verbose=verbose, log=log, callbacks=callbacks)


def multiworker_task(environ=os.environ, backend=None):
    """This process's task: {"type", "index", "chief", "workers"}; None outside a cluster.
    TensorFlow: from TF_CONFIG; the chief is task "chief", or worker 0 of a cluster
    without one. JAX: from JAX_PROCESS_ID and JAX_NUM_PROCESSES; the chief is process 0."""
    if (backend or keras.backend.backend()) == "jax":
        if "JAX_PROCESS_ID" not in environ:
            return None
        try:
            index, count = int(environ["JAX_PROCESS_ID"]), int(environ["JAX_NUM_PROCESSES"])
        except (KeyError, ValueError) as err:
            raise ConfigError(f"JAX_PROCESS_ID and JAX_NUM_PROCESSES must be integers ({err!r}).") \
                from None
        if count < 1:
            raise ConfigError(f"JAX_NUM_PROCESSES={count}: a cluster has at least 1 process.")
        if not 0 <= index < count:
            raise ConfigError(f"JAX_PROCESS_ID={index} is outside the cluster: JAX_NUM_PROCESSES="
                              f"{count} numbers its processes 0 to {count - 1}.")
        return {"type": "process", "index": index, "chief": index == 0, "workers": count}
    raw = environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        tf_config = json.loads(raw)
        cluster, task = tf_config["cluster"], tf_config["task"]
        kind, index = task["type"], int(task.get("index", 0))
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"TF_CONFIG is not a cluster and task ({err!r}): {raw[:200]}") from None
    if not isinstance(cluster, dict) or not all(isinstance(v, list) for v in cluster.values()) \
            or not isinstance(kind, str):
        raise ConfigError("TF_CONFIG is not a cluster {task type: [addresses]} and a task "
                          f"{{\"type\": name, \"index\": number}}: {raw[:200]}")
    size = len(cluster.get(kind, []))
    if not 0 <= index < size:
        this = json.dumps({"type": kind, "index": index})
        if size:
            has = f"1 {kind!r} task (index 0)" if size == 1 else \
                f"{size} {kind!r} tasks (index 0 to {size - 1})"
        else:
            types = ", ".join(f"{len(v)} {k!r}" for k, v in cluster.items()) or "none"
            has = f"no {kind!r} task (its tasks: {types})"
        raise ConfigError(f"TF_CONFIG: task {this} is outside its cluster, which has {has}.")
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    workers = sum(len(cluster.get(k, [])) for k in ("chief", "worker"))
    return {"type": kind, "index": index, "chief": chief, "workers": workers}


@contextlib.contextmanager
def _lost_worker(config, run_dir, recorder):
    """A multi-worker run whose peer died (its collectives abort within seconds):
    one line saying where the run stands and how to continue it, not a traceback."""
    try:
        yield
    except Exception as err:
        kind, text = type(err).__name__, str(err)
        lost = kind in ("UnavailableError", "AbortedError", "DeadlineExceededError",
                        "CancelledError") or (  # TensorFlow; JAX's collectives across CPUs:
            keras.backend.backend() == "jax" and ("Gloo" in text or "UNAVAILABLE" in text))
        if config["strategy"] != "multiworker" or not lost:
            raise
        cause = text.split("\n")[0].split("}} ")[-1][:300]
        raise RunError(
            f"A worker of the cluster stopped or cannot be reached ({kind}: {cause}). The run is "
            f"checkpointed after epoch {recorder.state['epoch']}; once every worker is back, "
            "continue it on each, with its TF_CONFIG or JAX_* variables: "
            "discomkd-keras train --resume "
            f"{run_dir if multiworker_task()['chief'] else 'RUN_DIR (the chief run directory)'}"
        ) from None


@contextlib.contextmanager
def _worker_dir(worker, log):
    """A temporary run directory for a worker that is not the chief: it trains in
    step with the chief, and only the chief's run directory is the user's."""
    scratch = Path(tempfile.mkdtemp(prefix=f"discomkd-{worker['type']}{worker['index']}-"))
    log(f"{worker['type']} {worker['index']} of {worker['workers']}: training with the chief, "
        "which writes the run directory (this worker's files are temporary)")
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def constant_modalities(data, split="train", rows=512):
    """Modalities whose `split` values are all one number (a dead sensor, an all-zero
    array): nothing to learn from. Up to `rows` evenly spaced rows are read (files
    stay on disk); an in-memory array is checked whole."""
    found = []
    for m in data.modalities:
        x, _ = data.split(m, split)
        if len(x) == 0:
            continue
        sample = np.asarray(x if isinstance(x, np.ndarray)
                            else x[np.unique(np.linspace(0, len(x) - 1, rows).astype(int))])
        if sample.size and sample.min() == sample.max():
            found.append((m, float(sample.flat[0])))
    return found


@contextlib.contextmanager
def _stop_on_ctrl_c(recorder):
    """The first Ctrl-C asks `recorder` to stop at the next step boundary with a
    checkpoint; a second one interrupts at once (no checkpoint)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask(signum, frame):
        if recorder.stop_requested:
            raise KeyboardInterrupt
        recorder.stop_requested = True
        print("\nCtrl-C: stopping after this step with a checkpoint (Ctrl-C again: stop now, "
              "without one).", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, ask)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def train_run(config, run_dir, data=None, resume=False, verbose=1, log=print, callbacks=()):
    """Train (or resume) the run in `run_dir`; return {modality: test metrics}.

    verbose: 0 silent, 1 Keras' progress bar (a terminal), 2 one plain line per
    epoch on stdout (a log file: no carriage returns or escape codes).

    For a new run, `config` comes from `resolve_config` and `run_dir` from
    `prepare_run_dir`. With `resume`, both the config and the data spec are
    read back from `run_dir`. `callbacks` (Keras callbacks: CSVLogger, EarlyStopping, your
    own) run after the run's own, so their `logs` hold each kept classifier's validation
    weighted F1 and accuracy as val_<name>_f1 and val_<name>_accuracy. The process holds
    the run directory's lock
    throughout (RunError if a live run holds it). Ctrl-C stops at the next step
    with a checkpoint and raises RunInterrupted; a full disk raises DiskFullError.
    """
    run_dir = Path(run_dir)
    lock = lock_run_dir(run_dir)
    policy = keras.mixed_precision.global_policy().name
    try:
        return _train_locked(config, run_dir, data, resume, verbose, log, callbacks)
    finally:
        # The run's precision is its own: the caller's models (a test, a notebook) keep theirs.
        keras.mixed_precision.set_global_policy(policy)
        if lock:
            lock.close()


def make_batches(config, data, epoch=0, share=(0, 1)):
    """The run's training batches: paired rows for a teacher and its students, else one
    stream per modality; per-sample class weights with --class-weight balanced."""
    from discomkd_keras.data.unpaired_batches import (PairedBatches, UnpairedBatches,
                                                      balanced_class_weights)

    paired = config.get("method") in PAIRED_METHODS
    weights = balanced_class_weights(data) if config.get("class_weight") == "balanced" else None
    return (PairedBatches if paired else UnpairedBatches)(
        data, batch_size=config["batch_size"], augment=config["augment"], seed=config["seed"],
        epoch=epoch, workers=config["workers"], share=share, class_weights=weights)


def _train_locked(config, run_dir, data, resume, verbose, log, extra_callbacks=()):
    if resume:
        config, state = read_run(run_dir)
        if state["epoch"] >= config["epochs"]:
            raise RunError(f"{run_dir} already finished all {config['epochs']} epochs; "
                           "nothing to resume (evaluate it with: discomkd-keras evaluate).")
        if state.get("stopped_early"):
            raise RunError(f"{run_dir} stopped early at epoch {state['stopped_early']['epoch']} "
                           f"({state['stopped_early']['reason']}); nothing to resume (evaluate "
                           "it with: discomkd-keras evaluate).")
    else:
        write_json(run_dir / CONFIG, config)
        state = fresh_state()
    if data is None:
        data = load_data(config["data"])
    for m, value in constant_modalities(data):
        log(f"Warning: every training value of modality {m!r} is {value:g} (a dead sensor or an "
            f"empty array?): its classifier has nothing to learn from.")

    keras.utils.set_random_seed(int(config["seed"]) + state["epoch"])
    keras.mixed_precision.set_global_policy(config["precision"])
    strategy = make_strategy(config["strategy"])
    if getattr(strategy, "num_replicas_in_sync", 1) > 1:
        print(f"Training on {strategy.num_replicas_in_sync} replicas")
    share = (0, 1)
    if _across_processes():  # each process feeds its share of every global batch
        import jax
        share = (jax.process_index(), jax.process_count())
        if config["batch_size"] % share[1]:
            raise ConfigError(f"--batch-size {config['batch_size']} must be a multiple of the "
                              f"{share[1]} processes that share each batch.")
    batches = make_batches(config, data, epoch=state["epoch"], share=share)
    # Rows of epochs after the last checkpoint (a crash between the two writes) are dropped.
    rows = [r for r in read_history(run_dir) if r["epoch"] <= state["epoch"]]

    with strategy.scope():
        if state["checkpoint"]:
            model = load_checkpoint(run_dir, config, state)
        else:
            model = build_model(config)
            try:  # pretrained backbones start a new model, never replace a checkpoint's weights
                apply_pretrained(model, config.get("pretrained"))
            except ValueError as err:
                raise ConfigError(str(err)) from None
            if isinstance(model, DistilledStudents):
                model.load_teacher_weights(
                    load_model_file(best_path(config["teacher_run"], "teacher")))
            model.compile(optimizer=make_optimizer(config, len(batches)))
        if isinstance(model, MultimodalTeacher):
            classifiers = {"teacher": model}
        else:
            classifiers = {m: model.classifier(m) for m in data.modalities}

    if keras.backend.backend() == "tensorflow" and config["strategy"] != "auto":
        build_from_batch(model, batches.batch(0, 0))
    epoch_log = (lambda line: print(line, flush=True)) if verbose == 2 else None
    recorder = RunRecorder(run_dir, data, config, state, rows, classifiers, len(batches),
                           epoch_log=epoch_log)
    callbacks = [recorder]
    schedules = []
    if isinstance(model, DisCoMKD):
        schedules.append(GRLScheduler(config["grl_schedule"], config["grl_lambda"],
                                      epochs=config["epochs"], steps_per_epoch=len(batches)))
    if config["method"] == "dkd":
        schedules.append(DistillWarmup(config.get("dkd_warmup_epochs", 0), len(batches)))
    callbacks = schedules + callbacks
    if config["tensorboard"]:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard")))
    callbacks += list(extra_callbacks)
    epoch, step = state["epoch"], state.get("step", 0)
    fit_verbose = 1 if verbose == 1 else 0
    # `batches` is an endless stream that set_epoch positions; Keras must not reorder it.
    with _stop_on_ctrl_c(recorder), _lost_worker(config, run_dir, recorder):
        if step:  # stopped mid-epoch: finish that epoch from its next step
            for c in schedules + [recorder]:
                c.step_offset = step
            batches.set_epoch(epoch, step)
            model.fit(batches, epochs=epoch + 1, initial_epoch=epoch,
                      steps_per_epoch=len(batches) - step, shuffle=False, callbacks=callbacks,
                      verbose=fit_verbose)
            for c in schedules:
                c.step_offset = 0
            epoch += 1
        if recorder.stopped_at is None and epoch < config["epochs"]:
            batches.set_epoch(epoch)
            model.fit(batches, epochs=config["epochs"], initial_epoch=epoch,
                      steps_per_epoch=len(batches), shuffle=False, callbacks=callbacks,
                      verbose=fit_verbose)
    if recorder.stopped_at is not None:
        done, steps = recorder.stopped_at
        where = f"epoch {done} of {config['epochs']}" + (
            f" and {steps} of epoch {done + 1}'s {len(batches)} steps" if steps else "")
        raise RunInterrupted(f"Interrupted: {run_dir} is checkpointed after {where}. Continue "
                             f"with: discomkd-keras train --resume {run_dir}")
    with _this_process_only():
        return score_best_classifiers(run_dir, data, config)
