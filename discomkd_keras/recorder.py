"""The per-epoch recorder of a run: validation scores per modality, the history
CSV and its log line, the best classifier per modality, checkpoints for --resume,
early stopping, and Ctrl-C at a step boundary."""

import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import keras

from discomkd_keras.distribution import across_processes, this_process_only
from discomkd_keras.evaluation import predict_scores, split_xy
from discomkd_keras.metrics import accuracy, weighted_f1
from discomkd_keras.plots import plot_history
from discomkd_keras.run_directory import (BEST_DIR, HISTORY, PLOTS_DIR, STATE, DiskFullError,
                                          best_path, rows_to_csv, stage_json, stage_model,
                                          stage_text)


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
        # {modality: its ModalityClassifier (probabilities), or JOINT_CLASSIFIER: the teacher (logits)};
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
        reversal = [layer for layer in self.model.layers if layer.name == "gradient_reversal"]
        if reversal:  # DisCoM-KD's lambda, which its schedule may move every step
            row["grl_lambda"] = float(keras.ops.convert_to_numpy(reversal[0].grl_lambda))
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
            with this_process_only():
                self._holders[m] = keras.saving.deserialize_keras_object(
                    keras.saving.serialize_keras_object(self.classifiers[m]))
        return self._holders[m]

    def _validate(self, epoch, row):
        for m, classifier in self.classifiers.items():
            x, y = split_xy(self.data, m, "valid")
            if across_processes():  # predict cannot fetch outputs spread over processes
                self._holder(m).set_weights(classifier.get_weights())
                classifier = self._holder(m)
                with this_process_only():
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


@contextlib.contextmanager
def stop_on_ctrl_c(recorder):
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
