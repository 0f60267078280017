"""Faults during a run: a full disk at a checkpoint, Ctrl-C during an epoch, a
second run into a live run's directory, a modality with nothing to learn."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from discomkd_keras.cli import main
from discomkd_keras.run_directory import load_model_file, read_history
from helpers import write_released

pytestmark = pytest.mark.portable

TINY = ["--encoder", "rgb=lenet", "--feature-dim", "8", "--batch-size", "16", "--lr", "3e-3",
        "--quiet"]


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def leftovers(run):
    return sorted(str(p.relative_to(run)) for p in run.rglob(".*") if p.name != ".lock")


def assert_checkpoint_of_epoch_1(run):
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 1 and state["checkpoint"] == "last-epoch0001.keras"
    load_model_file(run / state["checkpoint"])
    for m in ("rgb", "vec"):
        load_model_file(run / "best" / f"{m}.keras")
        assert json.loads((run / "best" / f"{m}.json").read_text()) == state["best"][m]
        assert state["best"][m]["epoch"] == 1
    assert leftovers(run) == [], "temporary files left behind"


@pytest.mark.parametrize("where", ["checkpoint", "state"])
def test_disk_full_at_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch, where):
    d = write_released(tmp_path / "data")
    run = tmp_path / "run"
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if where == "checkpoint":  # the training model of epoch 2, half written
        save = keras.Model.save

        def failing_save(self, filepath, *args, **kwargs):
            if Path(filepath).name.startswith(".last-epoch0002"):
                Path(filepath).write_bytes(b"PK\x03\x04 half")
                raise full
            return save(self, filepath, *args, **kwargs)

        monkeypatch.setattr(keras.Model, "save", failing_save)
    else:  # state.json of epoch 2, after its checkpoint and best/ files were written
        write_text = Path.write_text

        def failing_write(self, text, *args, **kwargs):
            if self.name.startswith(".state.") and '"epoch": 2' in text:
                raise full
            return write_text(self, text, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", failing_write)
    result = run_cli("train", "--data-dir", d, "--run-dir", run, "--epochs", 3,
                     "--checkpoint-every", 0, *TINY)
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "Traceback" not in result.output
    assert "No space left on the device writing" in error[0]
    assert ("last-epoch0002.keras" if where == "checkpoint" else "state.json") in error[0]
    assert " MiB free there" in error[0] and f"--resume {run}" in error[0]
    assert_checkpoint_of_epoch_1(run)
    assert not (run / "last-epoch0002.keras").exists()

    monkeypatch.undo()  # space is back
    result = run_cli("train", "--resume", run, "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((run / "state.json").read_text())["epoch"] == 3
    assert [r["epoch"] for r in read_history(run)] == [1, 2, 3]


def _train_subprocess(*args):
    return subprocess.Popen([sys.executable, "-m", "discomkd_keras.cli", "train",
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _wait_for_epoch(proc, run, epoch, timeout=120):
    deadline = time.time() + timeout
    state = run / "state.json"
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["epoch"] >= epoch:
            return
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"epoch {epoch} never checkpointed: {proc.communicate()[0]}")


def test_ctrl_c_stops_at_a_step_with_a_checkpoint_that_resume_continues(tmp_path):
    d = write_released(tmp_path / "data", n_per_class=200)
    run = tmp_path / "run"
    epochs, batch = 4, 4
    proc = _train_subprocess("--data-dir", d, "--run-dir", run, "--epochs", epochs,
                             "--batch-size", batch, "--encoder", "rgb=lenet", "--feature-dim", 8,
                             "--checkpoint-every", 0, "--quiet")
    try:
        _wait_for_epoch(proc, run, 1)
        time.sleep(0.3)  # most likely inside epoch 2's steps
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert f"discomkd-keras train --resume {run}" in out and "Traceback" not in out
    state = json.loads((run / "state.json").read_text())
    assert 1 <= state["epoch"] < epochs, "the run finished before Ctrl-C"
    load_model_file(run / state["checkpoint"])
    assert leftovers(run) == []

    result = run_cli("train", "--resume", run, "--quiet")
    assert result.exit_code == 0, result.output
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == epochs and "step" not in state
    assert [r["epoch"] for r in read_history(run)] == list(range(1, epochs + 1))
    # Exactly epochs x steps optimizer steps: no step of the interrupted epoch
    # was lost or taken twice.
    model = keras.saving.load_model(run / state["checkpoint"], safe_mode=True)
    steps_per_epoch = int(np.ceil(0.6 * 600 / batch))
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == epochs * steps_per_epoch


HOLD_LOCK = """
import sys, time
from discomkd_keras.run_directory import lock_run_dir
lock = lock_run_dir(sys.argv[1])
print("held", flush=True)
time.sleep(120)
"""


def test_a_live_runs_directory_is_refused_and_a_killed_run_leaves_no_lock(tmp_path):
    d = write_released(tmp_path / "data")
    run = tmp_path / "run"
    assert run_cli("train", "--data-dir", d, "--run-dir", run, "--epochs", 2, *TINY).exit_code == 0
    state = (run / "state.json").read_text().replace('"epoch": 2', '"epoch": 1')
    (run / "state.json").write_text(state)  # one epoch left to resume
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for args in (["--resume", run], ["--data-dir", d, "--run-dir", run, "--overwrite"]):
            result = run_cli("train", *args, *TINY[:-1], "--quiet") if "--overwrite" in args \
                else run_cli("train", *args, "--quiet")
            assert result.exit_code == 2, result.output
            assert f"is in use by a live run (pid {holder.pid} on" in result.output
            assert (run / "config.json").exists() and (run / "best" / "rgb.keras").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    result = run_cli("train", "--resume", run, "--quiet")
    assert result.exit_code == 0, result.output


def test_a_modality_with_one_value_everywhere_is_warned_about_once(tmp_path):
    d = write_released(tmp_path / "data")
    np.save(d / "vec_data_normalized.npy", np.zeros_like(np.load(d / "vec_data_normalized.npy")))
    result = run_cli("train", "--data-dir", d, "--run-dir", tmp_path / "run", "--epochs", 1, *TINY)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "modality 'vec'" in warnings[0] and "is 0" in warnings[0]
